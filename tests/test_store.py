"""The store on every backend: migrations match the declared tables; SQLite takes several writers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from conftest import Cli
from tenure.record import KINDS
from tenure.store import Store, metadata, records


def test_migrations_produce_exactly_the_declared_tables(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
    assert store.revision() == store.head()


def test_the_declared_head_is_alembics_newest_migration(sqlite_store: Store) -> None:
    """Opening a current database skips Alembic by comparing with HEAD; it must be right."""
    from tenure.store.database import HEAD

    assert sqlite_store.head() == HEAD


def test_sqlite_is_in_wal_mode(sqlite_store: Store) -> None:
    with sqlite_store.engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert mode == "wal"


def test_migrate_command_reports_the_revision(cli: Cli) -> None:
    data = cli.json("migrate")
    assert data["revision"] == Store(cli.url).head()


def test_several_processes_import_into_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id,name\n" + "".join(f"A{i},Co {i}\n" for i in range(50)))
    Store(url).upgrade()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tenure",
            "import",
            "accounts",
            str(accounts),
            "--db",
            url,
            "--json",
        ],
        check=True,
        capture_output=True,
    )
    files = []
    for n in range(4):
        path = tmp_path / f"events{n}.csv"
        rows = "".join(
            f"A{i % 50},u{i},login,2024-03-01T10:{i % 60:02d}:{n:02d}Z\n" for i in range(2000)
        )
        path.write_text("account_id,user_id,event,timestamp\n" + rows)
        files.append(path)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tenure", "import", "events", str(p), "--db", url, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in files
    ]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    assert Store(url).counts()["events"] == 4 * 2000


def test_bulk_insert_skips_ids_another_writer_stored(store: Store) -> None:
    """The fast path falls back cleanly when an id is already there (a racing writer)."""
    accounts = [{"account_id": "A1", "_row_hash": "x"}]
    columns = ["event_id", "account_id", "event", "timestamp", "count", "_row_hash"]
    rows = [(f"e{i}", "A1", "login", "2024-03-01 10:00:00.000000", 1, f"h{i}") for i in range(5)]
    late = ("e9", "A1", "login", "2024-03-01 11:00:00.000000", 1, "h9")

    def table(values: list[tuple[object, ...]]) -> pa.Table:
        return pa.table(
            dict(zip(columns, (list(c) for c in zip(*values, strict=True)), strict=True))
        )

    with store.transaction() as connection:
        records.write(connection, KINDS["accounts"], accounts)
        assert records.insert_new(connection, KINDS["events"], table(rows)) == 5
        assert records.insert_new(connection, KINDS["events"], table([*rows, late])) == 1
    assert store.counts()["events"] == 6
