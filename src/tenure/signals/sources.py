"""Prepared sources: the store's records projected to the columns signals read, as Arrow tables.

Both engines read through here (the batch engine whole tables, the incremental engine the rows one
import wrote or one account's rows), so a column means the same to both. The projection is SQL
built with SQLAlchemy for the store's backend and run through ADBC, which hands back Arrow.
Sentiment is computed here, offline, with VADER.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    Table,
    case,
    cast,
    func,
    literal,
    select,
)

from tenure.record import KINDS
from tenure.signals.declare import Source
from tenure.store import Store
from tenure.store.sql import day_number, epoch_micros
from tenure.store.tables import IMPORT_ID, KIND_TABLES

INT_RECIPES = ("day", "first_day", "resolved_day", "micros", "x100", "sentiment")
_ARROW_STORAGE = {
    "text": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "json": pa.string(),
}
SENTIMENT_SCALE = 10_000


def _recipe(table: Table, recipe: str) -> ColumnElement[Any]:
    op, _, arg = recipe.partition(":")
    names = arg.split(",")
    cols = [table.c[n] for n in names]
    if op == "field":
        return cols[0]
    if op == "day":
        return day_number(cols[0])
    if op == "first_day":
        return day_number(func.coalesce(*cols))
    if op == "micros":
        return epoch_micros(cols[0])
    if op == "x100":
        return cast(func.round(cols[0] * 100), BigInteger)
    if op == "first":
        return func.coalesce(*cols)
    if op == "resolved_day":
        closed = table.c.status.in_(("solved", "closed"))
        return case(
            (cols[0].is_not(None), day_number(cols[0])),
            (closed, day_number(table.c.opened_at)),
        )
    if op == "sentiment":
        text: list[ColumnElement[Any]] = [func.coalesce(cast(c, String), "") for c in cols]
        joined = text[0]
        for more in text[1:]:
            joined = joined + literal(" ") + more
        return joined
    raise ValueError(f"unknown column recipe {recipe!r}")


def prepared_select(
    source: Source,
    accounts: Sequence[str] | None = None,
    import_id: int | None = None,
    keys: Sequence[str] | None = None,
) -> Select[Any]:
    """The SQL projection of ``source``; optionally only some accounts, one import, some keys."""
    table = KIND_TABLES[source.kind]
    columns = [table.c.account_id.label("account_id")]
    if source.keyed and source.key != "account_id":
        columns.append(table.c[source.key].label("key"))
    columns += [_recipe(table, recipe).label(name) for name, recipe in source.columns]
    query = select(*columns).where(table.c.account_id.is_not(None))
    if accounts is not None:
        query = query.where(table.c.account_id.in_(list(accounts)))
    if import_id is not None:
        query = query.where(table.c[IMPORT_ID] == import_id)
    if keys is not None:
        query = query.where(table.c[source.key].in_(list(keys)))
    return query


def arrow_schema(source: Source) -> pa.Schema:
    """The Arrow schema of a prepared source."""
    kind = KINDS[source.kind]
    fields = [pa.field("account_id", pa.string())]
    if source.keyed and source.key != "account_id":
        fields.append(pa.field("key", pa.string()))
    for name, recipe in source.columns:
        op, _, arg = recipe.partition(":")
        if op in INT_RECIPES:
            kind_type: pa.DataType = pa.int64()
        elif op == "first":
            kind_type = pa.string()
        else:
            kind_type = _ARROW_STORAGE.get(kind.field(arg).type.storage, pa.string())
        if name == source.explode:
            kind_type = pa.string()
        fields.append(pa.field(name, kind_type))
    return pa.schema(fields)


def fetch(
    store: Store,
    source: Source,
    accounts: Sequence[str] | None = None,
    import_id: int | None = None,
    keys: Sequence[str] | None = None,
) -> pa.Table:
    """The prepared rows of ``source`` as an Arrow table (sentiment scored, lists exploded)."""
    query = prepared_select(source, accounts, import_id, keys)
    raw = _run_arrow(store, query)
    return finish(source, raw)


def finish(source: Source, raw: pa.Table) -> pa.Table:
    """Turn the raw projection into the prepared table: sentiment, exploded lists, exact types."""
    columns: dict[str, pa.Array] = {}
    for name in raw.column_names:
        column = raw.column(name)
        recipe = dict(source.columns).get(name, "")
        if recipe.startswith("sentiment:"):
            column = pa.array([sentiment(t) for t in column.to_pylist()], pa.int64())
        columns[name] = column
    table = pa.table(columns)
    if source.explode:
        table = _explode(table, source.explode)
    schema = arrow_schema(source)
    return table.select(schema.names).cast(schema)


def _explode(table: pa.Table, column: str) -> pa.Table:
    lists = [_as_list(v) for v in table.column(column).to_pylist()]
    parents = [i for i, items in enumerate(lists) for _ in items]
    taken = table.take(pa.array(parents, pa.int64()))
    items = pa.array([item for items in lists for item in items], pa.string())
    return taken.set_column(taken.schema.get_field_index(column), column, items)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = json.loads(value)
    return [str(v) for v in value if v not in (None, "")]


@lru_cache(maxsize=65536)
def sentiment(text: str | None) -> int | None:
    """VADER's compound score (-1 to 1) of ``text`` times 10,000, or None for no text."""
    if text is None or not text.strip():
        return None
    compound = float(_analyzer().polarity_scores(text)["compound"])
    return round(compound * SENTIMENT_SCALE)


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _run_arrow(store: Store, query: Select[Any]) -> pa.Table:
    """Run ``query`` on the store's backend and return Arrow.

    SQLite is read through the store's own connection (Python's sqlite3): a second copy of the
    SQLite library in the process (as an ADBC driver would bring) breaks SQLite's file locks and
    its write-ahead log. PostgreSQL is read through ADBC's libpq driver, straight to Arrow.
    """
    dialect = store.engine.dialect
    sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if dialect.name == "sqlite":
        return _sqlite_arrow(store, sql)
    import adbc_driver_postgresql.dbapi as pg_adbc

    uri = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with pg_adbc.connect(uri) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetch_arrow_table()


def _sqlite_arrow(store: Store, sql: str) -> pa.Table:
    with store.engine.connect() as connection:
        cursor = connection.connection.driver_connection.execute(sql)  # type: ignore[union-attr]
        names = [d[0] for d in cursor.description]
        batches = []
        while chunk := cursor.fetchmany(_CHUNK):
            columns = list(zip(*chunk, strict=True))
            batches.append(pa.table({n: pa.array(c) for n, c in zip(names, columns, strict=True)}))
    if not batches:
        return pa.table({n: pa.array([], pa.null()) for n in names})
    return pa.concat_tables(batches, promote_options="permissive")


_CHUNK = 200_000
