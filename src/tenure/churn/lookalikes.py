"""Lookalikes: the accounts most like this one that renewed, those that churned, and how it differs.

:func:`diagnose` places an account in signal space as of a snapshot day and finds its nearest
peers in the same segment among accounts whose outcome is known, each as it looked some 90 days
before that outcome (30 to 150 days before it). Signals are robust-standardised (median and
interquartile range over the account and every peer), so a distance of 1 is one "typical spread"
of one signal. For each group it then names the signals where the account sits furthest from the
group's median, in the same standard units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from tenure.churn.snapshots import Snapshots, as_date, as_of_day, stable_attributes
from tenure.churn.training import prepare
from tenure.health.explain import describe
from tenure.health.scoring import day_number, from_day_number
from tenure.signals.catalog import catalog
from tenure.signals.declare import Signal
from tenure.store import Store
from tenure.store.tables import KIND_TABLES

# A contraction is still a renewal: the customer stayed, on less.
GROUPS: dict[str, tuple[str, ...]] = {
    "renewed": ("renewed", "expanded", "contracted"),
    "churned": ("churned",),
}
LEAD_DAYS, MIN_LEAD, MAX_LEAD = 90, 30, 150  # a peer as it looked this long before its outcome
TOP_DIFFERENCES = 5


@dataclass(frozen=True)
class Neighbour:
    """One peer: how far it is from the account, and the outcome it went on to."""

    account_id: str
    distance: float
    outcome: str
    outcome_day: date
    snapshot: date
    health_score: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "distance": _round(self.distance),
            "outcome": self.outcome,
            "outcome_day": self.outcome_day.isoformat(),
            "snapshot": self.snapshot.isoformat(),
            "health_score": _round(self.health_score),
        }


@dataclass(frozen=True)
class Difference:
    """One signal where the account stands apart from a group's nearest members."""

    signal: str
    account_value: float
    group_median: float
    difference: float  # (account - group median) in robust standard units
    healthier: bool | None  # whether the account's side is the healthier one (None: no direction)
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "account_value": _round(self.account_value),
            "group_median": _round(self.group_median),
            "difference": _round(self.difference),
            "healthier": self.healthier,
            "sentence": self.sentence,
        }


@dataclass(frozen=True)
class Group:
    """The nearest peers that went one way (renewed or churned) and where the account differs."""

    neighbours: list[Neighbour]
    differences: list[Difference]

    def to_dict(self) -> dict[str, Any]:
        return {
            "neighbours": [n.to_dict() for n in self.neighbours],
            "differences": [d.to_dict() for d in self.differences],
        }


@dataclass(frozen=True)
class Diagnosis:
    """An account against its lookalikes that renewed and those that churned."""

    account: str
    segment: str
    as_of: date
    renewed: Group
    churned: Group
    inputs: list[str] = field(default_factory=list)  # the signals distances were measured over
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "segment": self.segment,
            "as_of": self.as_of.isoformat(),
            "renewed": self.renewed.to_dict(),
            "churned": self.churned.to_dict(),
            "inputs": list(self.inputs),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class _Scale:
    """Robust standardisation: (value - median) / IQR, or / std when the IQR is 0, else / 1."""

    median: pd.Series
    spread: pd.Series

    @classmethod
    def fit(cls, points: pd.DataFrame) -> _Scale:
        iqr = points.quantile(0.75) - points.quantile(0.25)
        std = points.std()
        spread = iqr.where(iqr > 0, std.where(std > 0, 1.0))
        return cls(points.median(), spread)

    def standardise(self, points: pd.DataFrame) -> np.ndarray:
        """Standard units; a missing value is the median, 0."""
        z = (points.astype(float) - self.median) / self.spread
        values: np.ndarray = z.replace([np.inf, -np.inf], np.nan).fillna(0.0).to_numpy(float)
        return values


