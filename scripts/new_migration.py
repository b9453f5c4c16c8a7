"""Autogenerate an Alembic migration from the tables: ``make migration MSG="what changed"``.

It migrates a scratch SQLite database to the current head, compares it with the tables declared in
``tenure.store.tables`` and writes the difference as a new revision. Read it before committing.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from tenure.store import Store


def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        store = Store(f"sqlite:///{Path(scratch) / 'scratch.db'}")
        store.upgrade()
        with store.engine.begin() as connection:
            command.revision(store._alembic(connection), message=message, autogenerate=True)
        store.close()


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "schema change")
