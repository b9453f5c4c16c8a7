"""What-if: change an account's signals and see its health score and churn probability move.

``usage_trend_14d=-0.3`` sets a value; ``active_users_7d=-20%`` changes it relative to what it
is. The health score is recomputed exactly under the model in force; the churn probability comes
from a registered model, and its confidence interval from the same model refitted on bootstrap
resamples of accounts (kept at training). A change applies to the signal named only: signals
computed from it are not recomputed, so change those you mean to move together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from tenure.churn import registry
from tenure.churn.metrics import Interval, interval
from tenure.churn.snapshots import as_of_day, input_frame, stable_attributes
from tenure.configfile import suggest as _suggest
from tenure.health.score import HealthScore, is_customer, score
from tenure.health.scoring import account_signals, active_model, latest_day
from tenure.store import Store

_CHANGE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=\s*([+-]?\d+(?:\.\d+)?)\s*(%?)\s*$")
LEVEL = 0.95


@dataclass(frozen=True)
class Change:
    """One ``SIGNAL=VALUE`` (or ``SIGNAL=-20%``) setting."""

    signal: str
    value: float
    relative: bool

    def apply(self, current: float | None) -> float | None:
        if not self.relative:
            return self.value
        return None if current is None else current * (1 + self.value / 100)

    def __str__(self) -> str:
        value = f"{self.value:+.15g}%" if self.relative else f"{self.value:.15g}"
        return f"{self.signal}={value}"


def parse_change(text: str, signals: Sequence[str]) -> Change:
    """``SIGNAL=VALUE`` or ``SIGNAL=+10%``; ValueError naming what is wrong."""
    match = _CHANGE.match(text)
    if match is None:
        raise ValueError(f"cannot read {text!r}: write SIGNAL=VALUE or SIGNAL=-20%")
    name, number, percent = match.groups()
    if name not in signals:
        raise ValueError(f"unknown signal {name!r}{_suggest(name, signals)}")
    return Change(name, float(number), bool(percent))


@dataclass(frozen=True)
class WhatIf:
    """The account before and after the changes: score and churn probability."""

    account_id: str
    as_of: date
    changes: list[dict[str, Any]]
    score_before: float | None
    score_after: float | None
    band_before: str | None
    band_after: str | None
    model: str
    churn_before: Interval
    churn_after: Interval
    churn_change: Interval
    replicates: int
    note: str
    horizon_days: int = 90
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["as_of"] = self.as_of.isoformat()
        for key in ("churn_before", "churn_after", "churn_change"):
            data[key] = getattr(self, key).to_dict()
        data["score_change"] = (
            None if self.score_before is None or self.score_after is None
            else round(self.score_after - self.score_before, 2)
        )  # fmt: skip
        data["level"] = LEVEL
        return data


def whatif(
    store: Store, account: str, changes: Sequence[str], as_of: date | None = None,
    model: str = "logistic",
) -> WhatIf:  # fmt: skip
    """Apply ``changes`` to ``account``'s signals as of ``as_of`` (default: the latest day)."""
    registered = active_model(store)
    names = registered.catalog().names()
    parsed = [parse_change(text, names) for text in changes]
    if not parsed:
        raise ValueError("nothing to change: give at least one --set SIGNAL=VALUE")
    version = registry.find(store, model)
    attributes = stable_attributes(store, account)
    day = as_of_day(store, as_of or latest_day(store, registered))
    before = account_signals(store, registered, account, day)
    if not is_customer(before):
        raise ValueError(
            f"account {account!r} is not a customer on {day}: no subscription in force"
        )
    after = dict(before)
    applied = []
    for change in parsed:
        after[change.signal] = change.apply(after.get(change.signal))
        applied.append({"signal": change.signal, "was": before.get(change.signal),
                        "now": after[change.signal], "as_written": str(change)})  # fmt: skip
    scores = [score(registered.model, account, day, s, attributes) for s in (before, after)]
    fitted = registry.artifact(store, version)
    rows = input_frame([before | attributes, after | attributes], version.inputs)
    found = _result(account, day, applied, scores, version, fitted, rows)
    unread = [c.signal for c in parsed if c.signal not in version.inputs]
    if unread:
        found.notes.append(f"{version.name}:{version.version} does not read {', '.join(unread)}: "
                           "the churn probability cannot move with it")  # fmt: skip
    return found


def _result(
    account: str, day: date, applied: list[dict[str, Any]], scores: list[HealthScore],
    version: registry.ModelVersion, fitted: dict[str, Any], rows: Any,
) -> WhatIf:  # fmt: skip
    point = fitted["estimator"].predict_proba(rows)[:, 1]
    replicates = fitted.get("replicates") or []
    draws = np.array([r.predict_proba(rows)[:, 1] for r in replicates]).reshape(-1, 2)
    note = (
        f"{len(replicates)} bootstrap refits of {version.name}:{version.version}"
        if replicates else f"{version.name} keeps no bootstrap refits: no interval"
    )  # fmt: skip
    return WhatIf(
        account, day, applied, scores[0].score, scores[1].score, scores[0].band, scores[1].band,
        f"{version.name}:{version.version}",
        _interval(point[0], draws[:, 0]), _interval(point[1], draws[:, 1]),
        _interval(point[1] - point[0], draws[:, 1] - draws[:, 0]), len(replicates), note,
        version.horizon_days,
    )  # fmt: skip


def _interval(estimate: float, draws: np.ndarray) -> Interval:
    return interval(estimate, draws, LEVEL)
