"""The incremental engine: each account's signals kept current as its records arrive.

Derived from the same declarations as the batch engine. For append-only sources (usage, surveys,
touchpoints, payments) each aggregation keeps a small running state (per-day sums, the last day
each user or feature was seen, the latest row); for sources whose rows change (tickets,
subscriptions, milestones) the account's live rows are kept and re-read. Stored state only ever
covers the windows the catalog needs, so it stays small.

Records must arrive once each (ingestion is idempotent by id and hands over only new rows), in any
order. Signals are exact as of any day on or after the latest day the state has seen; asking for
an earlier day raises :class:`StaleAsOf`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tenure.signals.catalog import Catalog
from tenure.signals.declare import (
    SAME_EVERYWHERE,
    Aggregate,
    Always,
    Arith,
    AsOf,
    Attribute,
    Coalesce,
    Const,
    During,
    Expr,
    KnownIf,
    Ref,
    Window,
)

Row = dict[str, Any]


class StaleAsOf(ValueError):
    """The state has seen later records than the day asked for."""


@dataclass
class _Accumulator:
    """Running state of one aggregation over an append-only source for one account."""

    by_day: dict[int, Any] = field(default_factory=dict)  # total / lowest / highest per day
    last_seen: dict[Any, int] = field(default_factory=dict)  # distinct: value -> last day
    latest: tuple[Any, ...] | None = None  # latest: (*order, value)

    def add(self, agg: Aggregate, row: Row) -> None:
        day = row[agg.source.day]
        if day is None:
            return
        if agg.reduction == "total":
            amount = 1 if agg.column is None else row[agg.column]
            if amount is not None:
                self.by_day[day] = self.by_day.get(day, 0) + amount
        elif agg.reduction == "distinct":
            value = row[_column(agg)]
            if value is not None and self.last_seen.get(value, day - 1) < day:
                self.last_seen[value] = day
        elif agg.reduction == "latest":
            entry = (*order_key(agg, row), row[_column(agg)])
            if self.latest is None or entry[:-1] > self.latest[:-1]:
                self.latest = entry
        else:
            self._extreme(agg, day, row[_column(agg)])

    def _extreme(self, agg: Aggregate, day: int, value: Any) -> None:
        if value is None:
            return
        if agg.column == agg.source.day and agg.reduction == "highest":
            # The latest day: nothing earlier can matter for any as-of day at or after it.
            if not self.by_day or day > max(self.by_day):
                self.by_day = {day: day}
            return
        known = self.by_day.get(day)
        pick = min if agg.reduction == "lowest" else max
        self.by_day[day] = value if known is None else pick(known, value)

    def value(self, agg: Aggregate, as_of: int) -> Any:
        window = agg.when
        assert isinstance(window, Window) and window.days is not None
        end = as_of - window.skip  # the window is start < day <= end
        start = end - window.days
        if agg.reduction == "distinct":
            return sum(1 for day in self.last_seen.values() if start < day <= end)
        if agg.reduction == "latest":
            if self.latest is None or not start < self.latest[0][1] <= end:
                return None
            return self.latest[-1]
        inside = [v for day, v in self.by_day.items() if start < day <= end]
        if agg.reduction == "total":
            return sum(inside)
        if not inside:
            return None
        return min(inside) if agg.reduction == "lowest" else max(inside)

    def prune(self, agg: Aggregate, horizon: int) -> None:
        """Forget days that no window ending on or after ``horizon`` reaches."""
        window = agg.when
        assert isinstance(window, Window) and window.days is not None
        first = horizon - window.skip - window.days + 1
        self.by_day = {d: v for d, v in self.by_day.items() if d >= first}
        self.last_seen = {k: d for k, d in self.last_seen.items() if d >= first}

    def size(self) -> int:
        return len(self.by_day) + len(self.last_seen) + (self.latest is not None)


def order_key(agg: Aggregate, row: Row) -> tuple[tuple[bool, Any], ...]:
    """How rows sort for ``latest``: by the order columns, nulls before any value (as SQL's
    descending order puts them last)."""
    return tuple((row[c] is not None, row[c]) for c in agg.order)


def _column(agg: Aggregate) -> str:
    assert agg.column is not None
    return agg.column


@dataclass
class AccountState:
    """Everything the engine keeps for one account."""

    attributes: Row = field(default_factory=dict)
    rows: dict[str, dict[str, Row]] = field(default_factory=dict)  # source -> key -> row
    running: dict[tuple[Any, ...], _Accumulator] = field(default_factory=dict)
    seen_until: int | None = None  # the latest day of any append-only row taken in

    def size(self) -> int:
        """How many entries the state holds (rows plus running entries)."""
        held = sum(len(rows) for rows in self.rows.values())
        return held + sum(acc.size() for acc in self.running.values())


class IncrementalEngine:
    """Per-account signal state, updated row by row, evaluated on demand."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.states: dict[str, AccountState] = {}
        aggs = {a.identity: a for s in catalog for a in s.aggregates()}
        self._running: dict[str, list[Aggregate]] = {}
        self._reach: dict[tuple[Any, ...], Aggregate] = {}  # shared state -> widest aggregation
        for agg in aggs.values():
            if not agg.source.append_only:
                continue
            _check_bounded(agg)
            key = _shared(agg)
            widest = self._reach.get(key)
            if widest is None:
                self._running.setdefault(agg.source.name, []).append(agg)
            if widest is None or _reach(agg) > _reach(widest):
                self._reach[key] = agg
        self._holder: dict[tuple[str, str], str] = {}  # (source, key) -> account holding it
        compiler = _Compiler(catalog)
        self._signals = {signal.name: compiler.signal(signal.name) for signal in catalog}
        self._by_source: dict[str, list[Aggregate]] = {}
        for agg in aggs.values():
            self._by_source.setdefault(agg.source.name, []).append(agg)

    def state(self, account: str) -> AccountState:
        return self.states.setdefault(account, AccountState())

    def apply(self, source: str, rows: Iterable[Row]) -> set[str]:
        """Take in new (or, for changing sources, changed) prepared rows; the accounts touched."""
        touched: set[str] = set()
        for row in rows:
            account = row["account_id"]
            touched.add(account)
            self._apply_one(source, self.state(account), row)
        return touched

    def _apply_one(self, source: str, state: AccountState, row: Row) -> None:
        if source == "accounts":
            state.attributes = dict(row)
            return
        running = self._running.get(source)
        if running is None:
            self._keep(source, state, row)
            return
        for agg in running:
            if agg.passes(row):
                state.running.setdefault(_shared(agg), _Accumulator()).add(agg, row)
        day = row[running[0].source.day]
        if day is not None and (state.seen_until is None or day > state.seen_until):
            state.seen_until = day
            self._prune_state(state, day)  # a new latest day: forget what no window reaches

    def _keep(self, source: str, state: AccountState, row: Row) -> None:
        """Hold the latest version of a changing row (moving it if its account changed)."""
        key, account = row["key"], row["account_id"]
        before = self._holder.get((source, key))
        if before is not None and before != account:
            self.states[before].rows.get(source, {}).pop(key, None)
        self._holder[(source, key)] = account
        state.rows.setdefault(source, {})[key] = dict(row)

    def evaluate(self, account: str, as_of: int) -> dict[str, Any]:
        """Every signal of ``account`` as of day ``as_of``."""
        state = self.state(account)
        if state.seen_until is not None and as_of < state.seen_until:
            raise StaleAsOf(f"state of {account} has records up to day {state.seen_until}")
        context = _Context(state, as_of)
        return {name: value(context) for name, value in self._signals.items()}

    def prune(self, horizon: int) -> None:
        """Drop what no evaluation on or after day ``horizon`` can need, in every account (each
        account is also pruned as it takes in a later day than it had seen)."""
        for state in self.states.values():
            self._prune_state(state, horizon)

    def _prune_state(self, state: AccountState, horizon: int) -> None:
        for shared, acc in state.running.items():
            acc.prune(self._reach[shared], horizon)
        for source, rows in state.rows.items():
            aggs = self._by_source.get(source, [])
            kept = {k: r for k, r in rows.items() if any(_may_count(a, r, horizon) for a in aggs)}
            for gone in rows.keys() - kept.keys():
                self._holder.pop((source, gone), None)
            state.rows[source] = kept


