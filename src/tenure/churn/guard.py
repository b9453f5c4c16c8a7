"""The leakage guard: inputs that could not have been known at the snapshot are kept out.

Two kinds are flagged and left out unless the user insists (``allow``):

- *current only*: a value with no history in the record (an account attribute as it is now). It
  may have been set by the outcome itself (``lifecycle_stage`` is "churned" after churn).
- *separates*: an input that on its own ranks the outcome almost perfectly (AUC at or above
  :data:`SEPARATION`); real churn is never that easy, so it almost always means a leak.

Signals need no such check for time: the engines read only records dated on or before the
snapshot. The report lists every flag with its evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from tenure.churn.snapshots import Snapshots

SEPARATION = 0.95


@dataclass(frozen=True)
class Flag:
    """One suspicious input: why, the evidence, and whether it stayed in."""

    input: str
    reason: str  # "current only" or "separates"
    evidence: str
    kept: bool
    separation: float  # the input's AUC alone, folded to 0.5-1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Guarded:
    """The inputs a model may use, and every flag raised on the way."""

    inputs: list[str]
    flags: list[Flag]

    def left_out(self) -> list[str]:
        return [f.input for f in self.flags if not f.kept]


def separation(values: pd.Series, labels: np.ndarray) -> float:
    """How well the input alone ranks the outcome: AUC folded to 0.5-1 (missing counts low)."""
    filled = values.astype(float).fillna(values.min() - 1 if values.notna().any() else 0.0)
    if filled.nunique() < 2 or len(np.unique(labels)) < 2:
        return 0.5
    auc = float(roc_auc_score(labels, filled.to_numpy()))
    return max(auc, 1.0 - auc)


def _presence(values: pd.Series, labels: np.ndarray) -> str:
    present = values.fillna(0).astype(float) != 0
    rate = [float(present[labels == k].mean()) if (labels == k).any() else 0.0 for k in (1, 0)]
    return f"set on {rate[0]:.0%} of rows before the outcome and {rate[1]:.0%} of the others"


def guard(snapshots: Snapshots, allow: Sequence[str] = (), known_by: date | None = None) -> Guarded:
    """Check every candidate input on the snapshots labelled by ``known_by`` (a backtest passes
    its first test day, so the choice of inputs never sees a test label); keep the clean ones
    and the allowed."""
    unknown = [a for a in allow if a not in snapshots.inputs + snapshots.current_only]
    if unknown:
        raise KeyError(f"no input called {', '.join(map(repr, unknown))} to allow")
    rows = snapshots.labelled(known_by)
    labels = rows["label"].to_numpy(dtype=int)
    flags: list[Flag] = []
    for name in snapshots.current_only:
        auc = separation(rows[name], labels)
        evidence = f"known only as it is now; {_presence(rows[name], labels)}; AUC alone {auc:.2f}"
        flags.append(Flag(name, "current only", evidence, name in allow, auc))
    for name in snapshots.inputs:
        auc = separation(rows[name], labels)
        if auc >= SEPARATION:
            evidence = (
                f"AUC alone {auc:.3f} (at or above {SEPARATION}): too good to be true? check it"
            )
            flags.append(Flag(name, "separates", evidence, name in allow, auc))
    out = {f.input for f in flags if not f.kept}
    inputs = [n for n in snapshots.inputs if n not in out]
    inputs += [n for n in snapshots.current_only if n in allow]
    return Guarded(inputs, flags)
