"""The batch engine: every signal for every account as of any dates, as Ibis expressions.

The declarations are compiled to portable relational expressions: one pass over each source per
kind of time filter, every aggregation of that pass a filtered aggregate (``SUM(...) FILTER
(WHERE ...)``), the results joined onto a spine of (account, as-of day). The expressions run on
DuckDB by default; any Ibis backend (Spark, a warehouse) can run the same expressions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from tenure.signals.catalog import Catalog
from tenure.signals.declare import (
    SAME_EVERYWHERE,
    Aggregate,
    Always,
    Arith,
    AsOf,
    Attribute,
    Coalesce,
    Condition,
    Const,
    During,
    Expr,
    KnownIf,
    Ref,
    Signal,
    Source,
    Window,
)

AS_OF = "as_of"


def duckdb() -> Any:
    """A fresh in-memory DuckDB connection through Ibis (the default backend)."""
    return ibis.duckdb.connect()


@dataclass
class _Pass:
    """Aggregations computed together in one pass over a source joined with the as-of days.

    ``when`` is None for the merged pass over windows on the source's own day column (each
    aggregation then filters to its own window); otherwise every aggregation shares it.
    """

    source: Source
    when: Window | During | Always | None
    roll_up: bool = False  # roll an append-only source up to the pass's grain first
    aggregates: dict[tuple[Any, ...], tuple[str, Aggregate]] = field(default_factory=dict)

    def add(self, agg: Aggregate, prefix: str) -> None:
        if agg.identity not in self.aggregates:
            self.aggregates[agg.identity] = (f"{prefix}_{len(self.aggregates)}", agg)


class BatchEngine:
    """Compiles a catalog once; :meth:`compute` evaluates it over tables for a set of days."""

    def __init__(self, catalog: Catalog, backend: Any | None = None) -> None:
        self.catalog = catalog
        self.backend = backend if backend is not None else duckdb()
        self._plans = {many: _plan(catalog, many) for many in (False, True)}

    def expression(
        self, tables: Mapping[str, ir.Table], days: ir.Table, many_days: bool = True
    ) -> ir.Table:
        """The Ibis expression of every signal: one row per (account, as-of day)."""
        passes = self._plans[many_days]
        spine = _spine(tables["accounts"], days)
        for plan in passes:
            result = _run_pass(plan, tables[plan.source.name], days)
            spine = _attach(spine, result)
        columns = {identity: col for p in passes for identity, (col, _) in p.aggregates.items()}
        compiler = _Compiler(self.catalog, spine, columns)
        values = {signal.name: compiler.compile(signal.expr) for signal in self.catalog}
        return spine.select("account_id", AS_OF, **values)

    def compute(self, tables: Mapping[str, pa.Table | ir.Table], as_of: Sequence[int]) -> pa.Table:
        """Every signal for every account as of each day in ``as_of`` (day numbers)."""
        ready = {name: self._table(name, t) for name, t in tables.items()}
        unique = sorted(set(as_of))
        days = self._table(f"_{AS_OF}", pa.table({AS_OF: pa.array(unique, pa.int64())}))
        expr = self.expression(ready, days, len(unique) > 1).order_by(["account_id", AS_OF])
        return self.backend.to_pyarrow(expr)

    def _table(self, name: str, table: pa.Table | ir.Table) -> ir.Table:
        if isinstance(table, ir.Table):
            return table
        return self.backend.create_table(name, table, overwrite=True)


LONG_REACH = 120  # days: windows reaching further back get a pass of their own


def _plan(catalog: Catalog, many_days: bool) -> list[_Pass]:
    """The passes over the sources. For many as-of days, windows on an append-only source's day
    are grouped by the grain they need and the rows rolled up to it before being paired with the
    days; for one day, they share one pass per reach (short windows, long ones), rows as they are.
    """
    passes: dict[tuple[Any, ...], _Pass] = {}
    for signal in catalog:
        for agg in signal.aggregates():
            if agg.reduction == "latest":
                key: tuple[Any, ...] = ("latest", agg.identity)
                when: Window | During | Always | None = agg.when
            elif _on_day(agg):
                group = _grain(agg) if many_days else _reach_class(agg)
                key, when = (agg.source.name, "days", group), None
            else:
                key, when = (agg.source.name, agg.when), agg.when
            plan = passes.setdefault(key, _Pass(agg.source, when, many_days))
            plan.add(agg, f"p{list(passes).index(key)}")
    return list(passes.values())


def _reach_class(agg: Aggregate) -> str:
    window = agg.when
    assert isinstance(window, Window) and window.days is not None
    return "long" if window.skip + window.days > LONG_REACH else "short"


def _grain(agg: Aggregate) -> tuple[str, ...]:
    """The columns an aggregation needs besides the account, the day and a summed column."""
    needed = {c.column for c in agg.where}
    if agg.reduction != "total" and agg.column is not None:
        needed.add(agg.column)
    return tuple(sorted(needed - {agg.source.day}))


def _rolled_up(plan: _Pass, table: ir.Table) -> ir.Table | None:
    """An append-only source summed to one row per account, day and needed columns (the grain
    of the pass), so that pairing rows with as-of days handles as few rows as possible; None
    when a summed column is also filtered on (the rows are then used as they are)."""
    aggs = [agg for _, agg in plan.aggregates.values()]
    grain = {"account_id", plan.source.day, *(c for a in aggs for c in _grain(a))}
    summed = {a.column for a in aggs if a.reduction == "total" and a.column is not None}
    if summed & grain:
        return None
    measures = {column: table[column].sum() for column in sorted(summed)}
    return table.group_by(sorted(grain)).aggregate(_rows=table.count(), **measures)


def _on_day(agg: Aggregate) -> bool:
    when = agg.when
    return isinstance(when, Window) and when.on is None and when.days is not None


def _spine(accounts: ir.Table, days: ir.Table) -> ir.Table:
    spine = accounts.cross_join(days)
    started = spine.created_day.isnull() | (spine.created_day <= spine[AS_OF])
    return spine.filter(started)


def _run_pass(plan: _Pass, table: ir.Table, days: ir.Table) -> ir.Table:
    aggs = [agg for _, agg in plan.aggregates.values()]
    if aggs[0].reduction == "latest":
        return _latest(plan, table, days)
    if plan.when is None:
        table = _in_reach(plan, table, days)
    rolled = None
    if plan.roll_up and plan.when is None and plan.source.append_only:
        rolled = _rolled_up(plan, table)
    if rolled is not None:
        table = rolled
    joined = _joined(plan, table, days)
    measures = {}
    for column, agg in plan.aggregates.values():
        test = _conditions(agg.where, joined)
        if plan.when is None:
            test = test & _when(agg.when, joined, plan.source.day)
        measures[column] = _reduce(agg, joined, test, rolled is not None)
    return joined.group_by(["account_id", AS_OF]).aggregate(**measures)


def _reach(plan: _Pass) -> tuple[int, int]:
    """How far back the pass's windows reach, and how near the as-of day the nearest ends."""
    windows = [agg.when for _, agg in plan.aggregates.values() if isinstance(agg.when, Window)]
    return max(w.skip + (w.days or 0) for w in windows), min(w.skip for w in windows)


