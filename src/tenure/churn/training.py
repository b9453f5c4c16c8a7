"""Training: point-in-time snapshots, the leakage guard, a backtest, then the final fit.

:func:`train` backtests every contender first (so each registered model carries honest,
out-of-time figures), then fits the three churn models on every labelled snapshot and registers
them as one new version. The logistic model also keeps refits on bootstrap resamples of accounts,
from which what-if answers take their confidence intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from tenure.churn import backtest as bt
from tenure.churn.guard import Guarded, guard
from tenure.churn.registry import NAMES, ModelVersion, next_version, now, save
from tenure.churn.snapshots import Snapshots, build, snapshot_days
from tenure.health.scoring import from_day_number
from tenure.store import Store

BOOTSTRAPS = 100  # refits for what-if intervals: enough for stable 2.5% and 97.5% tails
Progress = Callable[[str, int, int], None]


@dataclass
class Training:
    """What ``tenure train`` did: the registered models and the backtest behind their figures."""

    models: list[ModelVersion]
    backtest: bt.Backtest

    def to_dict(self) -> dict[str, Any]:
        return {"models": [m.to_dict() for m in self.models], "backtest": self.backtest.to_dict()}


def prepare(
    store: Store, horizon: int = 90, outcome: str = "churn", every: int | None = None,
    allow: Sequence[str] = (), end: date | None = None, through: bool = False,
    folds: int = bt.MAX_FOLDS,
) -> tuple[Snapshots, Guarded]:  # fmt: skip
    """Snapshots over the store's history up to ``end`` (``through``: and on ``end`` itself, to
    see every account as it is that day) and the inputs the leakage guard lets through, judged
    on the labels known before the first of ``folds`` test days (so a backtest's choice of
    inputs never sees its own test labels)."""
    days = snapshot_days(store, every, end)
    if through and end is not None:
        days = sorted({*days, end})
    snapshots = build(store, days, horizon, outcome)
    tested = bt.test_days(snapshots, folds)
    return snapshots, guard(snapshots, allow, tested[0] if tested else None)


def train(
    store: Store, horizon: int = 90, outcome: str = "churn", every: int | None = None,
    allow: Sequence[str] = (), max_folds: int = bt.MAX_FOLDS, progress: Progress | None = None,
) -> Training:  # fmt: skip
    """Backtest, fit and register the logistic, boosting and time-to-churn models."""
    snapshots, guarded = prepare(store, horizon, outcome, every, allow, folds=max_folds)
    step = (lambda done, total: progress("backtest", done, total)) if progress else None
    result = bt.run(snapshots, guarded, max_folds=max_folds, progress=step)
    labelled = snapshots.labelled()
    version = next_version(store)
    models = []
    chosen = [c for c in bt.contenders(guarded.inputs, horizon) if c.name in NAMES]
    for i, contender in enumerate(chosen):
        rows = snapshots.frame if contender.survival else labelled
        estimator = bt.fit(contender, snapshots, rows, snapshots.data_end)
        artifact: dict[str, Any] = {"estimator": estimator}
        if contender.name == "logistic":
            artifact["replicates"] = bootstrap(contender, snapshots, labelled)
        record = _record(contender.name, version, snapshots, guarded, result)
        strongest = _strongest(estimator, rows[contender.columns], rows["label"])
        record = _with_card(record, strongest, result)
        models.append(save(store, record, artifact))
        if progress:
            progress("fit", i + 1, len(chosen))
    return Training(models, result)


def bootstrap(
    contender: bt.Contender, snapshots: Snapshots, rows: pd.DataFrame, count: int = BOOTSTRAPS
) -> list[Any]:
    """Refits on resamples of whole accounts (an account's snapshots stay together)."""
    accounts = rows["account_id"].unique()
    groups = rows.groupby("account_id").indices
    rng = np.random.default_rng(0)
    fits = []
    for _ in range(count):
        drawn = rng.choice(accounts, size=len(accounts), replace=True)
        sample = rows.iloc[np.concatenate([groups[a] for a in drawn])]
        if sample["label"].nunique() == 2:
            fits.append(bt.fit(contender, snapshots, sample, snapshots.data_end))
    return fits


def _record(
    name: str, version: int, snapshots: Snapshots, guarded: Guarded, result: bt.Backtest
) -> ModelVersion:
    labelled = snapshots.labelled()
    metrics = result.result(name).to_dict()
    metrics["rows"], metrics["positives"] = len(labelled), int(labelled["label"].sum())
    metrics["backtest"] = {
        q.name: {k: q.to_dict()[k] for k in ("auc", "pr_auc", "brier", "ece")}
        for q in result.results
    }
    return ModelVersion(
        model_id=0, name=name, version=version, outcome=snapshots.outcome,
        horizon_days=snapshots.horizon, trained_at=now(),
        train_from=from_day_number(int(labelled["day"].min())),
        train_to=from_day_number(int(labelled["day"].max())), data_end=snapshots.data_end,
        health_model=snapshots.model, inputs=guarded.inputs,
        left_out=[f.to_dict() for f in guarded.flags if not f.kept], metrics=metrics, card="",
    )  # fmt: skip


def _strongest(estimator: Any, X: pd.DataFrame, labels: pd.Series) -> tuple[str, dict[str, float]]:
    """The inputs that weigh most, as the model can say: coefficients for the linear ones, else
    the AUC lost when each input is shuffled (permutation importance, on labelled rows)."""
    weights = getattr(estimator, "coefficients", None)
    if weights is not None:
        return "per standard deviation; positive raises risk", weights()
    from sklearn.inspection import permutation_importance

    known = labels.notna().to_numpy()
    found = permutation_importance(estimator, X[known], labels[known].astype(int), scoring="roc_auc",
                                   n_repeats=3, random_state=0)  # fmt: skip
    return "AUC lost when shuffled", dict(zip(X.columns, found.importances_mean, strict=True))


def _with_card(
    record: ModelVersion, strongest: tuple[str, dict[str, float]], result: bt.Backtest
) -> ModelVersion:
    return ModelVersion(**{**record.__dict__, "card": card(record, strongest, result)})


def card(record: ModelVersion, strongest: tuple[str, dict[str, float]], result: bt.Backtest) -> str:
    """The model card: what the model is for, what it saw, how well it did, and its limits."""
    m = record.metrics
    lines = [
        f"# Churn model {record.name} v{record.version}",
        "",
        f"Predicts: {record.outcome} within {record.horizon_days} days of a snapshot, per account.",
        f"Trained: {record.trained_at:%Y-%m-%d %H:%M} UTC on monthly point-in-time snapshots from "
        f"{record.train_from} to {record.train_to} (outcomes known to {record.data_end}): "
        f"{m['rows']:,} snapshots, {m['positives']:,} with the outcome.",
        f"Health model alongside: {record.health_model}.",
        "",
        "## Backtest (rolling time split, out of time)",
        f"Test snapshots: {', '.join(d.isoformat() for d in result.folds)}.",
        "",
        "| contender | AUC | PR-AUC | Brier | ECE |",
        "|---|---|---|---|---|",
    ]
    for name, q in m["backtest"].items():
        lines.append(f"| {name} | {q['auc']} | {q['pr_auc']} | {q['brier']} | {q['ece']} |")
    lines += ["", f"## Inputs ({len(record.inputs)})", ", ".join(record.inputs), ""]
    if record.left_out:
        lines.append("## Left out by the leakage guard")
        lines += [f"- {f['input']}: {f['reason']} ({f['evidence']})" for f in record.left_out]
        lines.append("")
    how, weights = strongest
    top = sorted(weights.items(), key=lambda kv: -abs(kv[1]))[:10]
    lines.append(f"## Strongest inputs ({how})")
    lines += [f"- {name}: {value:+.3f}" for name, value in top]
    lines.append("")
    lines += [
        "## Limits",
        "- Account attributes other than segment, industry and region have no history and are "
        "not used; the leakage guard lists any it left out.",
        "- Probabilities are calibrated on the accounts it was trained on; check the reliability "
        "table of `tenure backtest` before acting on the absolute numbers for a new segment.",
    ]
    return "\n".join(lines) + "\n"
