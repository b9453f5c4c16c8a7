"""The kinds of the account record, declared once.

A :class:`Kind` is the single declaration from which the store's tables, the import validation, the
JSON Schema and the documentation are all derived. Add a field here and every face sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tenure.record.fields import (
    DEFAULT_CONTEXT,
    FieldError,
    FieldType,
    ParseContext,
    is_blank,
)

Record = dict[str, Any]
Derivation = Callable[[Record], None]


@dataclass(frozen=True)
class Field:
    """One attribute of a kind."""

    name: str
    type: FieldType
    description: str
    required: bool = False
    references: str | None = None
    default: Any = None


@dataclass(frozen=True)
class Kind:
    """One kind of the account record: accounts, contacts, usage events, tickets..."""

    name: str
    title: str
    description: str
    key: str
    fields: tuple[Field, ...]
    time_field: str
    append_only: bool = False
    required_columns: tuple[tuple[str, ...], ...] = ()
    derive: tuple[Rule | FillFrom, ...] = ()
    extra_field: str = "attributes"
    _by_name: Mapping[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})

    def field(self, name: str) -> Field:
        return self._by_name[name]

    def has(self, name: str) -> bool:
        return name in self._by_name

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def references(self) -> dict[str, str]:
        """Field name to the kind it refers to."""
        return {f.name: f.references for f in self.fields if f.references}

    def spoken_for(self, carried: Collection[str]) -> set[str]:
        """The fields a file carrying ``carried`` speaks for, with those its rules derive."""
        found = set(carried)
        for rule in self.derive:
            if found.intersection(rule.uses):
                found.update(rule.sets)
        return found

    def column_groups(self) -> tuple[tuple[str, ...], ...]:
        """Groups of fields of which a file must carry at least one each (one-of groups)."""
        grouped = {name for group in self.required_columns for name in group}
        own = tuple(
            (f.name,)
            for f in self.fields
            if f.required and f.name != self.key and f.name not in grouped
        )
        key_group = () if self.append_only or self.key in grouped else ((self.key,),)
        return key_group + own + self.required_columns

    def validate(
        self, raw: Mapping[str, Any], ctx: ParseContext = DEFAULT_CONTEXT
    ) -> tuple[Record, list[tuple[str, str]]]:
        """Parse one row given as field name -> raw value; return the record and its errors."""
        record: Record = {}
        errors: list[tuple[str, str]] = []
        for spec in self.fields:
            parse_into(record, errors, spec, raw.get(spec.name), ctx)
        return self.complete(record, errors)

    def complete(
        self, record: Record, errors: list[tuple[str, str]]
    ) -> tuple[Record, list[tuple[str, str]]]:
        """Apply the cross-field rules and the required checks to parsed fields."""
        if errors:
            return record, errors
        for rule in self.derive:
            try:
                rule(record)
            except RecordError as err:
                errors.append((err.field, err.reason))
        for name in self._required:
            if record.get(name) is None:
                errors.append((name, "is required but empty"))
        return record, errors

    @property
    def _required(self) -> tuple[str, ...]:
        names = tuple(f.name for f in self.fields if f.required and f.name != self.key)
        return names if self.append_only else (self.key, *names)


def parse_into(
    record: Record, errors: list[tuple[str, str]], spec: Field, value: Any, ctx: ParseContext
) -> None:
    """Parse one raw value of ``spec`` into ``record``, or note why it cannot be."""
    if is_blank(value):
        if spec.default is not None:
            record[spec.name] = spec.default
        return
    try:
        record[spec.name] = spec.type.parse(value, ctx)
    except FieldError as err:
        errors.append((spec.name, str(err)))


class RecordError(ValueError):
    """A rule across fields failed; names the field to blame."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True)
class FillFrom:
    """A rule: when ``target`` is empty, take ``source`` (an event named by its feature)."""

    target: str
    source: str

    @property
    def uses(self) -> tuple[str, ...]:
        return (self.source,)

    @property
    def sets(self) -> tuple[str, ...]:
        return (self.target,)

    def __call__(self, record: Record) -> None:
        if record.get(self.target) is None and record.get(self.source) is not None:
            record[self.target] = record[self.source]

    def on_columns(self, columns: dict[str, pa.Array]) -> None:
        """The same rule over whole columns (the column-wise import engine)."""
        if self.target in columns and self.source in columns:
            columns[self.target] = pc.coalesce(columns[self.target], columns[self.source])
        elif self.source in columns:
            columns[self.target] = columns[self.source]


@dataclass(frozen=True)
class Rule:
    """A rule across fields: the function, the fields it reads and the fields it may set."""

    apply: Derivation
    uses: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()

    def __call__(self, record: Record) -> None:
        self.apply(record)


def not_before(later: str, earlier: str) -> Rule:
    """A rule: ``later`` may not precede ``earlier`` when both are set."""

    def rule(record: Record) -> None:
        a, b = record.get(later), record.get(earlier)
        if a is not None and b is not None and a < b:
            raise RecordError(later, f"{a} is before {earlier} {b}")

    return Rule(rule, uses=(later, earlier))


def duration_pair(instant: str, start: str, amount: str, unit: timedelta) -> Rule:
    """A rule: fill ``instant`` from ``start + amount`` or ``amount`` from the two instants."""

    def rule(record: Record) -> None:
        began = record.get(start)
        if began is None:
            return
        try:
            if record.get(instant) is None and record.get(amount) is not None:
                record[instant] = began + record[amount] * unit
            elif record.get(amount) is None and record.get(instant) is not None:
                record[amount] = round((record[instant] - began) / unit, 3)
        except (OverflowError, ValueError):
            raise RecordError(amount, f"{record.get(amount)} is out of range") from None

    return Rule(rule, uses=(instant, start, amount), sets=(instant, amount))
