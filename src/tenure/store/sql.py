"""Small SQL constructs that each backend spells its own way (capabilities live in the adapter)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Date
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class day_of(FunctionElement[Any]):
    """The calendar day of a timestamp column."""

    type = Date()
    inherit_cache = True
    name = "day_of"


@compiles(day_of)
def _day_of_default(element: day_of, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


@compiles(day_of, "sqlite")
def _day_of_sqlite(element: day_of, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


class day_before(FunctionElement[Any]):
    """The day before a date column."""

    type = Date()
    inherit_cache = True
    name = "day_before"


@compiles(day_before)
def _day_before_default(element: day_before, compiler: Any, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)} - INTERVAL '1 day') AS DATE)"


@compiles(day_before, "sqlite")
def _day_before_sqlite(element: day_before, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, '-1 day')"
