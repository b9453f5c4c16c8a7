"""Measured impact of playbooks: what became of the accounts that got a play, against comparable
accounts that did not.

Each play (account, playbook, start day) is matched to one control: a customer of the same
segment, scored on the start day, with no play of that playbook started in the
:data:`WINDOW_DAYS` days up to the start or still running on it, nearest on standardised
pre-start covariates (:data:`COVARIATES`), within a caliper, with replacement. This is risk-set
matching: a control is chosen with what was known on the start day only, so an account that
gets the playbook later may serve as a control before then (excluding it would keep out exactly
the accounts whose future went badly, when plays start on alerts). Treated and controls are
described the same way: their signals recomputed by the batch engine as of the start day, and
health scored under the model in force. The outcomes of each pair (health change at each
horizon, renewal, expansion) are compared: the mean difference, treated minus control, is the
effect of starting the playbook on the accounts that got it, against not starting it then. Its
95% interval allows for pairs that share an account (a control reused, an account treated more
than once): a variance robust to that dependence (:func:`interval`). See docs/play-impact.md for
the method and its limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from tenure.churn.snapshots import as_date, as_of_day
from tenure.health.model import HealthModel
from tenure.health.score import score
from tenure.health.scoring import (
    AS_OF,
    active_model,
    batch_engine,
    day_number,
    from_day_number,
    load_tables,
)
from tenure.store import Store
from tenure.store.tables import KIND_TABLES, plays

HORIZONS = (30, 60, 90)
MIN_PAIRS = 5  # fewer matched pairs with an outcome known than this: too few plays to say
CALIPER = 0.5  # largest root-mean-square standardised difference between a play and its control
WINDOW_DAYS = 90  # a control had no play of the playbook started this many days before the start
PRE_DAYS = 30  # the health change before the start is measured over this many days
RENEWAL_DAYS = 180  # a renewal or churn within this many days after the start is the outcome
EXPANSION_DAYS = 90  # an expansion within this many days after the start is the outcome
LEVEL = 0.975  # the upper quantile of the two-sided 95% interval
MISMATCH = 10.0  # distance between a missing covariate and a present one: never within a caliper
COVARIATES = ("health_score", "health_change_30d", "usage_trend_14d", "days_to_renewal")
CONTEXT = ("subscriptions_started", "subscriptions_in_force", "mrr", "usage_trend_14d",
           "days_to_renewal")  # fmt: skip
RENEWED = ("renewed", "expanded", "contracted")
CHUNK_DAYS = 31
Outcomes = dict[str, list[tuple[int, str]]]


@dataclass(frozen=True)
class Play:
    play_id: int
    playbook: str
    account_id: str
    day: int  # the start day, as a day number
    ended: int | None = None  # the day it ended, as a day number (None: running)


@dataclass(frozen=True)
class Effect:
    """One outcome over the ``n`` matched pairs where both outcomes are known: the treated mean,
    the controls' mean, and their difference with a 95% interval (None below :data:`MIN_PAIRS`)."""

    n: int
    treated: float | None
    control: float | None
    difference: float | None
    ci: tuple[float, float] | None

    @property
    def enough(self) -> bool:
        return self.n >= MIN_PAIRS

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "treated": self.treated, "control": self.control,
                "difference": self.difference,
                "ci": list(self.ci) if self.ci is not None else None}  # fmt: skip


@dataclass(frozen=True)
class Pair:
    """A play and the control it was matched to (``distance``: root-mean-square standardised;
    ``control_started``: the day the control got the playbook itself after ``day``, if it did
    by the day asked — it stays the control, compared as it was)."""

    play_id: int
    account_id: str
    control_id: str
    day: date
    distance: float
    control_started: date | None = None


