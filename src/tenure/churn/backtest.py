"""Backtests on a rolling time split: train on what was known, predict the next snapshot.

For each test snapshot day ``t`` every contender is fitted on the snapshots whose outcome window
had closed by ``t`` (``day + horizon <= t``: their labels were known then) and predicts the
accounts on ``t``. Predictions of every fold are pooled and scored together, so each figure is
out of time: no model ever saw a label from after the day it predicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from tenure.churn.estimators import (
    ChurnBoosting,
    ChurnLogistic,
    HealthScoreRisk,
    SegmentRate,
    TimeToChurn,
)
from tenure.churn.guard import Guarded
from tenure.churn.metrics import Quality, quality
from tenure.churn.snapshots import STABLE_ATTRIBUTES, Snapshots
from tenure.health.scoring import day_number, from_day_number

MIN_TRAIN_DAYS = 3  # snapshot days a fold needs before it may be tested
MAX_FOLDS = 12
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Contender:
    """A way to predict the outcome: a fresh estimator and the columns it reads."""

    name: str
    make: Callable[[], Any]
    columns: list[str]
    survival: bool = False  # fitted to days-to-outcome with censoring rather than a label


def segment_columns(inputs: Sequence[str]) -> list[str]:
    return [c for c in inputs if c.startswith(f"{STABLE_ATTRIBUTES[0]}=")]


def contenders(inputs: list[str], horizon: int, models: bool = True) -> list[Contender]:
    """The health score, the baseline and (``models``) the three churn models."""
    chosen = [
        Contender("health score", HealthScoreRisk, ["health_score"]),
        Contender("baseline", SegmentRate, segment_columns(inputs)),
    ]
    if models:
        chosen += [
            Contender("logistic", ChurnLogistic, inputs),
            Contender("boosting", ChurnBoosting, inputs),
            Contender("time-to-churn", lambda: TimeToChurn(horizon), inputs, survival=True),
        ]
    return chosen


@dataclass
class Backtest:
    """What a backtest found: each contender's figures side by side, and the predictions."""

    horizon: int
    outcome: str
    folds: list[date]
    data_end: date
    health_model: str
    results: list[Quality]
    guard: Guarded
    predictions: pd.DataFrame = field(repr=False)
    notes: list[str] = field(default_factory=list)

    def result(self, name: str) -> Quality:
        return next(r for r in self.results if r.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon_days": self.horizon,
            "outcome": self.outcome,
            "data_end": self.data_end.isoformat(),
            "test_snapshots": [d.isoformat() for d in self.folds],
            "health_model": self.health_model,
            "results": [r.to_dict() for r in self.results],
            "inputs": len(self.guard.inputs),
            "leakage_guard": [f.to_dict() for f in self.guard.flags],
            "notes": self.notes,
        }


def test_days(snapshots: Snapshots, max_folds: int = MAX_FOLDS) -> list[date]:
    """The snapshot days a rolling split can test: labelled, after enough closed training days."""
    if max_folds < 1:
        raise ValueError(f"a backtest needs at least one test snapshot, not {max_folds}")
    labelled = snapshots.labelled()
    days = sorted(labelled["day"].unique())
    usable = [
        int(t) for t in days
        if len({d for d in days if d + snapshots.horizon <= t}) >= MIN_TRAIN_DAYS
    ]  # fmt: skip
    return [from_day_number(t) for t in usable[-max_folds:]]


def fit(contender: Contender, snapshots: Snapshots, train: pd.DataFrame, known_by: date) -> Any:
    """A fresh estimator of ``contender`` fitted on ``train`` as it was known on ``known_by``
    (a survival contender reads days to the outcome, censored at ``known_by``)."""
    estimator = contender.make()
    X = train[contender.columns]
    if contender.survival:
        days, came = snapshots.durations(train, known_by)
        return estimator.fit(X, np.column_stack([days, came]))
    return estimator.fit(X, train["label"].to_numpy(dtype=int))


def run(
    snapshots: Snapshots, guarded: Guarded, chosen: list[Contender] | None = None,
    max_folds: int = MAX_FOLDS, progress: Progress | None = None,
) -> Backtest:  # fmt: skip
    """Backtest every contender over the rolling split of ``snapshots``."""
    chosen = chosen or contenders(guarded.inputs, snapshots.horizon)
    folds = test_days(snapshots, max_folds)
    if not folds:
        raise ValueError(
            f"too little history to backtest: need {MIN_TRAIN_DAYS} snapshot days whose "
            f"{snapshots.horizon}-day outcome window closed before a later labelled snapshot"
        )
    labelled = snapshots.labelled()
    parts = []
    for i, day in enumerate(folds):
        train = labelled[labelled["day"] + snapshots.horizon <= day_number(day)]
        test = labelled[labelled["day"] == day_number(day)]
        part = test[["account_id", "day", "event_day", "label", "segment"]].copy()
        before = snapshots.frame[snapshots.frame["day"] < day_number(day)]
        for contender in chosen:
            model = fit(contender, snapshots, before if contender.survival else train, day)
            part[contender.name] = model.predict_proba(test[contender.columns])[:, 1]
        parts.append(part)
        if progress:
            progress(i + 1, len(folds))
    predictions = pd.concat(parts, ignore_index=True)
    results = [_quality(c.name, predictions, snapshots.horizon) for c in chosen]
    notes = [f"{f.input} left out: {f.reason} ({f.evidence})" for f in guarded.flags if not f.kept]
    notes += [f"{f.input} kept at your request: {f.reason}" for f in guarded.flags if f.kept]
    return Backtest(
        snapshots.horizon, snapshots.outcome, folds, snapshots.data_end, snapshots.model,
        results, guarded, predictions, notes,
    )  # fmt: skip


def _quality(name: str, predictions: pd.DataFrame, horizon: int) -> Quality:
    return quality(
        name,
        predictions["label"].to_numpy(dtype=int),
        predictions[name].to_numpy(dtype=float),
        predictions["account_id"].to_numpy(),
        predictions["day"].to_numpy(dtype=float),
        predictions["event_day"].to_numpy(dtype=float),
        horizon,
    )
