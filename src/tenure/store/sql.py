"""Small SQL constructs that each backend spells its own way (capabilities live in the adapter)."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Date
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class _DayFunction(FunctionElement[Any]):
    """A function of one date or timestamp that gives a date, spelled per backend."""

    type = Date()
    inherit_cache = True
    spellings: ClassVar[dict[str, str]]  # backend name (or "default") -> template over {arg}


def _render(element: _DayFunction, compiler: Any, **kw: Any) -> str:
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


compiles(day_of)(_render)
compiles(day_before)(_render)
