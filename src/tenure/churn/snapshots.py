"""Point-in-time training data: every signal as of past days, labelled by what happened next.

A snapshot is one account as of one day: the Signal Stack computed from the records dated on or
before that day (the engines never read past it), the account's health score under the model in
force, and labels from the outcomes that followed within the horizon. Accounts are in a snapshot
only while they are customers (a subscription in force that day).

Account attributes have no history in the record: only their current value is known. Attributes
that do not move with the outcome (segment, industry, region) are used as they are; every other
attribute (``lifecycle_stage``, which says "churned" once an account has churned, and any custom
column) is offered to the leakage guard as *current only*, named ``account.<attribute>`` (or
``account.<attribute>=<value>`` for text), which keeps it out unless the user insists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from tenure.health.model import HealthModel
from tenure.health.score import HealthScore, score
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

STABLE_ATTRIBUTES = ("segment", "industry", "region")  # taken as known at every snapshot
CONTEXT_SIGNALS = ("subscriptions_in_force", "subscriptions_started")  # eligibility, not inputs
OUTCOMES = {"churn": ("churned",), "contraction": ("contracted", "churned")}
WARM_UP_DAYS = 90  # the first snapshot is this long after the first usage: windows need history
FEW_ACCOUNTS = 1_000  # up to this many accounts are read by id (an import's), more in one pass
MAX_CATEGORIES = 12  # a text attribute with more distinct values is not offered as an input
META = ("account_id", "day", "snapshot", "segment", "arr", "health_score", "event_day", "label")


@dataclass
class Snapshots:
    """Point-in-time rows: one per (account, snapshot day), with inputs and labels.

    ``frame`` holds the columns in :data:`META`, ``health:<component>`` scores, every input in
    ``inputs`` and every candidate in ``current_only``. ``label`` is 1 when the outcome came within
    ``horizon`` days after the snapshot, 0 when it did not, and NaN while that is not yet known
    (the window runs past ``data_end``, the latest outcome on record). ``event_day`` is the day
    number of the next outcome.
    """

    frame: pd.DataFrame
    inputs: list[str]
    current_only: list[str]
    horizon: int
    outcome: str
    data_end: date
    model: str
    days: list[date] = field(default_factory=list)

    def labelled(self, known_by: date | None = None) -> pd.DataFrame:
        """Rows whose label is known by ``known_by`` (default: the end of the data)."""
        cut = day_number(known_by or self.data_end)
        rows = self.frame[self.frame["day"] + self.horizon <= cut]
        return rows[rows["label"].notna()]

    def on(self, day: date) -> pd.DataFrame:
        return self.frame[self.frame["day"] == day_number(day)]

    def durations(self, rows: pd.DataFrame, known_by: date) -> tuple[np.ndarray, np.ndarray]:
        """Days from each snapshot to the outcome when it came by ``known_by``; else censored:
        at ``known_by`` for accounts still present on the last snapshot before it, or at their
        last snapshot for those that left without an outcome on record. And whether it came."""
        cut = day_number(known_by)
        event = rows["event_day"].notna() & (rows["event_day"] <= cut)
        seen = self.frame[self.frame["day"] < cut].groupby("account_id")["day"].max()
        last = rows["account_id"].map(seen).fillna(cut).to_numpy(dtype=float)
        latest = float(seen.max()) if len(seen) else float(cut)
        censored = np.where(last >= latest, cut, last)
        end = np.where(event, rows["event_day"].fillna(cut), censored)
        return np.maximum(end - rows["day"].to_numpy(), 1).astype(float), event.to_numpy()


def month_starts(first: date, last: date) -> list[date]:
    """The first day of each month from ``first`` (rounded up) to ``last``."""
    day = first if first.day == 1 else (first.replace(day=1) + timedelta(days=32)).replace(day=1)
    days = []
    while day <= last:
        days.append(day)
        day = (day + timedelta(days=32)).replace(day=1)
    return days


def snapshot_days(store: Store, every: int | None = None, end: date | None = None) -> list[date]:
    """Snapshot days over the data: month starts (or every ``every`` days back from the end)."""
    first, last = data_span(store)
    last = min(last, end) if end else last
    first += timedelta(days=WARM_UP_DAYS)
    if every is None:
        return month_starts(first, last)
    count = (last - first).days // every
    return [last - timedelta(days=every * k) for k in range(count, -1, -1)]


def data_span(store: Store) -> tuple[date, date]:
    """The first usage day and the last day the record speaks of (latest usage or outcome)."""
    events, outcomes = KIND_TABLES["events"], KIND_TABLES["outcomes"]
    with store.engine.connect() as connection:
        first, last_event = connection.execute(
            select(func.min(events.c.timestamp), func.max(events.c.timestamp))
        ).one()
        last_outcome = connection.execute(select(func.max(outcomes.c.date))).scalar()
    if first is None:
        raise ValueError("no usage events yet: import some before training (tenure import events)")
    last = max(d for d in (as_date(last_event), as_date(last_outcome)) if d is not None)
    return as_date(first) or last, last


def as_of_day(store: Store, as_of: date | None) -> date:
    """``as_of``, or the last day of the data when None; ValueError when it is after that day."""
    last = data_span(store)[1]
    if as_of is not None and as_of > last:
        raise ValueError(
            f"{as_of.isoformat()} is after the last day of the data ({last.isoformat()})"
        )
    return as_of or last


def outcomes_through(store: Store) -> date:
    """The day outcomes are known to: the latest outcome on record. Label windows close here, not
    at the latest usage event, so outcomes imported later than usage are not read as "none"."""
    with store.engine.connect() as connection:
        last = as_date(
            connection.execute(select(func.max(KIND_TABLES["outcomes"].c.date))).scalar()
        )
    if last is None:
        raise ValueError("no outcomes yet: import renewals and churn (tenure import outcomes)")
    return last


def as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value.date() if hasattr(value, "date") else value  # type: ignore[no-any-return]


def build(
    store: Store, days: Sequence[date], horizon: int = 90, outcome: str = "churn",
    registered: RegisteredModel | None = None,
) -> Snapshots:  # fmt: skip
    """Snapshots of every account on each of ``days``, labelled over ``horizon`` days."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; choose one of: {', '.join(OUTCOMES)}")
    if not days:
        raise ValueError("no snapshot days: the data spans too little time to train on")
    registered = registered or active_model(store)
    cat = registered.catalog()
    tables = load_tables(store, cat)
    signals = batch_engine(cat).compute(tables, [day_number(d) for d in days]).to_pandas()
    frame = signals[signals["subscriptions_in_force"].fillna(0) > 0].reset_index(drop=True)
    frame = frame.rename(columns={AS_OF: "day"})
    accounts = account_attributes(store)
    stable = accounts[list(STABLE_ATTRIBUTES)].fillna("unknown").astype(str)
    frame = frame.merge(stable, left_on="account_id", right_index=True, how="left")
    data_end = outcomes_through(store)
    _label(frame, _outcome_days(store, OUTCOMES[outcome]), horizon, day_number(data_end))
    add_health(frame, registered.model)
    inputs = _inputs(frame, cat.names())
    current = _current_only(accounts.drop(columns=list(STABLE_ATTRIBUTES)), frame)
    frame = pd.concat([frame, current], axis=1)
    frame["snapshot"] = [from_day_number(int(d)) for d in frame["day"]]
    frame["arr"] = frame["mrr"].fillna(0.0) * 12
    return Snapshots(
        frame, inputs, list(current.columns), horizon, outcome, data_end,
        registered.model.label, sorted(days),
    )  # fmt: skip


