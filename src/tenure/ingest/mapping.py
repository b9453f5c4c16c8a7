"""Mapping files: how a foreign export (Salesforce, Stripe, Zendesk...) becomes record fields.

A mapping is YAML, validated on load; every error names the file, the line and the field::

    kind: tickets
    columns:            # record field: column in the file
      ticket_id: Id
      opened_at: Created At
    values:             # record field: {value in the file: value in the record}
      priority: {urgent: P1, high: P2, normal: P3, low: P4}
    defaults:           # record field: value when the file has no such column or the cell is empty
      currency: EUR
    ignore: [Internal Notes]
    date_order: DMY     # how to read 03/04/2024 (refused as ambiguous otherwise)
    timezone: Europe/Paris
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from tenure.record import Kind, kind_named
from tenure.record.fields import DateOrder, ParseContext, normalise_token

FORMATS = ("csv", "jsonl", "parquet")
IDENTICAL_ROWS = ("merge", "keep")
_KEYS = {
    "kind",
    "format",
    "delimiter",
    "encoding",
    "date_order",
    "timezone",
    "decimal_comma",
    "identical_rows",
    "columns",
    "values",
    "defaults",
    "ignore",
    "description",
}


class MappingError(ValueError):
    """A mapping file is wrong; the message names file, line and field."""


@dataclass(frozen=True)
class Mapping:
    """A validated mapping (the empty mapping imports files that already use the record's names)."""

    kind: str | None = None
    format: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    context: ParseContext = field(default_factory=ParseContext)
    identical_rows: str = "merge"
    columns: MappingABC[str, str] = field(default_factory=dict)
    values: MappingABC[str, MappingABC[str, Any]] = field(default_factory=dict)
    defaults: MappingABC[str, Any] = field(default_factory=dict)
    ignore: frozenset[str] = frozenset()
    source: str = "(no mapping)"


def translate(vocabulary: MappingABC[str, Any], raw: Any) -> Any:
    """One raw value through a field's value vocabulary (unlisted values pass unchanged)."""
    return vocabulary.get(normalise_token(raw), raw)


def load_mapping(path: str | Path, kind: Kind | None = None) -> Mapping:
    """Read and validate a mapping file; ``kind`` (from the command line) must agree with it."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise MappingError(f"{where}: cannot read the mapping file ({err})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise MappingError(f"{where}: not valid YAML: {err}") from None
    if not isinstance(data, dict) or root is None:
        raise MappingError(f"{where}:1: a mapping file is a YAML mapping (key: value lines)")
    lines = _line_numbers(root)
    return _build(data, lines, where, kind)


def _line_numbers(node: yaml.Node, prefix: str = "") -> dict[str, int]:
    """Dotted key path -> 1-based line, for every key in the document."""
    found: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}{key_node.value}"
            found[path] = key_node.start_mark.line + 1
            found.update(_line_numbers(value_node, path + "."))
    return found


def _build(data: dict[str, Any], lines: dict[str, int], where: str, kind: Kind | None) -> Mapping:
    def fail(path: str, message: str) -> MappingError:
        line = lines.get(path, 1)
        return MappingError(f"{where}:{line}: {path}: {message}")

    for key in data:
        if key not in _KEYS:
            raise fail(str(key), f"unknown setting; known: {', '.join(sorted(_KEYS))}")
    target = _kind(data, kind, fail)
    columns = _string_table(data.get("columns") or {}, "columns", fail)
    values = {
        name: {
            normalise_token(k): _scalar(v, f"values.{name}.{k}", fail)
            for k, v in _dict(table, f"values.{name}", fail).items()
        }
        for name, table in _dict(data.get("values") or {}, "values", fail).items()
    }
    defaults = {
        k: _scalar(v, f"defaults.{k}", fail)
        for k, v in _dict(data.get("defaults") or {}, "defaults", fail).items()
    }
    for section, names in (("columns", columns), ("values", values), ("defaults", defaults)):
        for name in names:
            if not target.has(name):
                raise fail(
                    f"{section}.{name}",
                    f"{target.name} has no field {name!r}; fields: "
                    + ", ".join(target.field_names),
                )
    return Mapping(
        kind=target.name,
        format=_choice(data, "format", FORMATS, fail),
        delimiter=_delimiter(data, fail),
        encoding=_encoding(data, fail),
        context=_context(data, fail),
        identical_rows=_choice(data, "identical_rows", IDENTICAL_ROWS, fail) or "merge",
        columns=columns,
        values=values,
        defaults=defaults,
        ignore=frozenset(str(c) for c in _list(data.get("ignore") or [], "ignore", fail)),
        source=where,
    )


def _kind(data: dict[str, Any], kind: Kind | None, fail: Any) -> Kind:
    named = data.get("kind")
    if named is None:
        if kind is None:
            raise fail("kind", "say which kind this mapping is for (kind: accounts, events...)")
        return kind
    try:
        declared = kind_named(str(named))
    except KeyError as err:
        raise fail("kind", str(err.args[0])) from None
    if kind is not None and declared.name != kind.name:
        raise fail("kind", f"this mapping is for {declared.name}, but {kind.name} was asked for")
    return declared


def _dict(value: Any, path: str, fail: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(path, f"expected a mapping of name: value, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def _scalar(value: Any, path: str, fail: Any) -> Any:
    if value is not None and not isinstance(value, str | int | float | bool):
        raise fail(path, f"expected a single value, got {type(value).__name__}")
    return value


def _list(value: Any, path: str, fail: Any) -> list[Any]:
    if not isinstance(value, list):
        raise fail(path, f"expected a list, got {type(value).__name__}")
    return value


def _string_table(value: Any, path: str, fail: Any) -> dict[str, str]:
    table = _dict(value, path, fail)
    for name, column in table.items():
        if not isinstance(column, str | int) or isinstance(column, bool):
            raise fail(f"{path}.{name}", f"expected a column name, got {column!r}")
    return {name: str(column) for name, column in table.items()}


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...], fail: Any) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if str(value) not in allowed:
        raise fail(key, f"{value!r} is not one of: {', '.join(allowed)}")
    return str(value)


def _delimiter(data: dict[str, Any], fail: Any) -> str | None:
    value = data.get("delimiter")
    if value is None:
        return None
    text = {"tab": "\t", "\\t": "\t", "whitespace": "whitespace"}.get(str(value), str(value))
    if text != "whitespace" and len(text) != 1:
        raise fail("delimiter", f"a single character, 'tab' or 'whitespace', got {value!r}")
    return text


def _encoding(data: dict[str, Any], fail: Any) -> str | None:
    value = data.get("encoding")
    if value is None:
        return None
    try:
        "".encode(str(value))
    except LookupError:
        raise fail("encoding", f"unknown text encoding {value!r}") from None
    return str(value)


def _context(data: dict[str, Any], fail: Any) -> ParseContext:
    order = data.get("date_order")
    if order is not None and order not in get_args(DateOrder):
        raise fail("date_order", f"{order!r} is not one of: MDY, DMY")
    zone = str(data.get("timezone", "UTC"))
    if zone.upper() != "UTC":
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise fail("timezone", f"unknown time zone {zone!r} (use an IANA name)") from None
    comma = data.get("decimal_comma", False)
    if not isinstance(comma, bool):
        raise fail("decimal_comma", f"expected true or false, got {comma!r}")
    return ParseContext(date_order=order, timezone=zone, decimal_comma=comma)
