"""Smoke test for the throwaway PostgreSQL helper."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from postgres_server import ENV_URL, throwaway_postgres


@pytest.mark.postgres
def test_throwaway_postgres_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row written through SQLAlchemy reads back, and the server listens on loopback only."""
    monkeypatch.delenv(ENV_URL, raising=False)
    with throwaway_postgres() as url:
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL)"))
                conn.execute(sa.text("INSERT INTO t VALUES (1, 'acme')"))
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT id, name FROM t")).all()
                listen = conn.execute(sa.text("SHOW listen_addresses")).scalar_one()
        finally:
            engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "acme")]
    assert listen == "127.0.0.1"