def diagnose(
    store: Store, account: str, snapshots: Snapshots, inputs: Sequence[str],
    as_of: date | None = None, k: int = 5,
) -> Diagnosis:  # fmt: skip
    """The ``k`` accounts most like ``account`` that renewed, the ``k`` that churned, and how it
    differs from each.

    The account is taken as of its latest snapshot on or before ``as_of`` (default: its latest).
    Peers share its segment; "renewed" means an outcome of renewed, expanded or contracted (a
    contraction still renewed, on less), "churned" a churned outcome. Only outcomes on or before
    the account's snapshot day count: each peer is taken at its latest outcome of that kind with a
    snapshot 30 to 150 days before it, from the snapshot nearest to 90 days before. Distances are
    Euclidean over the numeric health signals in ``inputs`` (see :func:`signal_columns`),
    robust-standardised over the account and all peers.
    Raises KeyError when the account has no snapshot.
    """
    frame = snapshots.frame
    own, notes = _own_row(frame, account, as_of)
    segment = str(own["segment"])
    columns = signal_columns(frame, inputs)
    until = int(own["day"])
    candidates = frame[(frame["segment"] == segment) & (frame["account_id"] != account)]
    peers = {
        name: _peer_rows(candidates, _outcomes(store, types, until))
        for name, types in GROUPS.items()
    }
    own_points = own[columns].to_frame().T.astype(float)
    points = pd.concat([own_points, *(p[columns] for p in peers.values() if len(p))])
    scale = _Scale.fit(points.astype(float).replace([np.inf, -np.inf], np.nan))
    notes += _missing_note(own_points, columns)
    known = {s.name: s for s in catalog()}
    groups = {
        name: _group(name, own_points, rows, columns, scale, k, known, segment, notes)
        for name, rows in peers.items()
    }
    return Diagnosis(
        account, segment, from_day_number(int(own["day"])), groups["renewed"],
        groups["churned"], columns, notes,
    )  # fmt: skip


def signal_columns(frame: pd.DataFrame, inputs: Sequence[str]) -> list[str]:
    """The inputs that are numeric health signals: attribute dummies (``name=value``) and context
    signals with no healthier direction (size and contract timing, such as days_to_renewal,
    which peers taken before a renewal share by construction) left out."""
    context = {s.name for s in catalog() if s.higher_is_healthier is None}
    return [
        name for name in inputs
        if "=" not in name and name not in context and name in frame
        and pd.api.types.is_numeric_dtype(frame[name])
    ]  # fmt: skip


def _own_row(frame: pd.DataFrame, account: str, as_of: date | None) -> tuple[pd.Series, list[str]]:
    """The account's latest snapshot on or before ``as_of``, and a note when it is not that day."""
    rows = frame[frame["account_id"] == account]
    if as_of is not None:
        rows = rows[rows["day"] <= day_number(as_of)]
    if rows.empty:
        when = f" on or before {as_of.isoformat()}" if as_of else ""
        raise KeyError(f"account {account!r} has no snapshot{when}")
    row = rows.loc[rows["day"].idxmax()]
    day = from_day_number(int(row["day"]))
    notes = []
    if as_of is not None and day != as_of:
        notes.append(f"no snapshot on {as_of.isoformat()}: taken as of {day.isoformat()}")
    return row, notes


def _outcomes(store: Store, types: Sequence[str], until: int) -> pd.DataFrame:
    """Every outcome of ``types`` on or before day number ``until``, latest first (of one day,
    the greater outcome id first): account_id, peer_outcome, peer_outcome_day."""
    table = KIND_TABLES["outcomes"]
    query = (
        select(table.c.account_id, table.c.type, table.c.date)
        .where(table.c.type.in_(types), table.c.account_id.is_not(None))
        .order_by(table.c.outcome_id.desc())
    )
    with store.engine.connect() as connection:
        dated = [(a, t, as_date(d)) for a, t, d in connection.execute(query)]
    rows = [(a, t, day_number(d)) for a, t, d in dated if d is not None]
    found = pd.DataFrame(rows, columns=["account_id", "peer_outcome", "peer_outcome_day"])
    found = found[found["peer_outcome_day"] <= until]
    return found.sort_values("peer_outcome_day", ascending=False, kind="stable")