@dataclass
class PlaybookImpact:
    """A playbook's plays, how many found a control, and the effect on each outcome (``pairs``
    says which control each matched play got; it is not part of :meth:`to_dict`)."""

    playbook: str
    plays: int
    matched: int
    unmatched: int
    health_change: dict[int, Effect]
    renewal_rate: Effect
    expansion_rate: Effect
    notes: list[str] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)

    def outcomes(self) -> list[tuple[str, Effect]]:
        """Each outcome with its label, in report order."""
        found = [(f"health change {h}d", e) for h, e in self.health_change.items()]
        return [*found, (f"renewal rate ({RENEWAL_DAYS}d)", self.renewal_rate),
                (f"expansion rate ({EXPANSION_DAYS}d)", self.expansion_rate)]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.playbook, "plays": self.plays, "matched": self.matched,
            "unmatched": self.unmatched,
            "health_change": {str(h): e.to_dict() for h, e in self.health_change.items()},
            "renewal_rate": self.renewal_rate.to_dict(),
            "expansion_rate": self.expansion_rate.to_dict(), "notes": self.notes,
        }  # fmt: skip


@dataclass
class ImpactReport:
    as_of: date
    horizons: tuple[int, ...]
    playbooks: list[PlaybookImpact]

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "horizons": list(self.horizons),
                "playbooks": [p.to_dict() for p in self.playbooks]}  # fmt: skip


def impact(
    store: Store, as_of: date | None = None, playbooks: Sequence[str] | None = None,
    horizons: Sequence[int] = HORIZONS, caliper: float = CALIPER,
) -> list[PlaybookImpact]:  # fmt: skip
    """The measured impact of each playbook (or of ``playbooks``) with plays by ``as_of``."""
    return impact_report(store, as_of, playbooks, horizons, caliper).playbooks


def impact_report(
    store: Store, as_of: date | None = None, playbooks: Sequence[str] | None = None,
    horizons: Sequence[int] = HORIZONS, caliper: float = CALIPER,
) -> ImpactReport:  # fmt: skip
    """:func:`impact`, with the day it is as of (default: the last day of the data; a
    ValueError when ``as_of`` is after it or there is no usage yet)."""
    last = as_of_day(store, as_of)
    found = load_plays(store, last, playbooks)
    report = ImpactReport(last, tuple(horizons), [])
    if not found:
        return report
    history = History.build(store, needed_days(found, horizons, day_number(last)))
    outcomes = load_outcomes(store, last)
    for name in sorted({p.playbook for p in found}):
        mine = [p for p in found if p.playbook == name]
        report.playbooks.append(measure(name, mine, history, outcomes, report.horizons,
                                        day_number(last), caliper))  # fmt: skip
    return report


def load_plays(store: Store, last: date, playbooks: Sequence[str] | None = None) -> list[Play]:
    """Every play started by ``last`` (of ``playbooks`` when given), whatever became of it, with
    the day it ended (None while running, or ended after ``last``; a play that is over with no
    day recorded counts as ended the day it started)."""
    query = select(plays.c.play_id, plays.c.playbook, plays.c.account_id, plays.c.started_day,
                   plays.c.status, plays.c.ended_day)  # fmt: skip
    query = query.where(plays.c.started_day <= last)
    if playbooks is not None:
        query = query.where(plays.c.playbook.in_(list(playbooks)))
    with store.engine.connect() as connection:
        rows = connection.execute(query.order_by(plays.c.play_id)).all()
    found = []
    for r in rows:
        start, ended = day_number(as_date(r.started_day) or last), as_date(r.ended_day)
        if ended is not None:
            end: int | None = day_number(ended) if ended <= last else None
        else:
            end = None if r.status == "running" else start
        found.append(Play(int(r.play_id), str(r.playbook), str(r.account_id), start, end))
    return found


def load_outcomes(store: Store, last: date) -> Outcomes:
    """Each account's outcomes up to ``last``: (day number, type), oldest first."""
    table = KIND_TABLES["outcomes"]
    query = select(table.c.account_id, table.c.date, table.c.type).where(table.c.date <= last)
    found: Outcomes = {}
    with store.engine.connect() as connection:
        for account, day, kind in connection.execute(query.order_by(table.c.date)):
            found.setdefault(str(account), []).append((day_number(as_date(day) or last), kind))
    return found


