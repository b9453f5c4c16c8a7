"""Calibrate the health model from outcomes: component weights that predict what happened.

A logistic regression of the outcome on the component scores (0-100 each) of the snapshots before
the backtest's first test day says how much each component's points lower the risk. The new
weight of a component is proportional to that effect (at least 1: a component that does not help
keeps a token weight rather than vanishing), scaled to the model's total weight. The proposal is a
new model version, written to a file and not activated, backtested beside the model in force on
the same later test snapshots, so neither was fitted to what it is judged on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression

from tenure.churn import backtest as bt
from tenure.churn.estimators import HealthScoreRisk
from tenure.churn.snapshots import add_health
from tenure.churn.training import prepare
from tenure.health.model import HealthModel, parse_model
from tenure.health.scoring import active_model
from tenure.store import Store

PROPOSED = "health_score_proposed"


@dataclass
class Calibration:
    """The proposed weights, the evidence behind them, and both models' backtests."""

    current: str
    proposed: str
    path: Path
    weights: list[dict[str, Any]]
    fitted_on: str
    backtest: bt.Backtest

    def to_dict(self) -> dict[str, Any]:
        return {
            "current_model": self.current, "proposed_model": self.proposed,
            "file": str(self.path), "weights": self.weights, "fitted_on": self.fitted_on,
            "results": [r.to_dict() for r in self.backtest.results],
            "test_snapshots": [d.isoformat() for d in self.backtest.folds],
            "horizon_days": self.backtest.horizon,
        }  # fmt: skip


def calibrate(
    store: Store, out: Path | None = None, horizon: int = 90, every: int | None = None,
    max_folds: int = bt.MAX_FOLDS,
) -> Calibration:  # fmt: skip
    """Propose new component weights for the model in force and backtest both side by side."""
    model = active_model(store).model
    path = out or Path(f"{model.name}-v{_next_version(model.version)}.yaml")
    if out is None and path.exists():
        raise ValueError(f"{path} exists already: choose where to write with --out")
    snapshots, guarded = prepare(store, horizon, every=every, folds=max_folds)
    folds = bt.test_days(snapshots, max_folds)
    if not folds:
        raise ValueError("too little history to calibrate: backtest folds need closed windows")
    train = snapshots.labelled(folds[0])  # windows closed before the first test day
    effects = component_effects(train, model)
    proposed = propose(model, effects, folds[0])
    add_health(snapshots.frame, proposed, PROPOSED)
    chosen = [
        bt.Contender(model.label, HealthScoreRisk, ["health_score"]),
        bt.Contender(proposed.label, lambda: HealthScoreRisk(PROPOSED), [PROPOSED]),
    ]
    result = bt.run(snapshots, guarded, chosen, max_folds)
    try:
        path.write_text(proposed.text, encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot write the proposed model to {path}: {err.strerror}") from None
    weights = [
        {"component": c.name, "current": c.weight, "proposed": dict(_weights(proposed))[c.name],
         "effect_per_10_points": round(-10 * effects[c.name], 4)}
        for c in model.components
    ]  # fmt: skip
    fitted_on = f"{len(train):,} snapshots before {folds[0]} ({int(train['label'].sum())} outcomes)"
    return Calibration(model.label, proposed.label, path, weights, fitted_on, result)


def component_effects(rows: Any, model: HealthModel) -> dict[str, float]:
    """Change in the outcome's log-odds per component point (negative: the points protect)."""
    names = [c.name for c in model.components]
    columns = [f"health:{n}" for n in names]
    X = rows.reindex(columns=columns).astype(float)
    X = X.fillna(X.median()).fillna(50.0).to_numpy()
    labels = rows["label"].to_numpy(dtype=int)
    if len(np.unique(labels)) < 2:
        raise ValueError("the calibration window holds only one outcome: it needs both")
    fit = LogisticRegression(C=1.0, max_iter=5000).fit(X, labels)
    return {n: float(b) for n, b in zip(names, fit.coef_[0], strict=True)}


def propose(model: HealthModel, effects: dict[str, float], fitted_before: date) -> HealthModel:
    """The model with weights proportional to each component's protective effect."""
    total = sum(c.weight for c in model.components)
    protect = {n: max(-b, 0.0) for n, b in effects.items()}
    scale = total / sum(protect.values()) if sum(protect.values()) else 0.0
    weights = {n: max(1, round(p * scale)) for n, p in protect.items()} if scale else {}
    document = yaml.safe_load(model.text)
    for name, spec in document["components"].items():
        spec["weight"] = weights.get(name, spec["weight"])
    document["version"] = _next_version(model.version)
    document["description"] = (
        f"{model.description} Weights calibrated from outcomes by `tenure calibrate` on the "
        f"snapshots before {fitted_before}; the previous version was {model.label}."
    )
    header = (
        f"# Proposed by `tenure calibrate` from {model.label}: only the component weights "
        "changed.\n# Try it with `tenure rescore --model FILE --from DATE`; activate it with "
        "`tenure score --model FILE`.\n"
    )
    text = header + yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )
    return parse_model(text, "proposed model")


def _weights(model: HealthModel) -> list[tuple[str, float]]:
    return [(c.name, c.weight) for c in model.components]


def _next_version(version: str) -> str:
    head, dot, last = version.rpartition(".")
    if last.isdigit():
        return f"{head}{dot}{int(last) + 1}"
    return f"{version}.1"
