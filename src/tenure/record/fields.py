"""Field types of the account record.

Each field type turns one raw value (usually the text of a CSV cell) into a typed Python value, or
raises :class:`FieldError` with a reason a person can act on. Types are small value objects: they also
say how they are stored (``storage``) and how they appear in JSON Schema (``json_schema``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Storage = Literal["text", "integer", "float", "boolean", "date", "timestamp", "json"]
DateOrder = Literal["MDY", "DMY"]

MAX_TEXT = 10 * 1024 * 1024  # 10 MiB: longer values are refused, not truncated
EMPTY_VALUES = frozenset({"", "null", "none", "nan", "n/a"})
INT64 = (-(2**63), 2**63 - 1)


class FieldError(ValueError):
    """A raw value could not become a value of its field; ``str(err)`` is the reason."""


@dataclass(frozen=True)
class ParseContext:
    """How ambiguous raw values are read; set per import from the mapping file."""

    date_order: DateOrder | None = None
    timezone: str = "UTC"
    decimal_comma: bool = False

    def tz(self) -> tzinfo:
        if self.timezone.upper() == "UTC":
            return UTC
        try:
            return ZoneInfo(self.timezone)
        except ZoneInfoNotFoundError as err:  # validated when a mapping loads; kept as a guard
            raise FieldError(f"unknown time zone {self.timezone!r}") from err


DEFAULT_CONTEXT = ParseContext()


_EMPTY_SPELLINGS = frozenset(
    spelling for word in EMPTY_VALUES for spelling in (word, word.upper(), word.capitalize())
) | {"NaN"}


def is_blank(raw: object) -> bool:
    """True when a raw value means 'no value' (empty cell, null, NaN)."""
    if raw is None:
        return True
    if type(raw) is str:
        if raw in _EMPTY_SPELLINGS:
            return True
        if raw[0].isspace() or raw[-1].isspace():
            return raw.strip().lower() in EMPTY_VALUES
        return len(raw) <= 4 and raw.lower() in EMPTY_VALUES
    return isinstance(raw, float) and math.isnan(raw)


@dataclass(frozen=True)
class FieldType:
    """Base of all field types."""

    storage: ClassVar[Storage] = "text"

    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> Any:
        raise NotImplementedError

    def json_schema(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(FieldType):
    """Free text, kept exactly as given (a leading ``=`` stays plain data, never a formula)."""

    max_length: int = MAX_TEXT
    strip: bool = False

    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> str:
        text = raw if isinstance(raw, str) else str(raw)
        if self.strip:
            text = text.strip()
        if len(text) > self.max_length:
            raise FieldError(f"text is {len(text):,} characters; the limit is {self.max_length:,}")
        if "\x00" in text:
            raise FieldError("contains a NUL character, which no database stores as text")
        return text

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": self.max_length}


@dataclass(frozen=True)
class Identifier(Text):
    """An identifier: trimmed, at most 200 characters."""

    max_length: int = 200
    strip: bool = True

    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> str:
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        return super().parse(raw, ctx)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": self.max_length}


_DIGITS_RE = re.compile(r"^[+-]?\d+$")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_GROUPED_RE = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_CURRENCY_MARKS = "$€£¥ "


def _number(raw: Any, ctx: ParseContext, allow_symbols: bool) -> float:
    if isinstance(raw, bool):
        raise FieldError(f"expected a number, got {raw!r}")
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        text = str(raw).strip()
        if allow_symbols:
            sign = text[0] if text[:1] in ("-", "+") else ""
            text = sign + text[len(sign) :].strip(_CURRENCY_MARKS)
            if text.startswith("(") and text.endswith(")"):
                text = "-" + text[1:-1]
        if ctx.decimal_comma:
            text = text.replace(".", "").replace(" ", "").replace(",", ".")
        elif _GROUPED_RE.match(text):
            text = text.replace(",", "")
        if not _NUMBER_RE.match(text):
            raise FieldError(f"expected a number, got {_show(raw)}")
        value = float(text)
    if not math.isfinite(value):
        raise FieldError(f"expected a finite number, got {_show(raw)}")
    return value


def _show(raw: Any, limit: int = 40) -> str:
    text = repr(raw)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


@dataclass(frozen=True)
class Number(FieldType):
    """A real number, optionally bounded; accepts ``1,234.50`` and currency marks."""

    storage: ClassVar[Storage] = "float"
    minimum: float | None = None
    maximum: float | None = None
    decimals: int | None = None

    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> float:
        value = _number(raw, ctx, allow_symbols=True)
        _check_bounds(value, self.minimum, self.maximum)
        return round(value, self.decimals) if self.decimals is not None else value

    def json_schema(self) -> dict[str, Any]:
        return _bounded({"type": "number"}, self.minimum, self.maximum)


@dataclass(frozen=True)
class Integer(FieldType):
    """A whole number, optionally bounded; ``12.0`` is 12, ``12.5`` is refused."""

    storage: ClassVar[Storage] = "integer"
    minimum: int | None = None
    maximum: int | None = None

    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and _DIGITS_RE.match(raw.strip()):
            value = int(raw.strip())  # exact: no detour through a float
        else:
            number = _number(raw, ctx, allow_symbols=False)
            if not number.is_integer():
                raise FieldError(f"expected a whole number, got {_show(raw)}")
            value = int(number)
        if not INT64[0] <= value <= INT64[1]:
            raise FieldError(f"{_show(raw)} is too large to store as a whole number")
        _check_bounds(value, self.minimum, self.maximum)
        return value

    def json_schema(self) -> dict[str, Any]:
        return _bounded({"type": "integer"}, self.minimum, self.maximum)


def _check_bounds(value: float, low: float | None, high: float | None) -> None:
    if low is not None and value < low:
        raise FieldError(f"must be at least {low:g}, got {value:g}")
    if high is not None and value > high:
        raise FieldError(f"must be at most {high:g}, got {value:g}")


def _bounded(schema: dict[str, Any], low: float | None, high: float | None) -> dict[str, Any]:
    if low is not None:
        schema["minimum"] = low
    if high is not None:
        schema["maximum"] = high
    return schema


_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


@dataclass(frozen=True)
class Boolean(FieldType):
    """true/false, yes/no, 1/0, t/f, y/n in any case."""

    storage: ClassVar[Storage] = "boolean"

    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise FieldError(f"expected true or false, got {_show(raw)}")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_SLASHED_YMD = re.compile(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SLASHED = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_WORDY_FORMATS = ("%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%d-%b-%Y")


def parse_date(raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> date:
    """Read a calendar date in any of the formats exports use.

    ISO ``2024-03-05``, ``2024/03/05``, compact ``20240305``, ``5 Mar 2024``, ``Mar 5, 2024`` and
    slashed ``03/05/2024``. A slashed date whose day and month could be swapped is refused unless
    the mapping says ``date_order: MDY`` or ``DMY``: a date is never silently guessed.
    """
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = str(raw).strip()
    for pattern in (_ISO_DATE, _SLASHED_YMD, _COMPACT):
        found = pattern.match(text)
        if found:
            return _ymd(int(found[1]), int(found[2]), int(found[3]), raw)
    found = _SLASHED.match(text)
    if found:
        return _slashed(int(found[1]), int(found[2]), int(found[3]), raw, ctx)
    for fmt in _WORDY_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    if "T" in text or " " in text or text.endswith("Z"):
        return parse_timestamp(raw, ctx).date()
    raise FieldError(f"expected a date such as 2024-03-05, got {_show(raw)}")


def _ymd(year: int, month: int, day: int, raw: Any) -> date:
    try:
        return date(year, month, day)
    except ValueError as err:
        raise FieldError(f"not a real date: {_show(raw)} ({err})") from None


def _slashed(first: int, second: int, year: int, raw: Any, ctx: ParseContext) -> date:
    order = ctx.date_order
    if order is None:
        if first > 12 >= second:
            order = "DMY"
        elif second > 12 >= first or first == second:
            order = "MDY"
        else:
            raise FieldError(
                f"ambiguous date {_show(raw)}: day and month could be swapped; "
                "set date_order: MDY or DMY in the mapping file"
            )
    month, day = (first, second) if order == "MDY" else (second, first)
    return _ymd(year, month, day, raw)


_EPOCH_RE = re.compile(r"^\d{9,13}(\.\d+)?$")


def parse_timestamp(raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> datetime:
    """Read an instant and return it in UTC without tzinfo (the store's convention).

    Accepts ISO 8601 with ``T`` or a space, with or without an offset or ``Z``; a date alone
    (midnight); Unix epoch seconds or milliseconds. A time without a zone is read in the
    mapping's ``timezone`` (UTC unless set).
    """
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, date):
        value = datetime(raw.year, raw.month, raw.day)
    else:
        value = _timestamp_text(str(raw).strip(), raw, ctx)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ctx.tz())
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except (OverflowError, ValueError):
        raise FieldError(f"{_show(raw)} is out of the range of dates") from None


def _timestamp_text(text: str, raw: Any, ctx: ParseContext) -> datetime:
    if _EPOCH_RE.match(text):
        seconds = float(text)
        if seconds > 1e11:
            seconds /= 1000.0
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        pass
    head, _, rest = text.partition(" ")
    if rest and re.match(r"^\d{1,2}:\d{2}", rest):
        return _date_and_clock(head, rest, raw, ctx)
    if " " in text or "T" in text:
        raise FieldError(f"expected a timestamp such as 2024-03-05T14:30:00Z, got {_show(raw)}")
    day = parse_date(text, ctx)
    return datetime(day.year, day.month, day.day)


def _date_and_clock(head: str, rest: str, raw: Any, ctx: ParseContext) -> datetime:
    """``03/05/2024 14:30`` and friends: a date in any accepted format, then a clock time."""
    day = parse_date(head, ctx)
    try:
        clock = datetime.fromisoformat(f"2000-01-01T{rest.replace(' ', '')}")
    except ValueError:
        raise FieldError(f"expected a timestamp, got {_show(raw)}") from None
    return datetime.combine(day, clock.timetz())


@dataclass(frozen=True)
class Date(FieldType):
    storage: ClassVar[Storage] = "date"

    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> date:
        return parse_date(raw, ctx)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date"}


@dataclass(frozen=True)
class Timestamp(FieldType):
    storage: ClassVar[Storage] = "timestamp"

    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> datetime:
        return parse_timestamp(raw, ctx)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


def normalise_token(raw: Any) -> str:
    """``"Executive Sponsor"`` -> ``"executive_sponsor"``: how vocabulary values are compared."""
    return re.sub(r"[\s\-/]+", "_", str(raw).strip().lower())


@dataclass(frozen=True)
class Choice(FieldType):
    """One value of a closed vocabulary; matched case-insensitively, with declared aliases."""

    values: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    _lookup: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup = {normalise_token(alias): target for alias, target in self.aliases.items()}
        lookup.update({normalise_token(value): value for value in self.values})
        object.__setattr__(self, "_lookup", lookup)

    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> str:
        found = self._lookup.get(normalise_token(raw))
        if found is None:
            allowed = ", ".join(self.values)
            raise FieldError(f"{_show(raw)} is not one of: {allowed} (a mapping can translate it)")
        return found

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


_EMAIL_RE = re.compile(r"^[^@\s]+@([A-Za-z0-9-]+\.)+[A-Za-z0-9-]{2,}$")


@dataclass(frozen=True)
class Email(FieldType):
    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> str:
        text = str(raw).strip().lower()
        if text.startswith("mailto:"):
            text = text[7:]
        if len(text) > 320 or not _EMAIL_RE.match(text):
            raise FieldError(f"not an email address: {_show(raw)}")
        return text

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "email", "maxLength": 320}


@dataclass(frozen=True)
class Currency(FieldType):
    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> str:
        text = str(raw).strip().upper()
        if not re.match(r"^[A-Z]{3}$", text):
            raise FieldError(f"expected a three-letter ISO 4217 code such as USD, got {_show(raw)}")
        return text

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": "^[A-Z]{3}$"}


@dataclass(frozen=True)
class JsonObject(FieldType):
    """A JSON object (event properties); given as an object or as JSON text."""

    storage: ClassVar[Storage] = "json"

    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> dict[str, Any]:
        value = raw
        if isinstance(raw, str):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as err:
                raise FieldError(f"not valid JSON: {err.msg} at character {err.pos}") from None
        if not isinstance(value, dict):
            raise FieldError(f"expected a JSON object, got {type(value).__name__}")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "object"}


@dataclass(frozen=True)
class TextList(FieldType):
    """A list of short values: a JSON array, or text separated by ``;``, ``,`` or ``|``."""

    storage: ClassVar[Storage] = "json"
    lower: bool = False

    def parse(self, raw: Any, ctx: ParseContext = DEFAULT_CONTEXT) -> list[str]:
        if isinstance(raw, list | tuple):
            items = [str(item) for item in raw]
        else:
            text = str(raw).strip()
            if text.startswith("["):
                try:
                    items = [str(item) for item in json.loads(text)]
                except (json.JSONDecodeError, TypeError):
                    raise FieldError(f"not a valid JSON array: {_show(raw)}") from None
            else:
                items = re.split(r"[;,|]", text)
        cleaned = [item.strip() for item in items if item.strip()]
        return [item.lower() for item in cleaned] if self.lower else cleaned

    def json_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string"}}


__all__ = [
    "Boolean",
    "Choice",
    "Currency",
    "Date",
    "Email",
    "FieldError",
    "FieldType",
    "Identifier",
    "Integer",
    "JsonObject",
    "Number",
    "ParseContext",
    "Text",
    "TextList",
    "Timestamp",
    "is_blank",
    "normalise_token",
    "parse_date",
    "parse_timestamp",
]