def _in_reach(plan: _Pass, table: ir.Table, days: ir.Table) -> ir.Table:
    """Only the rows some as-of day's windows can reach."""
    reach, nearest = _reach(plan)
    day = table[plan.source.day]
    return table.filter(day <= days[AS_OF].max() - nearest, day > days[AS_OF].min() - reach)


def _joined(plan: _Pass, table: ir.Table, days: ir.Table) -> ir.Table:
    """The source's rows paired with each as-of day they can count for."""
    joined = table.cross_join(days)
    as_of = joined[AS_OF]
    if plan.when is not None:
        return joined.filter(_when(plan.when, joined, plan.source.day))
    reach, nearest = _reach(plan)
    day = joined[plan.source.day]
    return joined.filter((day <= as_of - nearest) & (day > as_of - reach))


def _latest(plan: _Pass, table: ir.Table, days: ir.Table) -> ir.Table:
    ((column, agg),) = plan.aggregates.values()
    joined = _joined(plan, table, days)
    joined = joined.filter(_conditions(agg.where, joined))
    order = [ibis.desc(joined[c]) for c in agg.order]
    rank = ibis.row_number().over(group_by=["account_id", AS_OF], order_by=order)
    ranked = joined.mutate(_rank=rank)
    first = ranked.filter(ranked._rank == 0)
    assert agg.column is not None
    return first.select("account_id", AS_OF, **{column: first[agg.column]})


