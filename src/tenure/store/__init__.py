"""Persistence of the account record (SQLAlchemy 2 + Alembic)."""

from tenure.store.database import Store, StoreError, make_engine
from tenure.store.tables import KIND_TABLES, metadata

__all__ = ["KIND_TABLES", "Store", "StoreError", "make_engine", "metadata"]
