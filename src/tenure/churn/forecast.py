"""Renewal and NRR forecasts, each backtested against what happened.

Both are fitted at the time of the forecast on the point-in-time snapshots known by then (so a
forecast never needs `tenure train` first, and its backtest refits exactly as it would have):

- Renewal forecast: for every customer whose renewal (or end) date falls in the next ``horizon``
  days, the probability it renews (a logistic model of churn by the renewal date, fitted on past
  snapshots that had a renewal due) and its expected renewing ARR (ARR today times that
  probability); in total, with an 80% interval from simulating each renewal as a coin with that
  probability.
- NRR forecast: today's customers' ARR ``horizon`` days on, over their ARR today: each account
  keeps its ARR with its probability of not churning by then (a logistic model of churn within the
  window), grown by the net expansion rate retained accounts showed over past windows of the same
  length.
- When the past renewals or windows hold only one outcome, a Cox model over days to churn
  (:class:`~tenure.churn.estimators.TimeToChurn`) gives both probabilities instead.
- Backtest: at the last six month starts whose window has closed, the same forecast is made from
  what was known then and compared with the ARR that renewed and the NRR that came.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tenure.churn.estimators import ChurnLogistic, TimeToChurn
from tenure.churn.metrics import Interval, interval
from tenure.churn.snapshots import Snapshots, data_span, month_starts
from tenure.churn.training import prepare
from tenure.health.scoring import AS_OF, batch_engine, day_number, load_tables
from tenure.signals import Catalog, catalog
from tenure.store import Store

LEVEL = 0.8  # the interval's coverage
Total = Interval  # an amount in total, with its interval
DRAWS = 20_000
BACKTEST_FOLDS = 6
RENEWAL_GRACE_DAYS = 14  # a churn recorded this long after the renewal date still counts


@dataclass
class Horizon:
    """One horizon's forecast: renewals per account and in total, and NRR."""

    days: int
    renewing_arr: Total
    arr_up_for_renewal: float
    nrr: Total
    net_expansion: float
    accounts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon_days": self.days, "arr_up_for_renewal": round(self.arr_up_for_renewal, 2),
            "expected_renewing_arr": self.renewing_arr.to_dict("expected"), "nrr": self.nrr.to_dict("expected"),
            "net_expansion_of_retained": round(self.net_expansion, 4), "accounts": self.accounts,
        }  # fmt: skip


@dataclass
class Check:
    """A forecast made at ``as_of`` with what was known then, against what happened."""

    as_of: date
    days: int
    renewing_arr: Total
    actual_renewing_arr: float
    nrr: Total
    actual_nrr: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(), "horizon_days": self.days,
            "expected_renewing_arr": self.renewing_arr.to_dict("expected"),
            "actual_renewing_arr": round(self.actual_renewing_arr, 2),
            "renewing_inside_interval": _inside(self.renewing_arr, self.actual_renewing_arr),
            "nrr": self.nrr.to_dict("expected"), "actual_nrr": round(self.actual_nrr, 4),
            "nrr_inside_interval": _inside(self.nrr, self.actual_nrr),
        }  # fmt: skip


def _inside(total: Total, actual: float) -> bool:
    return total.low - 1e-9 <= actual <= total.high + 1e-9


@dataclass
class Forecast:
    as_of: date
    model: str
    horizons: list[Horizon]
    checks: list[Check]

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(), "model": self.model, "level": LEVEL,
            "horizons": [h.to_dict() for h in self.horizons],
            "backtest": [c.to_dict() for c in self.checks],
            "backtest_summary": summary(self.checks),
        }  # fmt: skip


def summary(checks: Sequence[Check]) -> dict[str, Any]:
    """Per horizon: mean absolute percentage error and how often the interval held the truth."""
    found: dict[str, Any] = {}
    for days in sorted({c.days for c in checks}):
        mine = [c for c in checks if c.days == days]
        found[str(days)] = {
            "folds": len(mine),
            "renewing_arr_mape": _mape([(c.renewing_arr.estimate, c.actual_renewing_arr) for c in mine]),
            "renewing_arr_coverage": _share([_inside(c.renewing_arr, c.actual_renewing_arr) for c in mine]),
            "nrr_mae_points": round(float(np.mean([abs(c.nrr.estimate - c.actual_nrr) for c in mine])) * 100, 2),
            "nrr_coverage": _share([_inside(c.nrr, c.actual_nrr) for c in mine]),
        }  # fmt: skip
    return found


