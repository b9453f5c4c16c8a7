"""What a play reads about an account on a day: its signals (for conditions, the baseline and
templates) and its record (people, renewal, tickets, touchpoints, for templates).

Signals are the triggers' fields: the Signal Stack as of the day (batch engine) with attributes,
calendar terms, health score and band (and the band a week before), and the churn probability
when a playbook reads it (:func:`tenure.triggers.replay.add_fields`), for the accounts asked only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, func, or_, select

from tenure.conditions import parse
from tenure.health.scoring import AS_OF, active_model, day_number, signal_rows
from tenure.record.schema import PERSONAS
from tenure.store import Store
from tenure.store.tables import KIND_TABLES
from tenure.triggers.context import open_tickets_on, renewal_on, touchpoints_before
from tenure.triggers.definitions import ATTRIBUTES, Trigger, TriggerSet, vocabulary
from tenure.triggers.replay import BAND_RANK, add_fields, daily_values, plain

HEALTH_FIELDS = ("health_score", "health_band_rank", "health_band_change_7d")
WEEK = 7  # health_band_change_7d compares with the band a week before
_BANDS = {rank: band for band, rank in BAND_RANK.items()}


def signals_on(
    store: Store, accounts: Sequence[str], day: date, names: Collection[str] = ()
) -> dict[str, dict[str, Any]]:
    """Each of ``accounts``' fields as of ``day``: every name of the condition vocabulary (None
    when missing) and ``health_band`` (red, yellow, green). ``names``: the fields conditions
    read, so that the churn probability is computed only when one does."""
    if not accounts:
        return {}
    registered = active_model(store)
    days = [day_number(day - timedelta(days=WEEK)), day_number(day)]
    rows = signal_rows(store, registered.catalog(), days, sorted(set(accounts)))
    if not rows:
        return {}
    frame = pd.DataFrame(rows).rename(columns={AS_OF: "day"})
    add_fields(store, frame, registered, _reading({*HEALTH_FIELDS, *names}))
    frame = frame[frame["day"] == day_number(day)]
    return {str(row["account_id"]): _values(row) for row in frame.to_dict("records")}


def _values(row: dict[str, Any]) -> dict[str, Any]:
    values = {n: plain(row.get(n)) for n in vocabulary()}
    rank = values.get("health_band_rank")
    values["health_band"] = None if rank is None else _BANDS.get(int(rank))
    return values


Signals = Callable[[Store, Sequence[str], date, Collection[str]], dict[str, dict[str, Any]]]


class SignalHistory:
    """Every customer's fields on every day of a range, computed once by the batch engine: what
    :func:`signals_on` gives for one day, for a run over many days (``make demo`` plays 90 days).
    A day outside the range is read with :func:`signals_on`."""

    def __init__(self, by_day: dict[int, dict[str, dict[str, Any]]]) -> None:
        self.by_day = by_day

    @classmethod
    def compute(
        cls, store: Store, start: date, end: date, names: Collection[str] = ()
    ) -> SignalHistory:
        registered = active_model(store)
        frame = daily_values(store, registered, start - timedelta(days=WEEK), end, None)
        add_fields(store, frame, registered, _reading({*HEALTH_FIELDS, *names}))
        by_day: dict[int, dict[str, dict[str, Any]]] = {}
        for row in frame[frame["day"] >= day_number(start)].to_dict("records"):
            by_day.setdefault(int(row["day"]), {})[str(row["account_id"])] = _values(row)
        return cls(by_day)

    def __call__(
        self, store: Store, accounts: Sequence[str], day: date, names: Collection[str] = ()
    ) -> dict[str, dict[str, Any]]:
        known = self.by_day.get(day_number(day))
        if known is None:
            return signals_on(store, accounts, day, names)
        return {a: known[a] for a in accounts if a in known}


def _reading(names: Collection[str]) -> TriggerSet:
    """A trigger set that reads ``names``: what :func:`add_fields` looks at to decide which
    fields to add."""
    known = [n for n in sorted(names) if n in vocabulary()]
    condition = parse(" or ".join(f"{n} is missing" for n in known), vocabulary(), ATTRIBUTES)
    trigger = Trigger("plays", "custom", condition, 1, 0, "low", "risk", None, "")
    return TriggerSet("", "", (trigger,))


def record(store: Store, account: str, day: date) -> dict[str, Any]:
    """The account's record as a play reads it on ``day``: the account, its active people by
    persona (longest-standing first), the next renewal and paid ARR in force, open tickets and
    the latest touchpoints (as :mod:`tenure.triggers.context` assembles them for alerts)."""
    with store.engine.connect() as connection:
        return {
            "account": _account(connection, account),
            "contacts": _people(connection, account, day),
            "renewal": renewal_on(connection, account, day),
            "open_tickets": open_tickets_on(connection, account, day),
            "touchpoints": touchpoints_before(connection, account, day),
        }


def _account(connection: Connection, account: str) -> dict[str, Any] | None:
    t = KIND_TABLES["accounts"]
    row = connection.execute(
        select(t.c.account_id, t.c.name, t.c.segment, t.c.industry, t.c.region,
               t.c.lifecycle_stage, t.c.owner).where(t.c.account_id == account)
    ).first()  # fmt: skip
    return None if row is None else dict(row._mapping)


def _people(connection: Connection, account: str, day: date) -> dict[str, list[dict[str, Any]]]:
    """Contacts at the account on ``day`` (not left by then), by persona."""
    t = KIND_TABLES["contacts"]
    there = and_(
        t.c.account_id == account,
        or_(t.c.created_at.is_(None), t.c.created_at <= day),
        or_(t.c.status != "left", t.c.left_at > day),
    )
    query = (
        select(t.c.contact_id, t.c.name, t.c.email, t.c.title, t.c.persona)
        .where(there, t.c.persona.in_(PERSONAS))
        .order_by(
            func.coalesce(t.c.is_lead, False),
            t.c.created_at.asc().nulls_last(),
            t.c.name,
            t.c.contact_id,
        )
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in connection.execute(query):
        found.setdefault(row.persona, []).append(dict(row._mapping))
    return found
