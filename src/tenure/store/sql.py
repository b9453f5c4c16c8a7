"""Small SQL constructs that each backend spells its own way (capabilities live in the adapter)."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import BigInteger, Date
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class _Spelled(FunctionElement[Any]):
    """A function of one date or timestamp column, spelled per backend."""

    inherit_cache = True
    spellings: ClassVar[dict[str, str]]  # backend name (or "default") -> template over {arg}


class _DayFunction(_Spelled):
    """A function of one date or timestamp that gives a date."""

    type = Date()
    inherit_cache = True


def _render(element: _Spelled, compiler: Any, **kw: Any) -> str:
    spellings = element.spellings
    template = spellings.get(compiler.dialect.name, spellings["default"])
    return template.format(arg=compiler.process(element.clauses, **kw))


class day_of(_DayFunction):
    """The calendar day of a timestamp column."""

    name = "day_of"
    inherit_cache = True  # each subclass must say so itself
    spellings: ClassVar[dict[str, str]] = {
        "default": "CAST({arg} AS DATE)",
        "sqlite": "date({arg})",
    }


class day_before(_DayFunction):
    """The day before a date column."""

    name = "day_before"
    inherit_cache = True
    spellings: ClassVar[dict[str, str]] = {
        "default": "CAST(({arg} - INTERVAL '1 day') AS DATE)",
        "sqlite": "date({arg}, '-1 day')",
    }


class day_number(_Spelled):
    """Whole UTC days since 1970-01-01 of a date or timestamp column."""

    type = BigInteger()
    name = "day_number"
    inherit_cache = True
    spellings: ClassVar[dict[str, str]] = {
        "default": "(CAST({arg} AS DATE) - DATE '1970-01-01')",
        "sqlite": "CAST(julianday(substr({arg}, 1, 10)) - 2440587.5 AS INTEGER)",
    }


class epoch_micros(_Spelled):
    """Microseconds since 1970-01-01 UTC of a timestamp column (exact)."""

    type = BigInteger()
    name = "epoch_micros"
    inherit_cache = True
    spellings: ClassVar[dict[str, str]] = {
        "default": "CAST(EXTRACT(EPOCH FROM {arg}) * 1000000 AS BIGINT)",
        "sqlite": "(CAST(strftime('%s', {arg}) AS INTEGER) * 1000000"
        " + CAST(substr({arg} || '.000000', 21, 6) AS INTEGER))",
    }


for _function in (day_of, day_before, day_number, epoch_micros):
    compiles(_function)(_render)
