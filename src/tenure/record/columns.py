"""Column-at-a-time parsing and the canonical text of values: the record's second engine.

Parsing a whole column with Arrow is much faster than parsing cell by cell, and must give exactly the
values the cell-by-cell parser (:meth:`FieldType.parse`) gives. So every column goes one of two ways:

- a *fast path*, taken only when every value matches a strict pattern whose meaning Arrow and the
  cell parser agree on (ISO timestamps with a zone, plain integers, already-typed Parquet columns);
- otherwise each *distinct* value is parsed by the cell parser itself and the results are spread
  back over the column, which is exact by construction and cheap for the low-cardinality columns
  (event names, features, account ids) that make up most of a usage export.

A value the cell parser refuses makes the column raise :class:`NeedsRowPath`: the importer then takes
the batch through the row path, which produces the per-row errors. ``tests`` property-test that both
engines store the same records.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tenure.record.fields import (
    EMPTY_VALUES,
    Date,
    FieldError,
    FieldType,
    Identifier,
    Integer,
    Number,
    ParseContext,
    Storage,
    Text,
    Timestamp,
)

ARROW_TYPES: dict[Storage, pa.DataType] = {
    "text": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "json": pa.string(),
}
# Fast paths only for years 1000-9999: outside them Arrow and Python disagree (year 0, padding).
_YMD = r"[1-9]\d{3}-\d{2}-\d{2}"
_ISO_ZONED = rf"^{_YMD}[T ]\d{{2}}:\d{{2}}:\d{{2}}(\.\d{{1,6}})?(Z|[+-]\d{{2}}:\d{{2}})$"
_ISO_NAIVE = rf"^{_YMD}[T ]\d{{2}}:\d{{2}}:\d{{2}}(\.\d{{1,6}})?$"
_ISO_DATE = rf"^{_YMD}$"
_PLAIN_INT = r"^-?\d{1,15}$"
FLOAT_EXACT_LIMIT = 1e12  # canonical text of a float is its micro-units below this magnitude


class NeedsRowPath(Exception):
    """This batch cannot be taken column-wise; take it row by row (which explains every error)."""


def blank_mask(column: pa.Array) -> pa.Array:
    """True where a cell means 'no value' (as :func:`tenure.record.fields.is_blank`)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(column))
        spelled_empty = pc.is_in(lowered, value_set=pa.array(sorted(EMPTY_VALUES)))
        return pc.or_kleene(pc.is_null(column), spelled_empty)
    if pa.types.is_floating(column.type):
        return pc.fill_null(pc.is_nan(column), True)
    return pc.is_null(column)


def parse_column(kind: FieldType, column: pa.Array, ctx: ParseContext) -> pa.Array:
    """The column's values as the field type's Arrow type; blank cells become nulls."""
    blank = blank_mask(column)
    if pc.all(blank).as_py():
        return pa.nulls(len(column), ARROW_TYPES[kind.storage])
    column = pc.if_else(blank, pa.scalar(None, column.type), column)
    fast = _fast(kind, column, ctx)
    return fast if fast is not None else _by_distinct_values(kind, column, ctx)


def _fast(kind: FieldType, column: pa.Array, ctx: ParseContext) -> pa.Array | None:
    if isinstance(kind, Text) and pa.types.is_string(column.type):
        return _text(kind, column)
    if isinstance(kind, Timestamp) and pa.types.is_string(column.type):
        return _timestamp(column, ctx)
    if isinstance(kind, Integer):
        return _integer(kind, column)
    if isinstance(kind, Date) and pa.types.is_string(column.type) and _all_match(column, _ISO_DATE):
        try:
            return column.cast(pa.date32())
        except pa.ArrowInvalid:
            return None
    if isinstance(kind, Number):
        return _number(kind, column, ctx)
    return None


def _all_match(column: pa.Array, pattern: str) -> bool:
    return bool(pc.all(pc.match_substring_regex(column, pattern)).as_py() is not False)