def _peer_rows(candidates: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Each candidate at its latest outcome with a snapshot ``MIN_LEAD`` to ``MAX_LEAD`` days
    before it, from the snapshot nearest ``LEAD_DAYS`` before (of two, the later)."""
    ranked = outcomes.assign(_rank=np.arange(len(outcomes)))
    rows = candidates.merge(ranked, on="account_id", how="inner")
    lead = rows["peer_outcome_day"] - rows["day"]
    rows = rows[(lead >= MIN_LEAD) & (lead <= MAX_LEAD)].copy()
    rows["_off"] = (rows["peer_outcome_day"] - rows["day"] - LEAD_DAYS).abs()
    order = ["account_id", "_rank", "_off", "day"]
    rows = rows.sort_values(order, ascending=[True, True, True, False], kind="stable")
    return rows.drop_duplicates("account_id").drop(columns=["_rank", "_off"]).reset_index(drop=True)


def _group(
    name: str, own: pd.DataFrame, rows: pd.DataFrame, columns: list[str], scale: _Scale,
    k: int, known: Mapping[str, Signal], segment: str, notes: list[str],
) -> Group:  # fmt: skip
    """The ``k`` nearest of one group and the account's largest differences from them."""
    if len(rows) < k:
        notes.append(
            f"only {len(rows)} account{'' if len(rows) == 1 else 's'} in segment {segment} "
            f"{name} with a snapshot {MIN_LEAD} to {MAX_LEAD} days before (asked for {k})"
        )
    if rows.empty:
        return Group([], [])
    distance = np.sqrt(((scale.standardise(rows[columns]) - scale.standardise(own)) ** 2).sum(1))
    order = np.lexsort((rows["account_id"].to_numpy(), distance))[:k]
    nearest = rows.iloc[order]
    pairs = zip(nearest.iterrows(), distance[order], strict=True)
    neighbours = [_neighbour(row, float(d)) for (_, row), d in pairs]
    return Group(neighbours, _differences(name, own, nearest, columns, scale, known))


def _neighbour(row: pd.Series, distance: float) -> Neighbour:
    health = row.get("health_score")
    return Neighbour(
        str(row["account_id"]), distance, str(row["peer_outcome"]),
        from_day_number(int(row["peer_outcome_day"])), from_day_number(int(row["day"])),
        None if health is None or pd.isna(health) else float(health),
    )  # fmt: skip


def _differences(
    name: str, own: pd.DataFrame, nearest: pd.DataFrame, columns: list[str], scale: _Scale,
    known: Mapping[str, Signal],
) -> list[Difference]:  # fmt: skip
    """The signals where the account is furthest from the group's median, largest first."""
    mine = own.iloc[0][columns].astype(float)
    median = nearest[columns].astype(float).median()
    gap = ((mine - median) / scale.spread).replace([np.inf, -np.inf], np.nan).dropna()
    gap = gap[gap != 0]
    top = gap.abs().sort_values(ascending=False, kind="stable").index[:TOP_DIFFERENCES]
    return [
        _difference(s, float(mine[s]), float(median[s]), float(gap[s]), name, len(nearest), known)
        for s in top
    ]


def _difference(
    signal: str, value: float, median: float, gap: float, group: str, count: int,
    known: Mapping[str, Signal],
) -> Difference:  # fmt: skip
    spec = known.get(signal)
    unit, description = (spec.unit, spec.description) if spec else ("", "")
    healthier = None
    if spec is not None and spec.higher_is_healthier is not None:
        healthier = (gap > 0) == spec.higher_is_healthier
    tone = {None: "", True: " (healthier here)", False: " (less healthy here)"}[healthier]
    sentence = (
        f"{signal}: {describe(value, unit, signal)} here against "
        f"{describe(median, unit, signal)} for the {count} most similar accounts that {group}"
        f"{tone}." + (f" {description}" if description else "")
    )
    return Difference(signal, value, median, gap, healthier, sentence)


def _missing_note(own: pd.DataFrame, columns: list[str]) -> list[str]:
    missing = [c for c in columns if pd.isna(own.iloc[0][c])]
    if not missing:
        return []
    return [f"missing here, taken as the median for distances: {', '.join(missing)}"]


def _round(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def diagnose_account(
    store: Store, account: str, as_of: date | None = None, k: int = 5
) -> Diagnosis:
    """:func:`diagnose` over fresh snapshots: the month starts and ``as_of`` (default: the last
    day of the data), with the inputs the leakage guard lets through. Raises KeyError for an
    unknown account and ValueError for an ``as_of`` after the data, before building anything."""
    stable_attributes(store, account)  # KeyError "no account ..." when there is none
    day = as_of_day(store, as_of)
    snapshots, guarded = prepare(store, end=day, through=True)
    return diagnose(store, account, snapshots, guarded.inputs, day, k)
