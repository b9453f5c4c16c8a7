"""Writing and reading records of each kind: idempotent upserts keyed by natural key or event id."""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import psycopg
import pyarrow as pa
from pyarrow import csv
from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from tenure.record import Kind
from tenure.store.tables import KIND_TABLES, ROW_HASH


def _insert(connection: Connection, table: Table) -> Any:
    """The dialect's INSERT that knows ON CONFLICT (SQLite and PostgreSQL spell it the same)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def write(
    connection: Connection,
    kind: Kind,
    rows: Sequence[dict[str, Any]],
    update: Collection[str] | None = None,
) -> int:
    """Store ``rows`` (complete column dicts, new or changed) and return how many were written.

    Events and other append-only kinds are inserted once per id and never changed. Entities
    (accounts, subscriptions...) are upserted by natural key; a stored entity gets only the
    ``update`` columns (default: all), so a file that lacks a column leaves it as it was. The
    caller decides beforehand, from :func:`stored_hashes`, which rows are new or changed; the ON
    CONFLICT clauses only guard against another writer racing it.
    """
    if not rows:
        return 0
    table = KIND_TABLES[kind.name]
    key = table.c[kind.key]
    stmt: Insert = _insert(connection, table)
    if kind.append_only:
        stmt = stmt.on_conflict_do_nothing(index_elements=[key])  # type: ignore[attr-defined]
    else:
        excluded = stmt.excluded  # type: ignore[attr-defined]
        stmt = stmt.on_conflict_do_update(  # type: ignore[attr-defined]
            index_elements=[key],
            set_={
                c.name: excluded[c.name]
                for c in table.columns
                if c.name != kind.key and (update is None or c.name in update)
            },
            where=table.c[ROW_HASH] != excluded[ROW_HASH],
        )
    result = connection.execute(stmt.returning(key), list(rows))
    return len(result.all())


def stored_hashes(connection: Connection, kind: Kind, keys: Iterable[str]) -> dict[str, str]:
    """Key -> content hash of the stored records among ``keys`` (one round trip)."""
    wanted = list(keys)
    if not wanted:
        return {}
    select_hashes = f'SELECT "{kind.key}", {ROW_HASH} FROM "{kind.name}" WHERE "{kind.key}"'
    if connection.dialect.name == "postgresql":
        result = connection.exec_driver_sql(f"{select_hashes} = ANY(%(keys)s)", {"keys": wanted})
    else:
        result = connection.exec_driver_sql(
            f"{select_hashes} IN (SELECT value FROM json_each(?))", (json.dumps(wanted),)
        )
    return {key: digest for key, digest in result}


def stored_values(
    connection: Connection, kind: Kind, keys: Iterable[str], column: str
) -> dict[str, Any]:
    """Key -> ``column`` of the stored records among ``keys``."""
    wanted = list(keys)
    if not wanted:
        return {}
    table = KIND_TABLES[kind.name]
    query = select(table.c[kind.key], table.c[column]).where(table.c[kind.key].in_(wanted))
    return {key: found for key, found in connection.execute(query)}


def column_map(connection: Connection, kind: Kind, value: str) -> dict[str, Any]:
    """Key -> ``value`` column for every stored record of ``kind``."""
    table = KIND_TABLES[kind.name]
    query = select(table.c[kind.key], table.c[value])
    return {key: found for key, found in connection.execute(query)}


def insert_new(connection: Connection, kind: Kind, table: pa.Table) -> int:
    """Bulk-insert rows of an append-only kind given as an Arrow table; return how many went in.

    Values are plain: text, numbers, booleans, dates and times as ISO text, JSON as text. Each
    backend uses its fastest path: SQLite a prepared executemany, PostgreSQL COPY. Rows whose id
    is already stored are skipped (another writer may have raced us).
    """
    if not table.num_rows:
        return 0
    return _BULK[connection.dialect.name](connection, kind, table)


def supports_bulk(connection: Connection) -> bool:
    """Whether :func:`insert_new` has a fast path for this backend."""
    return connection.dialect.name in _BULK


def _column_list(table: pa.Table) -> str:
    return ", ".join(f'"{name}"' for name in table.column_names)


def _bulk_sqlite(connection: Connection, kind: Kind, table: pa.Table) -> int:
    marks = ", ".join("?" for _ in table.column_names)
    sql = (
        f'INSERT INTO "{kind.name}" ({_column_list(table)}) VALUES ({marks}) ON CONFLICT DO NOTHING'
    )
    rows = list(zip(*(column.to_pylist() for column in table.columns), strict=True))
    return int(connection.exec_driver_sql(sql, rows).rowcount)


def _bulk_postgresql(connection: Connection, kind: Kind, table: pa.Table) -> int:
    """COPY straight into the table; if another writer stored one of the ids meanwhile, COPY
    into a staging table and insert what is still new."""
    savepoint = connection.begin_nested()
    try:
        _copy(connection, kind.name, table)
    except psycopg.errors.UniqueViolation:
        savepoint.rollback()
        return _copy_via_staging(connection, kind, table)
    savepoint.commit()
    return int(table.num_rows)


def _copy(connection: Connection, target: str, table: pa.Table) -> None:
    """COPY the table as CSV written by Arrow (null is an unquoted empty field)."""
    buffer = io.BytesIO()
    csv.write_csv(table, buffer, csv.WriteOptions(include_header=False, quoting_style="needed"))
    raw: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
    statement = f'COPY "{target}" ({_column_list(table)}) FROM STDIN WITH (FORMAT csv)'
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(buffer.getbuffer())


def _copy_via_staging(connection: Connection, kind: Kind, table: pa.Table) -> int:
    staging = f"_load_{kind.name}"
    names = _column_list(table)
    connection.exec_driver_sql(
        f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" (LIKE "{kind.name}") ON COMMIT DROP'
    )
    connection.exec_driver_sql(f'TRUNCATE "{staging}"')
    _copy(connection, staging, table)
    result = connection.exec_driver_sql(
        f'INSERT INTO "{kind.name}" ({names}) SELECT {names} FROM "{staging}" '
        "ON CONFLICT DO NOTHING"
    )
    return int(result.rowcount)


_BULK = {"sqlite": _bulk_sqlite, "postgresql": _bulk_postgresql}