def _shared(agg: Aggregate) -> tuple[Any, ...]:
    """Aggregations that differ only in their window share one running state."""
    return (agg.reduction, agg.source.name, agg.column, agg.where, agg.order)


def _reach(agg: Aggregate) -> int:
    when = agg.when
    assert isinstance(when, Window) and when.days is not None
    return when.skip + when.days


def _check_bounded(agg: Aggregate) -> None:
    """Append-only sources keep running state; say so when a declaration needs more than that."""
    when = agg.when
    if not isinstance(when, Window) or when.days is None or when.on is not None:
        raise ValueError(
            f"{agg.describe()}: an append-only source needs a bounded window on its day column"
        )
    latest_day = agg.reduction == "highest" and agg.column == agg.source.day
    if when.skip and (agg.reduction == "latest" or latest_day):
        raise ValueError(f"{agg.describe()}: the latest row or day needs a window ending today")


def _may_count(agg: Aggregate, row: Row, horizon: int) -> bool:
    """Whether ``row`` can count for ``agg`` as of some day on or after ``horizon``."""
    when = agg.when
    if isinstance(when, Always):
        return True
    if isinstance(when, During):
        point = horizon - when.skip
        return all(row.get(end) is None or row[end] > point for end in when.ends)
    day = row.get(when.on or agg.source.day)
    if day is None:
        return False
    return when.days is None or day > horizon - when.skip - when.days