def account_attributes(store: Store, accounts: Sequence[str] | None = None) -> pd.DataFrame:
    """The stored attributes of every account (or of ``accounts``) as they are now, custom ones
    as columns of their own."""
    table = KIND_TABLES["accounts"]
    skip = ("created_at", "name", "domains", "parent_account_id")
    names = [c.name for c in table.columns if c.name not in skip and not c.name.startswith("_")]
    query = select(*[table.c[n] for n in names])
    if accounts is not None and len(accounts) <= FEW_ACCOUNTS:  # more: one pass reads them all
        query = query.where(table.c.account_id.in_(accounts))
    with store.engine.connect() as connection:
        flat = [_flatten(row._mapping) for row in connection.execute(query)]
    frame = pd.DataFrame(flat) if flat else pd.DataFrame(columns=["account_id"])
    for name in STABLE_ATTRIBUTES:
        if name not in frame:
            frame[name] = None
    return frame.set_index("account_id")


def _outcome_days(store: Store, types: Sequence[str]) -> dict[str, np.ndarray]:
    table = KIND_TABLES["outcomes"]
    query = select(table.c.account_id, table.c.date).where(table.c.type.in_(types))
    found: dict[str, list[int]] = {}
    with store.engine.connect() as connection:
        for account, day in connection.execute(query):
            found.setdefault(account, []).append(day_number(as_date(day) or date.min))
    return {account: np.array(sorted(days)) for account, days in found.items()}


def _label(frame: pd.DataFrame, outcomes: dict[str, np.ndarray], horizon: int, end: int) -> None:
    """The next outcome after each snapshot, and whether it came within the horizon."""
    nxt = np.full(len(frame), np.nan)
    for i, (account, day) in enumerate(zip(frame["account_id"], frame["day"], strict=True)):
        days = outcomes.get(account)
        if days is not None:
            at = np.searchsorted(days, day, side="right")
            if at < len(days):
                nxt[i] = days[at]
    frame["event_day"] = nxt
    came = nxt <= frame["day"].to_numpy() + horizon
    known = came | (frame["day"].to_numpy() + horizon <= end)
    frame["label"] = np.where(known, came.astype(float), np.nan)