def needed_days(found: Iterable[Play], horizons: Sequence[int], last: int) -> list[int]:
    """The days whose signals are read: each start, the day the pre-start change is measured
    from, and each day an outcome is read on (up to ``last``)."""
    offsets = {-PRE_DAYS, 0, EXPANSION_DAYS, *horizons}
    return sorted({p.day + k for p in found for k in offsets if p.day + k <= last})


class History:
    """Every account's signals on the days asked (batch engine), health scored when first read."""

    def __init__(
        self, frame: pd.DataFrame, model: HealthModel, attributes: dict[str, dict[str, Any]]
    ) -> None:
        self.frame = frame.reset_index(drop=True)
        self.model = model
        self.attributes = attributes
        keys = zip(self.frame["account_id"], self.frame["day"], strict=True)
        self.position = {(str(a), int(d)): i for i, (a, d) in enumerate(keys)}
        self.scores = np.full(len(self.frame), np.nan)
        self.scored = np.zeros(len(self.frame), dtype=bool)
        self.by_day = {int(d): sorted(map(str, a))
                       for d, a in self.frame.groupby("day")["account_id"]}  # fmt: skip

    @classmethod
    def build(cls, store: Store, days: Sequence[int]) -> History:
        registered = active_model(store)
        cat = registered.catalog()
        tables, engine = load_tables(store, cat), batch_engine(cat)
        keep = ["account_id", AS_OF, *dict.fromkeys([*CONTEXT, *registered.model.signals()])]
        parts = [engine.compute(tables, days[at : at + CHUNK_DAYS]).to_pandas()[keep]
                 for at in range(0, len(days), CHUNK_DAYS)]  # fmt: skip
        frame = pd.concat(parts, ignore_index=True).rename(columns={AS_OF: "day"})
        for name in ("subscriptions_started", "subscriptions_in_force"):
            frame[name] = frame[name].fillna(0)
        attributes = {str(r["account_id"]): r for r in tables["accounts"].to_pylist()}
        return cls(frame, registered.model, attributes)

    def segment(self, account: str) -> str:
        """The account's segment ("unknown" when it has none): controls share it. The record
        keeps current attributes only: the segment is taken as stable, as the churn snapshots
        take it (:data:`tenure.churn.snapshots.STABLE_ATTRIBUTES`)."""
        value = self.attributes.get(account, {}).get("segment")
        return str(value) if value not in (None, "") else "unknown"

    def accounts_on(self, day: int) -> list[str]:
        return self.by_day.get(day, [])

    def health(self, keys: Sequence[tuple[str, int]]) -> np.ndarray:
        """The health score of each (account, day); NaN when not scored (not a customer)."""
        at = self._positions(keys)
        known = at[at >= 0]
        todo = np.unique(known[~self.scored[known]])
        for i, row in zip(todo, self.frame.iloc[todo].to_dict("records"), strict=True):
            account = str(row["account_id"])
            found = score(self.model, account, from_day_number(int(row["day"])), row,
                          self.attributes.get(account, {}))  # fmt: skip
            self.scores[i] = np.nan if found.score is None else found.score
        self.scored[todo] = True
        return self._pick(self.scores, at)

    def values(self, column: str, keys: Sequence[tuple[str, int]]) -> np.ndarray:
        """A signal's value for each (account, day); NaN when missing."""
        column_values = pd.to_numeric(self.frame[column], errors="coerce").to_numpy(dtype=float)
        return self._pick(column_values, self._positions(keys))

    def _positions(self, keys: Sequence[tuple[str, int]]) -> np.ndarray:
        return np.array([self.position.get(k, -1) for k in keys], dtype=np.int64)

    @staticmethod
    def _pick(values: np.ndarray, at: np.ndarray) -> np.ndarray:
        out = np.full(len(at), np.nan)
        out[at >= 0] = values[at[at >= 0]]
        return out