def _mape(pairs: list[tuple[float, float]]) -> float | None:
    errors = [abs(f - a) / a for f, a in pairs if a]
    return round(float(np.mean(errors)), 4) if errors else None


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def revenue_on(store: Store, days: Sequence[date]) -> pd.DataFrame:
    """MRR in force per account on each day (the ``mrr`` signal, computed by the batch engine)."""
    names = {"mrr", "subscriptions_in_force"}
    subset = Catalog(tuple(s for s in catalog() if s.name in names))
    tables = load_tables(store, subset)
    frame = batch_engine(subset).compute(tables, [day_number(d) for d in days]).to_pandas()
    return frame.rename(columns={AS_OF: "day"})[["account_id", "day", "mrr"]].fillna({"mrr": 0.0})


def net_expansion(revenue: pd.DataFrame, starts: Sequence[int], days: int) -> float:
    """ARR growth of accounts still paying ``days`` later, pooled over windows starting on
    ``starts`` (the rows of ``revenue`` must hold those days and ``days`` after each)."""
    by_day = revenue.pivot_table(index="account_id", columns="day", values="mrr", aggfunc="sum")
    before = after = 0.0
    for start in starts:
        if start not in by_day or start + days not in by_day:
            continue
        pair = by_day[[start, start + days]].fillna(0.0)
        kept = pair[(pair[start] > 0) & (pair[start + days] > 0)]
        before, after = before + kept[start].sum(), after + kept[start + days].sum()
    return after / before - 1 if before else 0.0


def _due(rows: pd.DataFrame, days: int) -> np.ndarray:
    """Rows whose next renewal (or end) date falls within ``days``, with ARR to renew."""
    to_renewal = rows["days_to_renewal"].to_numpy(dtype=float)
    return np.asarray(~np.isnan(to_renewal) & (to_renewal <= days) & (rows["arr"] > 0))


def renewal_model(
    frame: pd.DataFrame, inputs: list[str], days: int, known_by: int
) -> ChurnLogistic | None:
    """A logistic model of churn by the renewal date, fitted on past snapshots that had a renewal
    due within ``days`` and whose renewal (plus grace) came by ``known_by``; None when those
    rows do not hold both outcomes."""
    ends = frame["day"] + frame["days_to_renewal"] + RENEWAL_GRACE_DAYS
    rows = frame[_due(frame, days) & (ends <= known_by)]
    churned = rows["event_day"].notna() & (rows["event_day"] <= ends[rows.index])
    return _fitted(rows[inputs], churned)


def window_model(
    frame: pd.DataFrame, inputs: list[str], days: int, known_by: int
) -> ChurnLogistic | None:
    """A logistic model of churn within ``days``, fitted on past snapshots whose window closed by
    ``known_by``; None when those rows do not hold both outcomes."""
    rows = frame[frame["day"] + days <= known_by]
    churned = rows["event_day"].notna() & (rows["event_day"] <= rows["day"] + days)
    return _fitted(rows[inputs], churned)


def _fitted(X: pd.DataFrame, churned: pd.Series) -> ChurnLogistic | None:
    if churned.nunique() < 2:
        return None
    return ChurnLogistic().fit(X, churned.to_numpy(dtype=int))


def churn_odds(
    snapshots: Snapshots, inputs: list[str], rows: pd.DataFrame, days: int, known_by: date
) -> tuple[np.ndarray, np.ndarray, str]:
    """Each row's probability of churning by its renewal date and within ``days``, from models
    fitted on the snapshots known by ``known_by`` (logistic; a Cox model over days-to-churn when
    the renewals or windows seen so far hold only one outcome), and which model gave them."""
    cut = day_number(known_by)
    train = snapshots.frame[snapshots.frame["day"] < cut]
    renewals = renewal_model(train, inputs, days, cut)
    window = window_model(train, inputs, days, cut)
    if renewals is not None and window is not None:
        p = (renewals.predict_proba(rows)[:, 1], window.predict_proba(rows)[:, 1])
        return p[0], p[1], "logistic"
    cox = TimeToChurn(days).fit(
        train[inputs], np.column_stack(snapshots.durations(train, known_by))
    )
    to_renewal = rows["days_to_renewal"].fillna(days).clip(lower=0).to_numpy(dtype=float)
    return cox.churn_by(rows, to_renewal), cox.churn_by(rows, days), "time-to-churn"