def _text(kind: Text, column: pa.Array) -> pa.Array | None:
    if isinstance(kind, Identifier) or kind.strip:
        column = pc.utf8_trim_whitespace(column)
    too_long = pc.any(pc.greater(pc.utf8_length(column), kind.max_length)).as_py()
    if too_long or pc.any(pc.match_substring(column, "\x00")).as_py():
        raise NeedsRowPath("a text value is too long or holds a NUL")
    return column


def _timestamp(column: pa.Array, ctx: ParseContext) -> pa.Array | None:
    if _all_match(column, _ISO_ZONED):
        try:
            return column.cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
        except pa.ArrowInvalid:
            return None
    if ctx.timezone.upper() == "UTC" and _all_match(column, _ISO_NAIVE):
        try:
            return column.cast(pa.timestamp("us"))
        except pa.ArrowInvalid:
            return None
    return None


def _integer(kind: Integer, column: pa.Array) -> pa.Array | None:
    if pa.types.is_integer(column.type) or (
        pa.types.is_string(column.type) and _all_match(column, _PLAIN_INT)
    ):
        values = column.cast(pa.int64())
    else:
        return None
    _bounds(values, kind.minimum, kind.maximum)
    return values


def _number(kind: Number, column: pa.Array, ctx: ParseContext) -> pa.Array | None:
    """Plain decimals with no more places than the field keeps (so no rounding is involved)."""
    if pa.types.is_integer(column.type):
        values = column.cast(pa.float64())
    elif pa.types.is_floating(column.type) and kind.decimals is None:
        values = column
    elif pa.types.is_string(column.type) and not ctx.decimal_comma:
        places = "{1,6}" if kind.decimals is None else f"{{1,{kind.decimals}}}"
        if not _all_match(column, rf"^-?\d{{1,12}}(\.\d{places})?$"):
            return None
        values = column.cast(pa.float64())
    else:
        return None
    _bounds(values, kind.minimum, kind.maximum)
    return values


def _bounds(values: pa.Array, low: float | None, high: float | None) -> None:
    if low is not None and pc.any(pc.less(values, low)).as_py():
        raise NeedsRowPath("a value is below its minimum")
    if high is not None and pc.any(pc.greater(values, high)).as_py():
        raise NeedsRowPath("a value is above its maximum")


def _by_distinct_values(kind: FieldType, column: pa.Array, ctx: ParseContext) -> pa.Array:
    distinct = pc.unique(column)
    parsed: list[Any] = []
    for value in distinct.to_pylist():
        if value is None:
            parsed.append(None)
            continue
        try:
            parsed.append(_arrow_value(kind, kind.parse(value, ctx)))
        except FieldError as err:
            raise NeedsRowPath(str(err)) from None
    values = pa.array(parsed, type=ARROW_TYPES[kind.storage])
    return values.take(pc.index_in(column, value_set=distinct))


def _arrow_value(kind: FieldType, value: Any) -> Any:
    return canonical_json(value) if kind.storage == "json" else value


def canonical_json(value: Any) -> str:
    """One text per JSON value, whatever the key order: how JSON is hashed and stored."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_value(value: Any) -> str:
    """The canonical text of one parsed value (what the content hash is made of)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        return str(round(value * 1e6)) if abs(value) < FLOAT_EXACT_LIMIT else repr(value)
    if isinstance(value, datetime):
        return f"{value.year:04d}-{value:%m-%d %H:%M:%S.%f}"
    if isinstance(value, date):
        return value.isoformat()
    return canonical_json(value)


def canonical_column(storage: Storage, column: pa.Array) -> pa.Array:
    """The canonical text of every value of a parsed column (as :func:`canonical_value`)."""
    if storage == "float":
        if pc.any(pc.greater_equal(pc.abs(column), FLOAT_EXACT_LIMIT)).as_py():
            raise NeedsRowPath("a number too large for the column-wise hash")
        return pc.round(pc.multiply(column, 1e6)).cast(pa.int64()).cast(pa.string())
    if storage in ("text", "json"):
        return column
    return column.cast(pa.string())


__all__ = [
    "ARROW_TYPES",
    "NeedsRowPath",
    "blank_mask",
    "canonical_column",
    "canonical_json",
    "canonical_value",
    "parse_column",
]
