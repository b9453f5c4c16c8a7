"""How well a risk predicts the outcome: ranking, probability, calibration, lift and lead time."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

BINS = 10
FLAG_SHARE = 0.1  # an account is flagged when it is in the riskiest tenth of its snapshot


@dataclass(frozen=True)
class Interval:
    """A point estimate with the ``level`` interval of draws around it."""

    estimate: float
    low: float
    high: float

    def to_dict(self, point: str = "estimate") -> dict[str, float]:
        return {point: round(self.estimate, 4), "low": round(self.low, 4),
                "high": round(self.high, 4)}  # fmt: skip


def interval(estimate: float, draws: np.ndarray, level: float) -> Interval:
    """``estimate`` with the central ``level`` share of ``draws`` (none: the estimate alone)."""
    if not len(draws):
        return Interval(float(estimate), float(estimate), float(estimate))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


@dataclass(frozen=True)
class Bin:
    """One row of a reliability table."""

    low: float
    high: float
    accounts: int
    predicted: float
    observed: float


@dataclass
class Quality:
    """A contender's figures over every test snapshot of a backtest."""

    name: str
    rows: int
    positives: int
    auc: float | None
    pr_auc: float | None
    brier: float
    ece: float
    lift_top_decile: float | None
    median_lead_days: float | None
    caught: float | None  # share of the outcomes flagged at least once before they came
    reliability: list[Bin] = field(default_factory=list)
    lift: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("auc", "pr_auc", "brier", "ece", "lift_top_decile", "caught"):
            data[key] = None if data[key] is None else round(data[key], 4)
        return data


def reliability(y: np.ndarray, p: np.ndarray, bins: int = BINS) -> list[Bin]:
    """Predicted against observed rates in equal-width bins of predicted probability."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            table.append(Bin(float(edges[b]), float(edges[b + 1]), int(mask.sum()),
                             float(p[mask].mean()), float(y[mask].mean())))  # fmt: skip
    return table


def expected_calibration_error(table: list[Bin]) -> float:
    """Mean gap between predicted and observed rate, weighted by the accounts in each bin."""
    total = sum(b.accounts for b in table)
    return sum(b.accounts * abs(b.predicted - b.observed) for b in table) / total if total else 0.0


def riskiest_first(p: np.ndarray) -> np.ndarray:
    """Row order by risk, highest first; equal risks in a fixed random order (not row order, so
    a risk with few distinct values does not rank by account id)."""
    tie = np.random.default_rng(0).random(len(p))
    return np.lexsort((tie, -np.asarray(p, dtype=float)))


def lift_by_decile(y: np.ndarray, p: np.ndarray) -> list[float]:
    """The outcome rate in each tenth of the pooled test rows by risk (riskiest first) over the
    overall rate."""
    base = y.mean()
    if not base:
        return []
    order = riskiest_first(p)
    return [float(part.mean() / base) for part in np.array_split(y[order], 10) if len(part)]


def lead_times(
    accounts: np.ndarray, days: np.ndarray, event_days: np.ndarray, flagged: np.ndarray,
    horizon: int,
) -> dict[str, float]:  # fmt: skip
    """The share of outcomes caught and the median lead of those caught (see :func:`leads`)."""
    found, outcomes = leads(accounts, days, event_days, flagged, horizon)
    return {"caught": len(found) / outcomes if outcomes else float("nan"),
            "median": float(np.median(found)) if found else float("nan")}  # fmt: skip


def leads(
    accounts: np.ndarray, days: np.ndarray, event_days: np.ndarray, flagged: np.ndarray,
    horizon: int,
) -> tuple[list[float], int]:  # fmt: skip
    """For each outcome that came within ``horizon`` of a test snapshot of its account and was
    flagged: days from the first snapshot that flagged it (within the horizon before the
    outcome) to the outcome. And how many such outcomes there were, caught or not."""
    first: dict[tuple[str, float], float] = {}
    seen: set[tuple[str, float]] = set()
    for account, day, event, flag in zip(accounts, days, event_days, flagged, strict=True):
        if np.isnan(event) or not 0 < event - day <= horizon:
            continue
        key = (str(account), float(event))
        seen.add(key)
        if flag:
            first[key] = max(first.get(key, 0.0), float(event - day))
    return list(first.values()), len(seen)


def flags(days: np.ndarray, p: np.ndarray, share: float = FLAG_SHARE) -> np.ndarray:
    """Whether each row is among the riskiest ``share`` of its own snapshot day (exactly that
    many: ties are broken in a fixed random order, so a risk that ranks no one flags no more
    than its share)."""
    flagged = np.zeros(len(p), dtype=bool)
    for day in np.unique(days):
        rows = np.flatnonzero(days == day)
        top = rows[riskiest_first(p[rows])][: int(np.ceil(share * len(rows)))]
        flagged[top] = True
    return flagged


def quality(
    name: str, y: np.ndarray, p: np.ndarray, accounts: np.ndarray, days: np.ndarray,
    event_days: np.ndarray, horizon: int,
) -> Quality:  # fmt: skip
    """Every figure for one contender's pooled test predictions."""
    both = len(np.unique(y)) == 2
    table = reliability(y, p)
    lift = lift_by_decile(y, p)
    lead = lead_times(accounts, days, event_days, flags(days, p), horizon)
    return Quality(
        name=name, rows=len(y), positives=int(y.sum()),
        auc=float(roc_auc_score(y, p)) if both else None,
        pr_auc=float(average_precision_score(y, p)) if both else None,
        brier=float(brier_score_loss(y, p)), ece=expected_calibration_error(table),
        lift_top_decile=lift[0] if lift else None,
        median_lead_days=None if np.isnan(lead["median"]) else lead["median"],
        caught=None if np.isnan(lead["caught"]) else lead["caught"],
        reliability=table, lift=lift,
    )  # fmt: skip