def predict(
    rows: pd.DataFrame, days: int, growth: float, at_renewal: np.ndarray, in_window: np.ndarray,
    seed: int = 0,
) -> Horizon:  # fmt: skip
    """One horizon's forecast for the customers in ``rows`` (signals as of one day), given each
    one's probability of churning by its renewal date and within the window."""
    arr = rows["arr"].to_numpy(dtype=float)
    to_renewal = rows["days_to_renewal"].to_numpy(dtype=float)
    due = _due(rows, days)
    keep_renewal, keep_horizon = 1 - at_renewal, 1 - in_window
    rng = np.random.default_rng(seed)
    renews = rng.random((DRAWS, int(due.sum()))) < keep_renewal[due]
    renewing = _total(float((arr[due] * keep_renewal[due]).sum()), renews @ arr[due])
    stays = rng.random((DRAWS, len(arr))) < keep_horizon
    start = arr.sum()
    end = stays @ arr * (1 + growth) / start if start else np.zeros(DRAWS)
    nrr = _total(float((arr * keep_horizon).sum() * (1 + growth) / start) if start else 0.0, end)
    accounts = [
        {"account_id": a, "arr": round(float(v), 2), "days_to_renewal": int(d),
         "renewal_probability": round(float(p), 4), "expected_renewing_arr": round(float(v * p), 2)}
        for a, v, d, p in zip(rows["account_id"][due], arr[due], to_renewal[due], keep_renewal[due],
                              strict=True)
    ]  # fmt: skip
    accounts.sort(key=lambda a: a["expected_renewing_arr"] - a["arr"])
    return Horizon(days, renewing, float(arr[due].sum()), nrr, growth, accounts)


def _total(expected: float, draws: np.ndarray) -> Total:
    return interval(expected, draws, LEVEL)


def forecast(
    store: Store, horizons: Sequence[int] = (90, 180), as_of: date | None = None,
    backtest: bool = True,
) -> Forecast:  # fmt: skip
    """Renewal and NRR forecasts as of ``as_of`` (default: the end of the data), backtested."""
    day = as_of or data_span(store)[1]
    snapshots, guarded = prepare(store, max(horizons), end=day, through=True)
    history = _history_days(store, day, max(horizons))
    revenue = revenue_on(store, history)
    results, models = [], set()
    for days in horizons:
        starts = [day_number(d) for d in history if d + timedelta(days=days) <= day]
        rows = snapshots.on(day)
        at_renewal, in_window, model = churn_odds(snapshots, guarded.inputs, rows, days, day)
        growth = net_expansion(revenue, starts, days)
        results.append(predict(rows, days, growth, at_renewal, in_window))
        models.add(model)
    checks = _backtest(snapshots, revenue, horizons, guarded.inputs) if backtest else []
    return Forecast(day, " and ".join(sorted(models)), results, checks)


def _history_days(store: Store, end: date, longest: int) -> list[date]:
    """Month starts over the data, and each of them plus every horizon (for ARR pairs)."""
    first, _ = data_span(store)
    starts = month_starts(first, end)
    return sorted({*starts, *[s + timedelta(days=h) for s in starts for h in (90, 180, longest)]})


def _backtest(
    snapshots: Snapshots, revenue: pd.DataFrame, horizons: Sequence[int], inputs: list[str]
) -> list[Check]:
    days = sorted(set(snapshots.days))
    checks = []
    for h in horizons:
        usable = [d for d in days if d + timedelta(days=h) <= snapshots.data_end][-BACKTEST_FOLDS:]
        for day in usable:
            checks.append(_check(snapshots, revenue, inputs, day, h))
    return checks


def _check(
    snapshots: Snapshots, revenue: pd.DataFrame, inputs: list[str], day: date, days: int
) -> Check:
    frame = snapshots.frame
    rows = snapshots.on(day)
    starts = [int(s) for s in sorted(frame["day"].unique()) if s + days <= day_number(day)]
    at_renewal, in_window, _ = churn_odds(snapshots, inputs, rows, days, day)
    made = predict(rows, days, net_expansion(revenue, starts, days), at_renewal, in_window)
    end = day_number(day) + days
    churned = rows["event_day"].notna() & (rows["event_day"] <= end)
    due = rows["account_id"].isin({a["account_id"] for a in made.accounts})
    actual_renewing = float(rows.loc[due & ~churned, "arr"].sum())
    later = revenue[revenue["day"] == end].set_index("account_id")["mrr"]
    after = later.reindex(rows["account_id"]).fillna(0.0).sum() * 12
    actual_nrr = float(after / rows["arr"].sum()) if rows["arr"].sum() else 0.0
    return Check(day, days, made.renewing_arr, actual_renewing, made.nrr, actual_nrr)
