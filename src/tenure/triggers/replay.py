"""Replay: run the triggers over history, day by day, as a dry run.

For every day from ``start`` to ``end`` the Signal Stack is computed for every customer (batch
engine), with the fields triggers may read besides signals: account attributes, calendar terms,
health score and band (under the model in force) and, when a trigger asks for it, the newest
logistic churn model's probability. Each trigger's condition is evaluated on the whole table at
once, episodes are walked per account (:mod:`tenure.triggers.episodes`), and every alert is kept
with the values it read. Then, for the accounts alerted, what happened next: churned, or renewed
(renewed, expanded or contracted), within ``outcome_days`` after their first alert.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from tenure.churn import registry
from tenure.churn.snapshots import account_attributes, as_date, health_of, input_frame
from tenure.health.scoring import (
    AS_OF,
    RegisteredModel,
    active_model,
    batch_engine,
    day_number,
    from_day_number,
    load_tables,
)
from tenure.store import Store
from tenure.store.tables import KIND_TABLES
from tenure.triggers.definitions import ATTRIBUTES, Trigger, TriggerSet
from tenure.triggers.episodes import alert_days

CHUNK_DAYS = 31
BAND_RANK = {"red": 0, "yellow": 1, "green": 2}
BAND_BEFORE = "_band_rank_7d_before"  # a frame may bring the band a week before (live evaluation)
RENEWED = ("renewed", "expanded", "contracted")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Alert:
    trigger: str
    account_id: str
    day: date
    severity: str
    direction: str
    playbook: str | None
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger, "account_id": self.account_id,
                "day": self.day.isoformat(), "severity": self.severity,
                "direction": self.direction, "playbook": self.playbook,
                "values": self.values}  # fmt: skip


@dataclass
class Tally:
    """One trigger's replay: alerts, accounts, and what became of those accounts."""

    name: str
    kind: str
    severity: str
    direction: str
    alerts: int = 0
    accounts: int = 0
    churned: int = 0
    renewed: int = 0
    skipped: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["churn_rate"] = round(self.churned / self.accounts, 4) if self.accounts else None
        return data


@dataclass
class Replay:
    start: date
    end: date
    outcome_days: int
    customers: int
    tallies: list[Tally]
    alerts: list[Alert] = field(default_factory=list)
    base_churn_rate: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self, alerts: bool = True) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(), "to": self.end.isoformat(),
            "outcome_days": self.outcome_days, "customers": self.customers,
            "base_churn_rate": self.base_churn_rate,
            "triggers": [t.to_dict() for t in self.tallies],
            "alerts": [a.to_dict() for a in self.alerts] if alerts else len(self.alerts),
            "notes": self.notes,
        }  # fmt: skip


def replay(
    store: Store, triggers: TriggerSet, start: date, end: date, outcome_days: int = 180,
    progress: Progress | None = None,
) -> Replay:  # fmt: skip
    """Dry-run ``triggers`` over every day from ``start`` to ``end``."""
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    registered = active_model(store)
    lead = 7 if "health_band_change_7d" in triggers.names() else 0
    frame = daily_values(store, registered, start - timedelta(days=lead), end, progress)
    if frame.empty:
        raise ValueError(f"no customers between {start} and {end}")
    add_fields(store, frame, registered, triggers)
    frame = frame[frame["day"] >= day_number(start)].reset_index(drop=True)
    outcomes = _outcomes(store)
    tallies, found = [], []
    for trigger in triggers.triggers:
        tally, alerts = _run(trigger, frame, triggers)
        _judge(tally, alerts, outcomes, outcome_days)
        tallies.append(tally)
        found += alerts
    found.sort(key=lambda a: (a.day, a.account_id, a.trigger))
    customers = int(frame["account_id"].nunique())
    base = _base_rate(frame, outcomes, outcome_days)
    return Replay(start, end, outcome_days, customers, tallies, found, base,
                  _in_sample(store, triggers, start))  # fmt: skip


def daily_values(
    store: Store, registered: RegisteredModel, start: date, end: date, progress: Progress | None
) -> pd.DataFrame:
    """Every signal of every customer on every day from ``start`` to ``end``."""
    cat = registered.catalog()
    tables, engine = load_tables(store, cat), batch_engine(cat)
    days = list(range(day_number(start), day_number(end) + 1))
    parts = []
    for at in range(0, len(days), CHUNK_DAYS):
        part = engine.compute(tables, days[at : at + CHUNK_DAYS]).to_pandas()
        started = part["subscriptions_started"].fillna(0) > 0  # is_customer, on whole columns
        parts.append(part[~started | (part["subscriptions_in_force"].fillna(0) > 0)])
        if progress:
            progress(min(at + CHUNK_DAYS, len(days)), len(days))
    return pd.concat(parts, ignore_index=True).rename(columns={AS_OF: "day"})


def add_fields(
    store: Store, frame: pd.DataFrame, registered: RegisteredModel, triggers: TriggerSet
) -> None:
    """Attributes, calendar terms, and (when read) health and churn probability, as columns."""
    attributes = account_attributes(store, sorted(frame["account_id"].unique()))
    for name in ATTRIBUTES:
        values = attributes[name] if name in attributes else pd.Series(dtype=object)
        frame[name] = frame["account_id"].map(values)
    _calendar(frame)
    needed = triggers.names()
    if needed & {"health_score", "health_band_rank", "health_band_change_7d"}:
        _health(frame, registered)
    if "churn_probability" in needed:
        with contextlib.suppress(KeyError):  # no trained model: the triggers reading it skip
            frame["churn_probability"] = _churn_probability(store, frame)


