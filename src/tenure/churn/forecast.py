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

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tenure.churn.estimators import ChurnLogistic, TimeToChurn
from tenure.churn.metrics import Interval, interval
from tenure.churn.snapshots import Snapshots, as_of_day, data_span, month_starts
from tenure.churn.training import prepare
from tenure.health.scoring import AS_OF, batch_engine, day_number, load_tables
from tenure.signals import Catalog, catalog
from tenure.store import Store

LEVEL = 0.8  # the interval's coverage
DRAWS = 20_000
CHUNK = 512  # accounts simulated at a time: memory stays DRAWS x CHUNK
BACKTEST_FOLDS = 6
RENEWAL_GRACE_DAYS = 14  # a churn recorded this long after the renewal date still counts


class TooLittleHistory(ValueError):
    """No snapshot before a day saw a churn: nothing to fit a forecast on there."""


@dataclass
class Horizon:
    """One horizon's forecast: renewals per account and in total, and NRR."""

    days: int
    renewing_arr: Interval
    arr_up_for_renewal: float
    nrr: Interval
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
    renewing_arr: Interval
    actual_renewing_arr: float
    nrr: Interval
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


def _inside(total: Interval, actual: float) -> bool:
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
    """MRR in force per account (rows) on each of ``days`` (columns, as day numbers), from the
    ``mrr`` signal computed by the batch engine."""
    if not days:
        return pd.DataFrame(index=pd.Index([], name="account_id"))
    names = {"mrr", "subscriptions_in_force"}
    subset = Catalog(tuple(s for s in catalog() if s.name in names))
    tables = load_tables(store, subset)
    frame = batch_engine(subset).compute(tables, [day_number(d) for d in days]).to_pandas()
    frame = frame.rename(columns={AS_OF: "day"}).fillna({"mrr": 0.0})
    table = frame.pivot_table(index="account_id", columns="day", values="mrr", aggfunc="sum")
    # a day no account had reached yet is still a day loaded: no revenue then
    return table.reindex(columns=sorted({day_number(d) for d in days}), fill_value=0.0)


def _mrr(revenue: pd.DataFrame, day: date) -> pd.Series:
    """Each account's MRR on ``day``; ValueError when that day's revenue was not loaded."""
    number = day_number(day)
    if number not in revenue.columns:
        raise ValueError(f"revenue on {day.isoformat()} was not loaded")
    column: pd.Series = revenue[number]
    return column


