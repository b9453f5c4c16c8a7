"""The store: one SQL database (SQLite file by default, PostgreSQL for a team), schema by Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import make_url

from tenure.record import KINDS
from tenure.record.columns import canonical_json
from tenure.store.tables import KIND_TABLES

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0005"  # the newest migration (a test checks it against Alembic's own view)


class StoreError(RuntimeError):
    """The store cannot be used as configured (bad URL, unreachable server, old schema)."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache: bulk imports touch indexes
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Writers take the write lock up front (and wait their turn); readers never block them."""
    writing = conn.get_execution_options().get("tenure_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and write transactions that wait their turn."""
    try:
        parsed = make_url(url)
    except Exception as err:  # sqlalchemy raises ArgumentError with a terse message
        raise StoreError(f"not a database URL: {url!r} ({err})") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, json_serializer=canonical_json)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(parsed, pool_pre_ping=True, json_serializer=canonical_json)


class Store:
    """The account record's database: schema upgrades, transactions and counts."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql`` (the SQLAlchemy backend name)."""
        return self.engine.dialect.name

    def describe(self) -> str:
        """The URL with any password hidden."""
        return make_url(self.url).render_as_string(hide_password=True)

    def _alembic(self, connection: Connection) -> Config:
        from alembic.config import Config  # Alembic loads only when the schema must change

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        return config

    def upgrade(self) -> str | None:
        """Bring the schema to the newest migration; return the revision now in force."""
        from alembic import command

        with self.transaction() as connection:
            command.upgrade(self._alembic(connection), "head")
        return self.revision()

    def revision(self) -> str | None:
        """The migration the database is at (None for an empty database)."""
        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return None if found is None else str(found)

    def head(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory(str(MIGRATIONS)).get_current_head()

    def ensure_schema(self) -> None:
        """Upgrade when the schema is behind (cheap when it is current: no Alembic)."""
        if self.revision() != HEAD:
            self.upgrade()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One all-or-nothing unit of work."""
        writer = self.engine.connect().execution_options(tenure_write=True)
        with writer as connection:
            try:
                with connection.begin():
                    yield connection
            except BaseException as err:
                if not isinstance(err, Exception):  # Ctrl-C inside the driver: drop the
                    connection.invalidate()  # connection, so that its write lock goes with it
                raise

    def counts(self) -> dict[str, int]:
        """Rows per kind."""
        with self.engine.connect() as connection:
            return {
                name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in KIND_TABLES.items()
                if name in KINDS
            }

    def close(self) -> None:
        self.engine.dispose()
