"""The model registry: every trained churn model, versioned, with what it was trained on.

A version keeps its training window, inputs, the inputs the leakage guard left out, its backtest
figures, a model card, and the fitted estimator (pickled, with its SHA-256 checked on load). The
registry trusts only its own database: load models from a store you control.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, insert, select

from tenure.store import Store
from tenure.store.tables import churn_models

NAMES = ("logistic", "boosting", "time-to-churn")


@dataclass(frozen=True)
class ModelVersion:
    """One registered churn model version (the estimator is loaded on demand)."""

    model_id: int
    name: str
    version: int
    outcome: str
    horizon_days: int
    trained_at: datetime
    train_from: date
    train_to: date
    data_end: date
    health_model: str
    inputs: list[str]
    left_out: list[dict[str, Any]]
    metrics: dict[str, Any]
    card: str

    def to_dict(self, card: bool = False) -> dict[str, Any]:
        data = {
            "model_id": self.model_id, "name": self.name, "version": self.version,
            "outcome": self.outcome, "horizon_days": self.horizon_days,
            "trained_at": self.trained_at.isoformat(timespec="seconds"),
            "train_from": self.train_from.isoformat(), "train_to": self.train_to.isoformat(),
            "data_end": self.data_end.isoformat(), "health_model": self.health_model,
            "inputs": self.inputs, "left_out": self.left_out, "metrics": self.metrics,
        }  # fmt: skip
        return data | {"card": self.card} if card else data


_COLUMNS = [c for c in churn_models.columns if c.name not in ("artifact", "digest")]


def next_version(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.max(churn_models.c.version))).scalar() or 0) + 1


def save(store: Store, version: ModelVersion, artifact: Any) -> ModelVersion:
    """Register a trained model; its ``model_id`` is assigned here."""
    blob = pickle.dumps(artifact, protocol=pickle.HIGHEST_PROTOCOL)
    values = version.to_dict(card=True) | {
        "trained_at": version.trained_at, "train_from": version.train_from,
        "train_to": version.train_to, "data_end": version.data_end,
        "artifact": blob, "digest": hashlib.sha256(blob).hexdigest(),
    }  # fmt: skip
    values.pop("model_id")
    with store.transaction() as connection:
        new_id = connection.execute(insert(churn_models).values(**values)).inserted_primary_key[0]  # type: ignore[index]
    return _replace(version, int(new_id))


def _replace(version: ModelVersion, model_id: int) -> ModelVersion:
    data = {**version.__dict__, "model_id": model_id}
    return ModelVersion(**data)


def versions(store: Store, name: str | None = None) -> list[ModelVersion]:
    """Registered models, newest first (only ``name`` when given)."""
    query = select(*_COLUMNS).order_by(churn_models.c.model_id.desc())
    if name is not None:
        query = query.where(churn_models.c.name == name)
    with store.engine.connect() as connection:
        return [_version(row._mapping) for row in connection.execute(query)]


def _version(row: Any) -> ModelVersion:
    return ModelVersion(**{c.name: row[c.name] for c in _COLUMNS})


def find(store: Store, ref: str) -> ModelVersion:
    """A model by id (``12``), by name (newest version) or by ``name:version``."""
    found = versions(store)
    name, _, number = ref.partition(":")
    if ref.isdigit():
        chosen = [v for v in found if v.model_id == int(ref)]
    else:
        chosen = [v for v in found if v.name == name and (not number or str(v.version) == number)]
    if not chosen:
        hint = "train one with `tenure train`" if not found else f"choose from {', '.join(NAMES)}"
        raise KeyError(f"no churn model {ref!r}; {hint}")
    return chosen[0]


def artifact(store: Store, version: ModelVersion) -> Any:
    """The fitted estimator of ``version`` (its checksum verified)."""
    with store.engine.connect() as connection:
        blob, digest = connection.execute(
            select(churn_models.c.artifact, churn_models.c.digest).where(
                churn_models.c.model_id == version.model_id
            )
        ).one()
    if hashlib.sha256(blob).hexdigest() != digest:
        raise ValueError(f"churn model {version.model_id} is damaged: its checksum does not match")
    return pickle.loads(blob)


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