def _calendar(frame: pd.DataFrame) -> None:
    days = pd.to_datetime(frame["day"].map(from_day_number))
    frame["month"] = days.dt.month
    frame["weekday"] = days.dt.weekday + 1
    frame["day_of_month"] = days.dt.day
    frame["quarter"] = days.dt.quarter
    quarter_end = days + pd.offsets.QuarterEnd(0)
    frame["days_to_quarter_end"] = (quarter_end - days).dt.days
    frame["days_to_year_end"] = (days + pd.offsets.YearEnd(0) - days).dt.days


def _health(frame: pd.DataFrame, registered: RegisteredModel) -> None:
    found = health_of(frame, registered.model, ATTRIBUTES)
    frame["health_score"] = pd.array([s.score for s in found], dtype="Float64").astype(float)
    frame["health_band_rank"] = np.array([BAND_RANK.get(s.band or "", np.nan) for s in found],
                                         dtype=float)  # fmt: skip
    before = frame[["account_id", "day", "health_band_rank"]].copy()
    before["day"] += 7
    merged = frame[["account_id", "day"]].merge(before, on=["account_id", "day"], how="left")
    earlier = merged["health_band_rank"].to_numpy(dtype=float)
    if BAND_BEFORE in frame:  # the band 7 days before as recorded in the daily history
        recorded = frame[BAND_BEFORE].to_numpy(dtype=float)
        earlier = np.where(np.isnan(recorded), earlier, recorded)
    frame["health_band_change_7d"] = frame["health_band_rank"].to_numpy() - earlier


def _churn_probability(store: Store, frame: pd.DataFrame) -> pd.Series:
    version = registry.find(store, "logistic")
    model = registry.artifact(store, version)["estimator"]
    rows = input_frame(frame.to_dict("records"), version.inputs)
    return pd.Series(model.predict_proba(rows)[:, 1], index=frame.index)


def _in_sample(store: Store, triggers: TriggerSet, start: date) -> list[str]:
    """A churn model replayed over days it learned from flatters the triggers that read it."""
    if "churn_probability" not in triggers.names():
        return []
    try:
        version = registry.find(store, "logistic")
    except KeyError:
        return []
    learned_to = version.train_to + timedelta(days=version.horizon_days)
    if start > learned_to:
        return []
    return [f"churn_probability comes from {version.name}:{version.version}, which learned from "
            f"outcomes up to {learned_to}: its alerts before then are in-sample, not a test"]  # fmt: skip


def _run(trigger: Trigger, frame: pd.DataFrame, triggers: TriggerSet) -> tuple[Tally, list[Alert]]:
    tally = Tally(trigger.name, trigger.kind, trigger.severity, trigger.direction)
    missing = [n for n in trigger.condition.names if n not in frame]
    if missing:
        tally.skipped = f"needs {', '.join(missing)} (train a churn model: tenure train)"
        return tally, []
    held = trigger.condition.frame(frame)
    alerts = []
    ordered = frame.assign(_held=held).sort_values(["account_id", "day"])
    for account, rows in ordered.groupby("account_id", sort=False):
        days = rows["day"].to_numpy(dtype=int)
        segment = rows["segment"].iloc[0] if "segment" in rows else None
        muted = [triggers.suppressed(str(account), segment, from_day_number(int(d))) for d in days]
        for i in alert_days(days, rows["_held"].to_numpy(dtype=bool), trigger.for_days,
                            trigger.cooldown_days, muted):  # fmt: skip
            values = {n: plain(rows[n].iloc[i]) for n in trigger.condition.names}
            alerts.append(Alert(trigger.name, str(account), from_day_number(int(days[i])),
                                trigger.severity, trigger.direction, trigger.playbook, values))  # fmt: skip
    tally.alerts, tally.accounts = len(alerts), len({a.account_id for a in alerts})
    return tally, alerts


def plain(value: Any) -> Any:
    """A table cell as JSON wants it: a Python number or text, None for missing."""
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and np.isnan(value) else value


def _outcomes(store: Store) -> dict[str, list[tuple[date, str]]]:
    table = KIND_TABLES["outcomes"]
    found: dict[str, list[tuple[date, str]]] = {}
    with store.engine.connect() as connection:
        for account, day, kind in connection.execute(
            select(table.c.account_id, table.c.date, table.c.type).order_by(table.c.date)
        ):
            found.setdefault(account, []).append((as_date(day) or date.min, kind))
    return found


def _next(
    outcomes: dict[str, list[tuple[date, str]]], account: str, after: date, days: int
) -> str | None:
    """The first churn or renewal within ``days`` after ``after``."""
    for day, kind in outcomes.get(account, []):
        if after < day <= after + timedelta(days=days) and (kind == "churned" or kind in RENEWED):
            return "churned" if kind == "churned" else "renewed"
    return None


def _judge(
    tally: Tally, alerts: list[Alert], outcomes: dict[str, list[tuple[date, str]]], days: int
) -> None:
    first: dict[str, date] = {}
    for a in alerts:
        first[a.account_id] = min(first.get(a.account_id, a.day), a.day)
    after = [_next(outcomes, account, day, days) for account, day in first.items()]
    tally.churned, tally.renewed = after.count("churned"), after.count("renewed")


def _base_rate(
    frame: pd.DataFrame, outcomes: dict[str, list[tuple[date, str]]], days: int
) -> float | None:
    """The share of customers on the first day that churned within ``days``: what an alert's
    churn rate compares with."""
    if frame.empty:
        return None
    first = from_day_number(int(frame["day"].min()))
    accounts = frame.loc[frame["day"] == frame["day"].min(), "account_id"].unique()
    churned = sum(_next(outcomes, str(a), first, days) == "churned" for a in accounts)
    return round(churned / len(accounts), 4) if len(accounts) else None
