"""The vocabulary signals are declared in: sources, windows, aggregations and arithmetic.

A signal is declared once, as an expression tree over a few aggregations of *prepared sources*
(record kinds projected to the columns signals need, with every date as a day number). The batch
engine (:mod:`tenure.signals.batch`) compiles the tree to relational expressions; the incremental
engine (:mod:`tenure.signals.incremental`) keeps per-account state for the same aggregations. Neither
engine knows any signal by name.

Time: days are whole UTC days since 1970-01-01. A signal "as of D" sees everything up to the end of
day D. ``Window(days=30)`` is the 30 days ending with D, that is ``D - 30 < day <= D``;
``Window(days=90, skip=14)`` is the 90 days before those last 14. ``During(start, end)`` selects the
rows whose ``[start, end)`` interval contains D (an empty end means still open).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Op = Literal["==", "!=", "in", "is null", "not null", "<=", ">="]
Value = str | int | float | bool | None


@dataclass(frozen=True)
class Condition:
    """``column OP value``; a row passes a filter when it passes every condition."""

    column: str
    op: Op
    value: Value | tuple[Value, ...] = None

    def holds(self, row: dict[str, Any]) -> bool:
        """Whether ``row`` passes (SQL semantics: a comparison with a null never holds)."""
        got = row.get(self.column)
        if self.op == "is null":
            return got is None
        if got is None:
            return False
        if self.op == "not null":
            return True
        if self.op == "in":
            assert isinstance(self.value, tuple)
            return got in self.value
        return bool(_COMPARE[self.op](got, self.value))

    def describe(self) -> str:
        if self.op in ("is null", "not null"):
            return f"{self.column} {self.op}"
        return f"{self.column} {self.op} {self.value!r}"


_COMPARE: dict[str, Any] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def where(column: str, op: Op, value: Value | tuple[Value, ...] = None) -> Condition:
    return Condition(column, op, value)


@dataclass(frozen=True)
class Source:
    """A record kind projected for signals: prepared columns, the day column windows filter on.

    ``columns`` maps each prepared column to how it is made from the stored record (see
    :mod:`tenure.signals.sources`). ``explode`` names a list column whose items become one row
    each. Append-only sources (usage, surveys) keep compact running state in the incremental
    engine; the others (tickets, subscriptions) keep their live rows, since they change.
    """

    name: str
    kind: str
    key: str
    day: str
    columns: tuple[tuple[str, str], ...]
    append_only: bool
    explode: str | None = None
    description: str = ""
    keyed: bool = True  # carry the record key (the usage source, the largest, does not need it)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


@dataclass(frozen=True)
class Window:
    """The ``days`` days ending ``skip`` days before the as-of day, on the source's day column
    (or on column ``on``). ``days=None`` reaches back to the beginning."""

    days: int | None
    skip: int = 0
    on: str | None = None

    def contains(self, day: int | None, as_of: int) -> bool:
        end = as_of - self.skip
        return day is not None and day <= end and (self.days is None or day > end - self.days)

    def describe(self) -> str:
        span = "all time" if self.days is None else f"last {self.days} days"
        if self.skip:
            span = f"{self.days} days before the last {self.skip}"
        return f"{span} (by {self.on})" if self.on else span


@dataclass(frozen=True)
class During:
    """Rows whose interval contains the as-of day (less ``skip`` days): ``start <= day`` and each
    of ``ends`` is empty (still open) or later than the day."""

    start: str
    ends: tuple[str, ...]
    skip: int = 0

    def contains(self, row: dict[str, Any], as_of: int) -> bool:
        day = as_of - self.skip
        start = row.get(self.start)
        if start is None or start > day:
            return False
        return all(row.get(end) is None or row[end] > day for end in self.ends)

    def describe(self) -> str:
        text = f"in force ({self.start} until {' / '.join(self.ends)})"
        return f"{text}, {self.skip} days ago" if self.skip else text


@dataclass(frozen=True)
class Always:
    """Every row, whatever its dates."""

    def describe(self) -> str:
        return "all rows"


When = Window | During | Always


class Expr:
    """A node of a signal's expression tree; arithmetic builds bigger trees."""

    def __add__(self, other: Expr | float) -> Expr:
        return Arith("+", self, lift(other))

    def __sub__(self, other: Expr | float) -> Expr:
        return Arith("-", self, lift(other))

    def __mul__(self, other: Expr | float) -> Expr:
        return Arith("*", self, lift(other))

    def __truediv__(self, other: Expr | float) -> Expr:
        return Arith("/", self, lift(other))

    def __rsub__(self, other: float) -> Expr:
        return Arith("-", lift(other), self)

    def children(self) -> tuple[Expr, ...]:
        return ()

    def walk(self) -> Iterator[Expr]:
        yield self
        for child in self.children():
            yield from child.walk()


def lift(value: Expr | float) -> Expr:
    return value if isinstance(value, Expr) else Const(value)


@dataclass(frozen=True, eq=False)
class Const(Expr):
    value: float


@dataclass(frozen=True, eq=False)
class AsOf(Expr):
    """The as-of day number itself."""


