"""The composition root: settings and store are wired here, and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass

from tenure.settings import Settings, load
from tenure.store import Store


@dataclass
class Tenure:
    """One running Tenure: its settings and its store (schema brought up to date on open)."""

    settings: Settings
    store: Store

    @classmethod
    def open(cls, database_url: str | None = None) -> Tenure:
        settings = load(database_url=database_url)
        store = Store(settings.database_url)
        store.ensure_schema()
        return cls(settings, store)

    def close(self) -> None:
        self.store.close()