def _reduce(agg: Aggregate, t: ir.Table, test: ir.BooleanValue, rolled: bool) -> ir.Value:
    if agg.reduction == "total":
        if agg.column is None:
            return t._rows.sum(where=test) if rolled else t.count(where=test)
        return t[agg.column].sum(where=test)
    assert agg.column is not None
    value = t[agg.column]
    if agg.reduction == "distinct":
        return value.nunique(where=test)
    if agg.reduction == "lowest":
        return value.min(where=test)
    return value.max(where=test)


def _conditions(conditions: Sequence[Condition], t: ir.Table) -> ir.BooleanValue:
    test: ir.BooleanValue = ibis.literal(True)
    for condition in conditions:
        test = test & _condition(condition, t)
    return test


def _condition(c: Condition, t: ir.Table) -> ir.BooleanValue:
    column = t[c.column]
    if c.op == "is null":
        return column.isnull()
    if c.op == "not null":
        return column.notnull()
    if c.op == "in":
        assert isinstance(c.value, tuple)
        return column.notnull() & column.isin(list(c.value))
    ops = {"==": column.__eq__, "!=": column.__ne__, "<=": column.__le__, ">=": column.__ge__}
    return column.notnull() & ops[c.op](c.value)


def _when(when: Window | During | Always | None, t: ir.Table, day: str) -> ir.BooleanValue:
    as_of = t[AS_OF]
    if isinstance(when, Always) or when is None:
        return ibis.literal(True)
    if isinstance(when, During):
        point = as_of - when.skip
        test = t[when.start].notnull() & (t[when.start] <= point)
        for end in when.ends:
            test &= t[end].isnull() | (t[end] > point)
        return test
    end = as_of - when.skip
    column = t[when.on or day]
    test = column.notnull() & (column <= end)
    if when.days is not None:
        test &= column > end - when.days
    return test


def _attach(spine: ir.Table, result: ir.Table) -> ir.Table:
    measures = [c for c in result.columns if c not in ("account_id", AS_OF)]
    right = result.rename(_account="account_id", _as_of=AS_OF)
    joined = spine.left_join(
        right, [spine.account_id == right._account, spine[AS_OF] == right._as_of]
    )
    return joined.select(*spine.columns, *measures)


class _Compiler:
    """Signal expression trees to Ibis column expressions over the spine."""

    def __init__(
        self, catalog: Catalog, spine: ir.Table, columns: Mapping[tuple[Any, ...], str]
    ) -> None:
        self.catalog = catalog
        self.spine = spine
        self.columns = columns

    def compile(self, expr: Expr) -> ir.Value:
        if isinstance(expr, Const):
            return ibis.literal(expr.value)
        if isinstance(expr, AsOf):
            return self.spine[AS_OF]
        if isinstance(expr, Attribute):
            return self.spine[expr.column]
        if isinstance(expr, Ref):
            return self.compile(self.catalog.named(expr.name).expr)
        if isinstance(expr, Aggregate):
            value = self.spine[self.columns[expr.identity]]
            if expr.reduction in ("total", "distinct"):
                return value.fill_null(0)
            return value
        if isinstance(expr, KnownIf):
            value, evidence = self.compile(expr.value), self.compile(expr.evidence)
            return ibis.cases((evidence > 0, value), else_=ibis.null(value.type()))
        if isinstance(expr, Coalesce):
            if not expr.options:
                return ibis.null("float64")
            return ibis.coalesce(*(self.compile(o) for o in expr.options))
        assert isinstance(expr, Arith)
        return _arith(expr.op, self.compile(expr.left), self.compile(expr.right))


def _arith(op: str, left: Any, right: Any) -> ir.Value:
    if op in SAME_EVERYWHERE:
        return SAME_EVERYWHERE[op](left, right)
    if op == "<=":
        return (left <= right).cast("int64")
    return ibis.cases((right == 0, ibis.null("float64")), else_=left / right)


__all__ = ["AS_OF", "BatchEngine", "Signal", "duckdb"]
