"""Shared fixtures: a store on every backend (SQLite file, throwaway PostgreSQL), and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

# Two test workers share two cores: numerical libraries' OpenMP threads (gradient boosting) would
# otherwise spin against each other, and a 0.1 s fit can take half a minute. Set before they load.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from postgres_server import throwaway_postgres
from tenure.cli import app, console, out
from tenure.demo import PortfolioSpec, generate_portfolio
from tenure.demo.load import demo_model
from tenure.health import load_model
from tenure.health.scoring import register
from tenure.ingest import import_file
from tenure.store import Store

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One throwaway PostgreSQL server per test worker, with a migrated template database."""
    with throwaway_postgres() as url:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("DROP DATABASE IF EXISTS tenure_template"))
            connection.execute(text("CREATE DATABASE tenure_template"))
        template = make_url(url).set(database="tenure_template")
        store = Store(template.render_as_string(hide_password=False))
        store.upgrade()
        store.close()
        yield url
        admin.dispose()


def fresh_postgres(url: str) -> str:
    """A new, migrated, empty database on the test server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE tenure_template"))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each backend in turn (the contract suite runs on both)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tenure.db'}"
    return fresh_postgres(request.getfixturevalue("postgres_url"))


def migrated(url: str) -> Iterator[Store]:
    """A store with the newest schema, closed afterwards."""
    store = Store(url)
    store.upgrade()
    yield store
    store.close()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    yield from migrated(store_url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tenure.db'}"


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    yield from migrated(sqlite_url)


class Cli:
    """Runs ``tenure`` in-process against one database, the way a user types it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.runner = CliRunner()
        for terminal in (out, console):  # as wide as COLUMNS says below, however the process began
            terminal.width = 200

    def run(self, *args: str, code: int | None = 0) -> Any:
        result = self.runner.invoke(
            app, [str(a) for a in args], env={"TENURE_DATABASE_URL": self.url, "COLUMNS": "200"}
        )
        if code is not None:
            assert result.exit_code == code, (result.output, result.exception)
        assert "Traceback" not in result.output
        return result

    def json(self, *args: str, code: int | None = 0) -> dict[str, Any]:
        result = self.run(*args, "--json", code=code)
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, result.stdout
        data: dict[str, Any] = json.loads(lines[0])
        return data


@pytest.fixture
def cli(store_url: str) -> Cli:
    return Cli(store_url)


@pytest.fixture
def sqlite_cli(sqlite_url: str) -> Cli:
    return Cli(sqlite_url)


def require_shared_data() -> Path:
    """The public data sets beside the clone (CI has them; a missing folder is an error)."""
    assert SHARED_DATA.is_dir(), f"expected the shared data at {SHARED_DATA}"
    return SHARED_DATA


PORTFOLIO = PortfolioSpec(accounts=150, months=18, events_per_active_user_day=0.3, seed=11)


@pytest.fixture(scope="session")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated portfolio imported like a user would, with the demo health model active
    (built once per test worker; tests that add records work on a copy)."""
    root = tmp_path_factory.mktemp("portfolio")
    store = Store(portfolio_url(root))
    store.ensure_schema()
    for kind, paths in generate_portfolio(PORTFOLIO, root / "data").items():
        for path in paths:
            assert import_file(store, kind, path).rejected == 0
    register(store, load_model(demo_model(root / "data")))
    store.close()
    return root


def portfolio_url(root: Path) -> str:
    return f"sqlite:///{root / 'tenure.db'}"


def copy_database(source: Path, target: Path) -> None:
    """The portfolio's SQLite database (with its write-ahead log) copied into ``target``."""
    for name in ("tenure.db", "tenure.db-wal", "tenure.db-shm"):
        if (source / name).exists():
            shutil.copy(source / name, target / name)