def health_of(
    frame: pd.DataFrame, model: HealthModel, attributes: Sequence[str]
) -> list[HealthScore]:
    """The health score of each row (an account's signals as of ``day``) under ``model``, with
    the row's ``attributes`` choosing the variant."""
    return [
        score(model, row["account_id"], from_day_number(int(row["day"])), row,
              {name: row.get(name) for name in attributes})
        for row in frame.to_dict("records")
    ]  # fmt: skip


def add_health(frame: pd.DataFrame, model: HealthModel, column: str = "health_score") -> None:
    """The health score of each snapshot under ``model`` (into ``column``, and its components
    into ``health:<component>``), from stable attributes only."""
    found = health_of(frame, model, STABLE_ATTRIBUTES)
    parts = [{f"health:{c.name}": c.score for c in s.components} for s in found]
    frame[column] = pd.array([s.score for s in found], dtype="Float64").astype(float)
    if column != "health_score":
        return
    components = pd.DataFrame(parts, index=frame.index, dtype=float)
    for column in components.columns:
        frame[column] = components[column]


def _inputs(frame: pd.DataFrame, signals: Sequence[str]) -> list[str]:
    """Model inputs: every signal that is a number and varies, plus one column per segment."""
    inputs = [
        name for name in signals
        if name not in CONTEXT_SIGNALS and pd.api.types.is_numeric_dtype(frame[name])
        and frame[name].nunique() > 1  # an input that never varies tells nothing
    ]  # fmt: skip
    for name in inputs:
        frame[name] = frame[name].astype(float)
    for name in STABLE_ATTRIBUTES:
        for value in _most_common(frame[name]):
            column = f"{name}={value}"
            frame[column] = (frame[name] == value).astype(float)
            inputs.append(column)
    return inputs


def _most_common(values: pd.Series) -> list[str]:
    """Up to :data:`MAX_CATEGORIES` values, most frequent first (ties by name); rarer values get
    no column of their own."""
    counts = values.dropna().value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [str(v) for v, _ in ranked[:MAX_CATEGORIES]]


def _current_only(accounts: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Attributes known only as they are now, as candidate columns for the leakage guard."""
    now = accounts.reindex(frame["account_id"].to_numpy())
    columns: dict[str, pd.Series] = {}
    for name in now.columns:
        values = now[name]
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().sum() and numeric.notna().sum() == values.notna().sum():
            columns[f"account.{name}"] = numeric.astype(float)
            continue
        distinct = values.dropna().astype(str).unique()
        if 0 < len(distinct) <= MAX_CATEGORIES:
            for value in _most_common(values.dropna().astype(str)):
                columns[f"account.{name}={value}"] = (values.astype(str) == value).astype(float)
    return pd.DataFrame({k: v.to_numpy() for k, v in columns.items()}, index=frame.index)


def _flatten(row: Any) -> dict[str, Any]:
    """A stored account as flat columns: custom attributes (JSON) become columns of their own."""
    flat = {k: v for k, v in row.items() if k != "attributes"}
    extra = row.get("attributes")
    if isinstance(extra, str):
        import json

        extra = json.loads(extra)
    if isinstance(extra, dict):
        flat.update({k: v for k, v in extra.items() if isinstance(v, str | int | float)})
    return flat


def input_frame(rows: Sequence[dict[str, Any]], inputs: Sequence[str]) -> pd.DataFrame:
    """Model inputs from signal values and stable attributes (``segment=smb`` columns are 1 when
    the row's segment is smb): how a model reads an account outside the snapshots."""
    data: dict[str, list[float]] = {}
    for name in inputs:
        attribute, eq, value = name.partition("=")
        if eq and attribute in STABLE_ATTRIBUTES:
            data[name] = [float(str(row.get(attribute)) == value) for row in rows]
        else:
            data[name] = [np.nan if row.get(name) is None else float(row[name]) for row in rows]
    return pd.DataFrame(data, columns=list(inputs))


def stable_attributes(store: Store, account: str) -> dict[str, Any]:
    """The account's stable attributes (segment, industry, region); KeyError when unknown."""
    table = KIND_TABLES["accounts"]
    query = select(*[table.c[n] for n in STABLE_ATTRIBUTES]).where(table.c.account_id == account)
    with store.engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        raise KeyError(f"no account {account!r}")
    return {k: ("unknown" if v is None else v) for k, v in row._mapping.items()}