def net_expansion(revenue: pd.DataFrame, starts: Sequence[date], days: int) -> float:
    """ARR growth of accounts still paying ``days`` later, pooled over windows starting on
    ``starts`` (``revenue``, from :func:`revenue_on`, must hold those days and ``days`` after
    each: a day it does not hold is a ValueError)."""
    before = after = 0.0
    for start in starts:
        first, last = _mrr(revenue, start), _mrr(revenue, start + timedelta(days=days))
        kept = (first > 0) & (last > 0)
        before, after = before + float(first[kept].sum()), after + float(last[kept].sum())
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
    the renewals or windows seen so far hold only one outcome), and which model gave them.
    Raises :class:`TooLittleHistory` when no snapshot before ``known_by`` saw a churn."""
    cut = day_number(known_by)
    train = snapshots.frame[snapshots.frame["day"] < cut]
    _require_history(snapshots, train, known_by)
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


def _require_history(snapshots: Snapshots, train: pd.DataFrame, known_by: date) -> None:
    """TooLittleHistory unless ``train`` (the snapshots before ``known_by``) holds a churn."""
    why = "no customer snapshot before it"
    if not train.empty:
        _, came = snapshots.durations(train, known_by)
        if came.any():
            return
        why = f"none of the {len(train):,} snapshots before it saw a churn"
    raise TooLittleHistory(f"too little history before {known_by.isoformat()} to fit a forecast: "
                           f"{why}")  # fmt: skip


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
    renews = _kept(rng, keep_renewal[due], arr[due])
    renewing = _total(float((arr[due] * keep_renewal[due]).sum()), renews)
    stays = _kept(rng, keep_horizon, arr)
    start = arr.sum()
    end = stays * (1 + growth) / start if start else np.zeros(DRAWS)
    nrr = _total(float((arr * keep_horizon).sum() * (1 + growth) / start) if start else 0.0, end)
    accounts = [
        {"account_id": a, "arr": round(float(v), 2), "days_to_renewal": int(d),
         "renewal_probability": round(float(p), 4), "expected_renewing_arr": round(float(v * p), 2)}
        for a, v, d, p in zip(rows["account_id"][due], arr[due], to_renewal[due], keep_renewal[due],
                              strict=True)
    ]  # fmt: skip
    accounts.sort(key=lambda a: a["expected_renewing_arr"] - a["arr"])
    return Horizon(days, renewing, float(arr[due].sum()), nrr, growth, accounts)


def _kept(rng: np.random.Generator, keep: np.ndarray, arr: np.ndarray) -> np.ndarray:
    """Per draw, the ARR kept when each account keeps its ``arr`` with probability ``keep``:
    ``CHUNK`` accounts at a time, so memory stays DRAWS x CHUNK whatever the accounts."""
    total = np.zeros(DRAWS)
    for at in range(0, len(arr), CHUNK):
        part = slice(at, at + CHUNK)
        total += (rng.random((DRAWS, len(arr[part]))) < keep[part]).astype(float) @ arr[part]
    return total


def _total(expected: float, draws: np.ndarray) -> Interval:
    return interval(expected, draws, LEVEL)


def forecast(
    store: Store, horizons: Sequence[int] = (90, 180), as_of: date | None = None,
    backtest: bool = True,
) -> Forecast:  # fmt: skip
    """Renewal and NRR forecasts as of ``as_of`` (default: the end of the data), backtested."""
    day = as_of_day(store, as_of)
    snapshots, guarded = prepare(store, max(horizons), end=day, through=True)
    months = month_starts(data_span(store)[0], day)
    checks = {h: _check_days(snapshots, h) if backtest else [] for h in horizons}
    revenue = revenue_on(store, _revenue_days(months, day, checks))
    rows = snapshots.on(day)
    results, models = [], set()
    for days in horizons:
        at_renewal, in_window, model = churn_odds(snapshots, guarded.inputs, rows, days, day)
        growth = net_expansion(revenue, _growth_starts(months, day, days), days)
        results.append(predict(rows, days, growth, at_renewal, in_window))
        models.add(model)
    done = _backtest(snapshots, revenue, months, checks, guarded.inputs)
    return Forecast(day, " and ".join(sorted(models)), results, done)


def _growth_starts(months: Sequence[date], known_by: date, days: int) -> list[date]:
    """The month starts whose ``days``-long window (for the net expansion rate) closed by
    ``known_by``."""
    return [m for m in months if m + timedelta(days=days) <= known_by]


def _check_days(snapshots: Snapshots, days: int) -> list[date]:
    """The last :data:`BACKTEST_FOLDS` snapshot days that are month starts (never the as-of day
    itself, unless it is one) whose ``days``-long window closed by the end of the data."""
    closed = [
        d for d in snapshots.days
        if d.day == 1 and d + timedelta(days=days) <= snapshots.data_end
    ]  # fmt: skip
    return closed[-BACKTEST_FOLDS:]


def _revenue_days(
    months: Sequence[date], day: date, checks: Mapping[int, Sequence[date]]
) -> list[date]:
    """Every day revenue is read on: the start and end of each growth window seen from ``day``
    or from a check day, and of each check's own window."""
    needed: set[date] = set()
    for days, check_days in checks.items():
        starts = {s for d in (day, *check_days) for s in _growth_starts(months, d, days)}
        for start in starts | set(check_days):
            needed |= {start, start + timedelta(days=days)}
    return sorted(needed)


def _backtest(
    snapshots: Snapshots, revenue: pd.DataFrame, months: Sequence[date],
    checks: Mapping[int, Sequence[date]], inputs: list[str],
) -> list[Check]:  # fmt: skip
    """The forecast remade on each check day from what was known then (a day with too little
    history before it to fit is skipped)."""
    done = []
    for days, check_days in checks.items():
        for day in check_days:
            with contextlib.suppress(TooLittleHistory):
                done.append(_check(snapshots, revenue, months, inputs, day, days))
    return done


def _check(
    snapshots: Snapshots, revenue: pd.DataFrame, months: Sequence[date], inputs: list[str],
    day: date, days: int,
) -> Check:  # fmt: skip
    rows = snapshots.on(day)
    at_renewal, in_window, _ = churn_odds(snapshots, inputs, rows, days, day)
    growth = net_expansion(revenue, _growth_starts(months, day, days), days)
    made = predict(rows, days, growth, at_renewal, in_window)
    end = day + timedelta(days=days)
    churned = rows["event_day"].notna() & (rows["event_day"] <= day_number(end))
    due = rows["account_id"].isin({a["account_id"] for a in made.accounts})
    actual_renewing = float(rows.loc[due & ~churned, "arr"].sum())
    after = _mrr(revenue, end).reindex(rows["account_id"]).fillna(0.0).sum() * 12
    start = float(rows["arr"].sum())
    actual_nrr = float(after / start) if start else 0.0
    return Check(day, days, made.renewing_arr, actual_renewing, made.nrr, actual_nrr)