@dataclass
class _Context:
    """One evaluation: an account's state, the as-of day, and values computed so far."""

    state: AccountState
    as_of: int
    memo: dict[Any, Any] = field(default_factory=dict)


Compiled = Callable[[_Context], Any]


class _Compiler:
    """Expression trees to Python closures, once per engine (SQL null semantics)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.signals: dict[str, Compiled] = {}

    def signal(self, name: str) -> Compiled:
        """The memoised closure of one signal (signals that refer to it share its value)."""
        if name not in self.signals:
            inner = self.compile(self.catalog.named(name).expr)
            self.signals[name] = _memoised(name, inner)
        return self.signals[name]

    def compile(self, expr: Expr) -> Compiled:
        if isinstance(expr, Const):
            constant = expr.value
            return lambda c: constant
        if isinstance(expr, AsOf):
            return lambda c: c.as_of
        if isinstance(expr, Attribute):
            column = expr.column
            return lambda c: c.state.attributes.get(column)
        if isinstance(expr, Ref):
            return self.signal(expr.name)
        if isinstance(expr, Aggregate):
            return _memoised(expr.identity, _aggregate(expr))
        if isinstance(expr, KnownIf):
            return _known_if(self.compile(expr.value), self.compile(expr.evidence))
        if isinstance(expr, Coalesce):
            return _coalesce([self.compile(o) for o in expr.options])
        assert isinstance(expr, Arith)
        left, right, op = self.compile(expr.left), self.compile(expr.right), expr.op
        return lambda c: arith(op, left(c), right(c))


def _memoised(key: Any, inner: Compiled) -> Compiled:
    def value(c: _Context) -> Any:
        memo = c.memo
        if key not in memo:
            memo[key] = inner(c)
        return memo[key]

    return value


def _known_if(value: Compiled, evidence: Compiled) -> Compiled:
    def known(c: _Context) -> Any:
        seen = evidence(c)
        return value(c) if seen is not None and seen > 0 else None

    return known


def _coalesce(options: list[Compiled]) -> Compiled:
    def first(c: _Context) -> Any:
        for option in options:
            got = option(c)
            if got is not None:
                return got
        return None

    return first


def _aggregate(agg: Aggregate) -> Compiled:
    if agg.source.append_only:
        shared = _shared(agg)
        empty = 0 if agg.reduction in ("total", "distinct") else None

        def running(c: _Context) -> Any:
            acc = c.state.running.get(shared)
            return empty if acc is None else acc.value(agg, c.as_of)

        return running
    source = agg.source.name
    return lambda c: reduce_rows(agg, c.state.rows.get(source, {}).values(), c.as_of)


def reduce_rows(agg: Aggregate, rows: Iterable[Row], as_of: int) -> Any:
    """``agg`` over plain prepared rows as of ``as_of``: the reference semantics."""
    chosen = [r for r in rows if _within(agg, r, as_of) and agg.passes(r)]
    if agg.reduction == "total":
        if agg.column is None:
            return len(chosen)
        return sum(r[agg.column] for r in chosen if r[agg.column] is not None)
    column = _column(agg)
    if agg.reduction == "latest":
        if not chosen:
            return None
        return max(chosen, key=lambda r: order_key(agg, r))[column]
    values = [r[column] for r in chosen if r[column] is not None]
    if agg.reduction == "distinct":
        return len(set(values))
    if not values:
        return None
    return min(values) if agg.reduction == "lowest" else max(values)


def _within(agg: Aggregate, row: Row, as_of: int) -> bool:
    when = agg.when
    if isinstance(when, Always):
        return True
    if isinstance(when, During):
        return when.contains(row, as_of)
    return when.contains(row.get(when.on or agg.source.day), as_of)


def arith(op: str, left: Any, right: Any) -> Any:
    """SQL arithmetic: null in, null out; division by zero is null; ``<=`` gives 1 or 0."""
    if left is None or right is None:
        return None
    if op in SAME_EVERYWHERE:
        return SAME_EVERYWHERE[op](left, right)
    if op == "<=":
        return int(left <= right)
    if right == 0:
        return None
    return left / right


def evaluate_rows(
    catalog: Catalog, tables: Mapping[str, Iterable[Row]], as_of: int
) -> dict[str, dict[str, Any]]:
    """Every account's signals from plain rows through a fresh engine (a convenience for tests)."""
    engine = IncrementalEngine(catalog)
    for source, rows in tables.items():
        engine.apply(source, rows)
    return {account: engine.evaluate(account, as_of) for account in engine.states}