@dataclass(frozen=True, eq=False)
class Ref(Expr):
    """Another signal's value."""

    name: str


# The operators both engines apply the same way (division and ``<=`` differ per engine: nulls).
SAME_EVERYWHERE: dict[str, Any] = {"+": operator.add, "-": operator.sub, "*": operator.mul}


@dataclass(frozen=True, eq=False)
class Arith(Expr):
    """``left OP right``; null when either side is null; a division by zero is null; ``<=``
    gives 1 or 0."""

    op: Literal["+", "-", "*", "/", "<="]
    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, eq=False)
class Coalesce(Expr):
    """The first of ``options`` that is not null."""

    options: tuple[Expr, ...]

    def children(self) -> tuple[Expr, ...]:
        return self.options


@dataclass(frozen=True, eq=False)
class KnownIf(Expr):
    """``value`` when ``evidence`` is above 0, else null: "zero" and "we cannot tell" differ."""

    value: Expr
    evidence: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.value, self.evidence)


@dataclass(frozen=True, eq=False)
class Attribute(Expr):
    """A column of the account itself (its prepared ``accounts`` source row)."""

    column: str


Reduction = Literal["total", "distinct", "lowest", "highest", "latest"]


@dataclass(frozen=True, eq=False)
class Aggregate(Expr):
    """One reduction of one source's rows for an account, over a window, after a filter.

    - ``total``: the sum of ``column`` (or the number of rows when column is None); 0 when none.
    - ``distinct``: how many different non-null values of ``column``; 0 when none.
    - ``lowest`` / ``highest``: the smallest / largest non-null ``column``; null when none.
    - ``latest``: ``column`` of the row that sorts last by the ``order`` columns; null when none.
    """

    reduction: Reduction
    source: Source
    when: When
    column: str | None = None
    where: tuple[Condition, ...] = ()
    order: tuple[str, ...] = field(default=())

    def passes(self, row: dict[str, Any]) -> bool:
        return all(c.holds(row) for c in self.where)

    @property
    def identity(self) -> tuple[Any, ...]:
        """Equal for aggregations the engines may compute once and share."""
        return (self.reduction, self.source.name, self.when, self.column, self.where, self.order)

    def describe(self) -> str:
        what = {
            "total": f"sum of {self.column}" if self.column else "count",
            "distinct": f"distinct {self.column}",
            "lowest": f"lowest {self.column}",
            "highest": f"highest {self.column}",
            "latest": f"latest {self.column}",
        }[self.reduction]
        filters = " and ".join(c.describe() for c in self.where)
        return f"{what} of {self.source.name}" + (f" where {filters}" if filters else "")


def total(
    source: Source, when: When, column: str | None = None, *conditions: Condition
) -> Aggregate:
    return Aggregate("total", source, when, column, conditions)


def distinct(source: Source, when: Window, column: str, *conditions: Condition) -> Aggregate:
    if when.skip or when.days is None:
        raise ValueError("a distinct count needs a window that ends at the as-of day")
    return Aggregate("distinct", source, when, column, conditions)


def at_most(value: Expr, limit: float) -> Expr:
    """1 when ``value <= limit``, else 0 (null when value is null)."""
    return Arith("<=", value, Const(limit))


def nothing() -> Expr:
    """Always null: a signal whose inputs are not configured."""
    return Coalesce(())


def lowest(source: Source, when: When, column: str, *conditions: Condition) -> Aggregate:
    return Aggregate("lowest", source, when, column, conditions)


def highest(source: Source, when: When, column: str, *conditions: Condition) -> Aggregate:
    return Aggregate("highest", source, when, column, conditions)


def latest(source: Source, when: Window, column: str, *conditions: Condition) -> Aggregate:
    """The value in the most recent row: ordered by the source's day, then its timestamp column
    ``at`` when prepared, then its record key (ties are broken the same way everywhere)."""
    order = [source.day] + (["at"] if "at" in source.column_names else [])
    if source.keyed:
        order.append("key")
    return Aggregate("latest", source, when, column, conditions, tuple(order))


Unit = Literal[
    "users", "events", "ratio", "share", "features", "touchpoints", "people", "days", "tickets",
    "score", "flag", "payments", "seats", "currency", "count"
]  # fmt: skip


@dataclass(frozen=True)
class Signal:
    """One named signal: what it measures, in what unit, and whether higher is healthier."""

    name: str
    group: str
    description: str
    unit: Unit
    expr: Expr
    higher_is_healthier: bool | None

    def aggregates(self) -> list[Aggregate]:
        return [node for node in self.expr.walk() if isinstance(node, Aggregate)]

    def references(self) -> list[str]:
        return [node.name for node in self.expr.walk() if isinstance(node, Ref)]

    def sources(self) -> list[str]:
        return sorted({a.source.name for a in self.aggregates()})

    def windows(self) -> list[str]:
        return sorted({a.when.describe() for a in self.aggregates()})

    def aggregation(self) -> str:
        parts = [a.describe() for a in self.aggregates()]
        refs = self.references()
        if refs:
            parts.append("from " + ", ".join(refs))
        return "; ".join(parts) if parts else "derived"