def covariates(history: History, accounts: Sequence[str], days: Sequence[int]) -> pd.DataFrame:
    """The pre-start covariates of each (account, day), with the account's segment."""
    keys = list(zip(accounts, days, strict=True))
    before = [(a, d - PRE_DAYS) for a, d in keys]
    health = history.health(keys)
    return pd.DataFrame({
        "account_id": list(accounts), "day": np.asarray(days, dtype=np.int64),
        "segment": [history.segment(a) for a in accounts],
        "health_score": health, "health_change_30d": health - history.health(before),
        "usage_trend_14d": history.values("usage_trend_14d", keys),
        "days_to_renewal": history.values("days_to_renewal", keys),
    })  # fmt: skip


def pool(history: History, mine: Sequence[Play]) -> pd.DataFrame:
    """Candidate controls on each start day: scored customers at risk of the playbook then, as
    known that day — no play of it started in the :data:`WINDOW_DAYS` days up to the day (the
    day itself included), none running on it. Plays started later do not exclude an account
    (risk-set matching); ``later`` is the next such start (NaN: none)."""
    by_account: dict[str, list[Play]] = {}
    for p in mine:
        by_account.setdefault(p.account_id, []).append(p)
    accounts, days, later = [], [], []
    for day in sorted({p.day for p in mine}):
        for account in history.accounts_on(day):
            own = by_account.get(account, ())
            if not any(exposed(p, day) for p in own):
                accounts.append(account)
                days.append(day)
                later.append(min((p.day for p in own if p.day > day), default=np.nan))
    found = covariates(history, accounts, days)
    found["later"] = np.asarray(later, dtype=float)
    return found[found["health_score"].notna()].reset_index(drop=True)


def exposed(play: Play, day: int) -> bool:
    """Whether ``play`` keeps its account out of the controls on ``day``: started in the
    :data:`WINDOW_DAYS` days up to it, or started before and still running then."""
    if play.day > day:
        return False
    return day - play.day <= WINDOW_DAYS or play.ended is None or play.ended >= day


