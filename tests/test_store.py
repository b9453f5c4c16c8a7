"""The store on every backend: migrations match the declared tables; SQLite takes several writers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from conftest import Cli
from tenure.store import Store, metadata


def test_migrations_produce_exactly_the_declared_tables(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
    assert store.revision() == store.head()


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