def standardised(frame: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    """Covariates as robust z-scores against ``reference`` (median, and 1.4826 x the median
    absolute deviation; the standard deviation when that is 0): a missing value is 0, with an
    indicator column per covariate weighted so that missing never matches present."""
    columns = []
    for name in COVARIATES:
        known = reference[name].dropna().to_numpy(dtype=float)
        centre = float(np.median(known)) if len(known) else 0.0
        spread = 1.4826 * float(np.median(np.abs(known - centre))) if len(known) else 0.0
        if not spread > 0:
            spread = float(np.std(known)) if len(known) else 0.0
        values = (frame[name].to_numpy(dtype=float) - centre) / (spread if spread > 0 else 1.0)
        missing = np.isnan(values)
        columns += [np.where(missing, 0.0, values), missing * MISMATCH]
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


def match(
    treated: pd.DataFrame, candidates: pd.DataFrame, caliper: float = CALIPER
) -> tuple[np.ndarray, np.ndarray]:
    """Each treated row's nearest candidate on the same day and of the same segment, within the
    caliper (root-mean-square standardised difference), with replacement: the candidate's
    position (-1 when none) and the distance (NaN when none)."""
    from sklearn.neighbors import NearestNeighbors

    reference = pd.concat([treated[list(COVARIATES)], candidates[list(COVARIATES)]])
    x, y = standardised(treated, reference), standardised(candidates, reference)
    chosen, distance = np.full(len(treated), -1), np.full(len(treated), np.nan)
    groups = candidates.groupby(["day", "segment"], sort=True).indices
    for (day, segment), rows in treated.groupby(["day", "segment"], sort=True).indices.items():
        among = np.sort(groups.get((day, segment), np.array([], dtype=np.int64)))
        if not len(among):
            continue
        nearest = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(y[among])
        gap, at = nearest.kneighbors(x[rows])
        gap = gap[:, 0] / np.sqrt(len(COVARIATES))
        close = gap <= caliper
        chosen[rows[close]], distance[rows[close]] = among[at[close, 0]], gap[close]
    return chosen, distance


def interval(
    differences: np.ndarray, treated: Sequence[str] | None = None,
    controls: Sequence[str] | None = None,
) -> tuple[float, float]:  # fmt: skip
    """The 95% interval of the mean of ``differences`` (one per matched pair, its play's account
    in ``treated`` and its control's in ``controls``), robust to pairs that share an account.

    Matching with replacement reuses controls, and an account may be treated on several days
    (or be a control on one day and treated on another): such pairs are not independent. The
    variance is the dyadic-robust one (Fafchamps and Gubert 2007; Aronow, Samii and Assenova
    2015): the products of the residuals of every two pairs that share an account — for pairs
    sharing a treated or a control account, two-way clustering (Cameron, Gelbach and Miller
    2011). A control used K times thus adds K(K-1) times its variance, as in the Abadie-Imbens
    variance of matching with replacement, estimated from the pairs themselves. Each cluster's
    sum of residuals is divided by 1 - its share of the pairs, which makes its term the
    delete-one-cluster jackknife's (CV3, as recommended by MacKinnon, Nielsen and Webb 2023 for
    few or unequal clusters: a much reused control is one); the variance is floored at the
    one-way ones (by treated, by control account), and the interval uses Student's t with G-1
    degrees of freedom, G the number of distinct treated or control accounts, whichever is
    fewer. Without accounts, each pair is its own: about the usual t interval.
    """
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n < 2:
        return float("nan"), float("nan")
    mine = list(treated) if treated is not None else [f"t{i}" for i in range(n)]
    theirs = list(controls) if controls is not None else [f"c{i}" for i in range(n)]
    names, codes = np.unique(np.array(mine + theirs, dtype=object), return_inverse=True)
    t, c = codes[:n], codes[n:]
    c = np.where(c != t, c, len(names) + np.arange(n))  # a pair within one account: as if two
    e = d - d.mean()
    accounts = _clustered(np.concatenate([t, c]), np.concatenate([e, e]), n)
    _, dyads = np.unique(np.minimum(t, c) * (len(names) + n) + np.maximum(t, c),
                         return_inverse=True)  # fmt: skip
    variance = max(accounts - _clustered(dyads, e, n), _clustered(t, e, n), _clustered(c, e, n))
    groups = min(len(np.unique(t)), len(np.unique(c)))
    spread = t_quantile(max(groups - 1, 1)) * float(np.sqrt(variance)) / n
    return float(d.mean() - spread), float(d.mean() + spread)


def _clustered(keys: np.ndarray, residuals: np.ndarray, n: int) -> float:
    """The sum over clusters (``keys``) of the squared sum of their residuals, each divided by
    1 - its share of the ``n`` pairs: n^2 times the sum of the squared changes in the mean when
    the cluster is left out (the jackknife; 0 for a cluster of every pair)."""
    sums = np.bincount(keys, residuals)
    left = 1.0 - np.bincount(keys) / n
    return float(np.sum(np.divide(sums, left, out=np.zeros_like(sums), where=left > 1e-9) ** 2))


def t_quantile(dof: int, p: float = LEVEL) -> float:
    """Student's t quantile: exact for 1 and 2 degrees of freedom, else the Cornish-Fisher
    expansion (Abramowitz and Stegun 26.7.5), within 0.004 of the exact value from 3 on."""
    if dof == 1:
        return float(np.tan(np.pi * (p - 0.5)))
    if dof == 2:
        return float((2 * p - 1) / np.sqrt(2 * p * (1 - p)))
    z = NormalDist().inv_cdf(p)
    terms = ((z**3 + z) / 4, (5 * z**5 + 16 * z**3 + 3 * z) / 96,
             (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
             (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160)  # fmt: skip
    return float(z + sum(g / dof**k for k, g in enumerate(terms, start=1)))


def effect(
    treated: np.ndarray, control: np.ndarray, accounts: Sequence[str] | None = None,
    controls: Sequence[str] | None = None, rate: bool = False,
) -> Effect:  # fmt: skip
    """Treated against control over the pairs where both are known (``accounts`` and
    ``controls`` name each pair's accounts, for the interval; a rate's interval is kept within
    -1 and 1)."""
    known = ~np.isnan(treated) & ~np.isnan(control)
    t, c = treated[known], control[known]
    n = int(known.sum())
    if n == 0:
        return Effect(0, None, None, None, None)
    means = _round(float(t.mean())), _round(float(c.mean()))
    if n < MIN_PAIRS:
        return Effect(n, *means, None, None)
    kept = np.flatnonzero(known).tolist()
    low, high = interval(t - c, *(None if who is None else [who[i] for i in kept]
                                  for who in (accounts, controls)))  # fmt: skip
    if rate:
        low, high = max(low, -1.0), min(high, 1.0)
    return Effect(n, *means, _round(float((t - c).mean())), (_round(low), _round(high)))


def _round(value: float) -> float:
    return round(value, 4) + 0.0  # + 0.0: no "-0.0"


def matched_pairs(
    history: History, mine: Sequence[Play], caliper: float = CALIPER
) -> tuple[list[Pair], int]:
    """Each play with the control it was matched to (plays that found none are left out), and
    how many plays had no health score on their start day (not customers then)."""
    treated = covariates(history, [p.account_id for p in mine], [p.day for p in mine])
    scored = treated["health_score"].notna().to_numpy()
    candidates = pool(history, mine)
    if not scored.any() or not len(candidates):
        return [], int((~scored).sum())
    chosen, distance = match(treated[scored].reset_index(drop=True), candidates, caliper)
    kept = [p for p, s in zip(mine, scored.tolist(), strict=True) if s]
    controls, later = candidates["account_id"].to_numpy(), candidates["later"].to_numpy()
    found = [
        Pair(p.play_id, p.account_id, str(controls[c]), from_day_number(p.day), _round(d),
             None if np.isnan(later[c]) else from_day_number(int(later[c])))
        for p, c, d in zip(kept, chosen.tolist(), distance.tolist(), strict=True)
        if c >= 0
    ]  # fmt: skip
    return found, int((~scored).sum())


def measure(
    name: str, mine: Sequence[Play], history: History, outcomes: Outcomes,
    horizons: Sequence[int], last: int, caliper: float = CALIPER,
) -> PlaybookImpact:  # fmt: skip
    """One playbook's plays matched to controls, and the effect on each outcome."""
    pairs, not_scored = matched_pairs(history, mine, caliper)
    days = np.array([day_number(p.day) for p in pairs], dtype=np.int64)
    ours, theirs = [p.account_id for p in pairs], [p.control_id for p in pairs]
    renewed = renewals(outcomes, ours, days, last), renewals(outcomes, theirs, days, last)
    expanded = (_expansions(history, outcomes, ours, days, last),
                _expansions(history, outcomes, theirs, days, last))  # fmt: skip
    found = PlaybookImpact(
        name, len(mine), len(pairs), len(mine) - len(pairs),
        {h: _health_effect(history, ours, theirs, days, h, last) for h in horizons},
        effect(*renewed, ours, theirs, rate=True), effect(*expanded, ours, theirs, rate=True),
        pairs=pairs,
    )  # fmt: skip
    found.notes = _notes(found, not_scored, len(set(theirs)), caliper)
    return found


def _health_effect(
    history: History, ours: Sequence[str], theirs: Sequence[str], days: np.ndarray, horizon: int,
    last: int,
) -> Effect:  # fmt: skip
    treated = _health_change(history, ours, days, horizon, last)
    return effect(treated, _health_change(history, theirs, days, horizon, last), ours, theirs)


def _health_change(
    history: History, accounts: Sequence[str], days: np.ndarray, horizon: int, last: int
) -> np.ndarray:
    """Health ``horizon`` days after the start minus at the start (NaN after ``last``, or when
    either day has no score)."""
    start = history.health(list(zip(accounts, days.tolist(), strict=True)))
    later = history.health([(a, int(d) + horizon) for a, d in zip(accounts, days, strict=True)])
    return np.where(days + horizon <= last, later - start, np.nan)


def renewals(
    outcomes: Outcomes, accounts: Sequence[str], days: np.ndarray, last: int
) -> np.ndarray:
    """1 when the first renewal or churn within :data:`RENEWAL_DAYS` after the start was a
    renewal (renewed, expanded or contracted), 0 when a churn, NaN when neither came (by
    ``last``)."""
    found = np.full(len(accounts), np.nan)
    for i, (account, start) in enumerate(zip(accounts, days.tolist(), strict=True)):
        for day, kind in outcomes.get(account, ()):
            if start < day <= min(start + RENEWAL_DAYS, last) and (kind == "churned"
                                                                   or kind in RENEWED):  # fmt: skip
                found[i] = float(kind != "churned")
                break
    return found


def _expansions(
    history: History, outcomes: Outcomes, accounts: Sequence[str], days: np.ndarray, last: int
) -> np.ndarray:
    """1 when an "expanded" outcome came within :data:`EXPANSION_DAYS` after the start or MRR in
    force then was above MRR at the start, else 0; NaN while that day is after ``last``."""
    keys = list(zip(accounts, days.tolist(), strict=True))
    before = np.nan_to_num(history.values("mrr", keys))
    after = np.nan_to_num(history.values("mrr", [(a, d + EXPANSION_DAYS) for a, d in keys]))
    expanded = np.array([
        any(kind == "expanded" and start < day <= start + EXPANSION_DAYS
            for day, kind in outcomes.get(account, ()))
        for account, start in keys
    ], dtype=bool)  # fmt: skip
    grew = (after > before) | expanded
    return np.where(days + EXPANSION_DAYS <= last, grew.astype(float), np.nan)


def _notes(found: PlaybookImpact, not_scored: int, controls: int, caliper: float) -> list[str]:
    notes = [_unmatched(found, not_scored, caliper)] if found.unmatched else []
    few = [f"{label} ({_count(e.n, 'pair')})" for label, e in found.outcomes() if not e.enough]
    if len(few) == len(found.outcomes()):
        notes.append(f"too few plays to say: {_count(found.matched, 'matched pair')} (at least "
                     f"{MIN_PAIRS} with an outcome known are needed for an estimate)")  # fmt: skip
    elif few:
        notes.append(f"too few plays to say (fewer than {MIN_PAIRS} matched pairs with the "
                     f"outcome known) for {', '.join(few)}")  # fmt: skip
    if found.matched and controls < found.matched:
        notes.append(f"{_count(found.matched, 'play')} matched to {controls} distinct control "
                     "accounts (controls are reused: matching is with replacement; the "
                     "intervals allow for it)")  # fmt: skip
    span = max((*found.health_change, EXPANSION_DAYS))
    later = sum(p.control_started is not None and (p.control_started - p.day).days <= span
                for p in found.pairs)  # fmt: skip
    if later:
        notes.append(f"{later} of {_count(found.matched, 'control')} got the playbook themselves "
                     f"within {span} days after the start: each is compared as it was (starting "
                     "the playbook then against not starting it then), which understates an "
                     "effect the later plays share")  # fmt: skip
    return notes


def _unmatched(found: PlaybookImpact, not_scored: int, caliper: float) -> str:
    reasons = []
    if not_scored:
        reasons.append(f"{not_scored} on accounts with no health score on the start day (not "
                       "customers then)")  # fmt: skip
    if found.unmatched > not_scored:
        reasons.append(f"{found.unmatched - not_scored} with no account of the same segment "
                       f"within the caliper ({caliper} standardised)")  # fmt: skip
    return f"{found.unmatched} of {_count(found.plays, 'play')} unmatched: {'; '.join(reasons)}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
