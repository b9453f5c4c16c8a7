"""Pre-assembled context for an alert: what a CSM needs to act without opening five tools.

Assembled from the record as of the alert's day (``tenure alerts show ID``):
the account (name, segment, owner), why (the trigger, its condition and the values that met it,
and the health score's explanation over the 30 days before), the key contacts by persona (as the
record holds them now: active first, sponsors and champions before end users), open tickets, the
next renewal and the paid ARR in force, the latest touchpoints, and the suggested playbook.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, or_, select

from tenure.health.scoring import RegisteredModel, explain_account
from tenure.store import Store
from tenure.store.tables import KIND_TABLES
from tenure.triggers.definitions import Trigger
from tenure.triggers.replay import Alert

CONTACTS, TICKETS, TOUCHPOINTS = 10, 5, 5
PERSONAS = (
    "executive_sponsor",
    "champion",
    "economic_buyer",
    "business_unit_leader",
    "procurement",
    "finance",
    "it",
    "power_user",
    "end_user",
)  # who a CSM needs first
EXPLAIN_DAYS = 30


def assemble(
    store: Store, alert: Alert, trigger: Trigger | None, registered: RegisteredModel
) -> dict[str, Any]:
    """The alert's context as of its day (JSON-ready); ``trigger`` None when the trigger file in
    force no longer has it."""
    with store.engine.connect() as connection:
        found = {
            "account": _account(connection, alert.account_id),
            "why": {"trigger": alert.trigger,
                    "description": trigger.description if trigger else None,
                    "when": trigger.condition.text if trigger else None, "values": alert.values,
                    "score": _explanation(store, alert, registered)},
            "contacts": _contacts(connection, alert.account_id),
            "open_tickets": open_tickets_on(connection, alert.account_id, alert.day),
            "renewal": renewal_on(connection, alert.account_id, alert.day),
            "touchpoints": touchpoints_before(connection, alert.account_id, alert.day),
            "playbook": alert.playbook,
        }  # fmt: skip
    return found


def _plain(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v)
            for k, v in row._mapping.items()}  # fmt: skip


def _account(connection: Connection, account: str) -> dict[str, Any]:
    t = KIND_TABLES["accounts"]
    row = connection.execute(
        select(t.c.account_id, t.c.name, t.c.segment, t.c.owner, t.c.lifecycle_stage).where(
            t.c.account_id == account
        )
    ).first()
    return _plain(row) if row is not None else {"account_id": account}


def _explanation(store: Store, alert: Alert, registered: RegisteredModel) -> dict[str, Any] | None:
    """How the health score moved over the 30 days before the alert (None when it cannot say:
    no score on one of the days)."""
    try:
        explained = explain_account(store, alert.account_id,
                                    alert.day - timedelta(days=EXPLAIN_DAYS), alert.day, registered)  # fmt: skip
    except KeyError:
        return None
    data = explained.to_dict()
    return {"from": data["from"], "to": data["to"], "change": data["change"],
            "text": explained.text}  # fmt: skip


def _contacts(connection: Connection, account: str) -> list[dict[str, Any]]:
    t = KIND_TABLES["contacts"]
    rank = case({p: i for i, p in enumerate(PERSONAS)}, value=t.c.persona, else_=len(PERSONAS))
    query = (
        select(t.c.name, t.c.email, t.c.title, t.c.persona, t.c.status)
        .where(t.c.account_id == account)
        .order_by((t.c.status == "left").asc(), rank, t.c.name)
        .limit(CONTACTS)
    )
    return [_plain(row) for row in connection.execute(query)]


def open_tickets_on(connection: Connection, account: str, day: date) -> list[dict[str, Any]]:
    t = KIND_TABLES["tickets"]
    end = datetime.combine(day + timedelta(days=1), datetime.min.time())
    unresolved = and_(t.c.resolved_at.is_(None), t.c.status.notin_(("solved", "closed")))
    still_open = or_(unresolved, t.c.resolved_at >= end)  # a closed ticket without a time: closed
    query = (
        select(t.c.ticket_id, t.c.priority, t.c.status, t.c.opened_at, t.c.subject)
        .where(t.c.account_id == account, t.c.opened_at < end, still_open)
        .order_by(t.c.priority, t.c.opened_at)
        .limit(TICKETS)
    )
    return [_plain(row) for row in connection.execute(query)]


def renewal_on(connection: Connection, account: str, day: date) -> dict[str, Any]:
    t = KIND_TABLES["subscriptions"]
    in_force = and_(t.c.account_id == account, t.c.start_date <= day,
                    or_(t.c.end_date.is_(None), t.c.end_date > day))  # fmt: skip
    rows = connection.execute(select(t.c.arr, t.c.renewal_date, t.c.end_date, t.c.is_trial)
                              .where(in_force)).all()  # fmt: skip
    paid = [r for r in rows if not r.is_trial]  # as the days_to_renewal signal counts them
    dates = [r.renewal_date or r.end_date for r in paid if (r.renewal_date or r.end_date)]
    arr = sum(float(r.arr or 0) for r in paid)
    upcoming = min((d for d in dates if d > day), default=None)
    return {"arr_in_force": round(arr, 2), "next_renewal": upcoming.isoformat() if upcoming else None,
            "days_to_renewal": (upcoming - day).days if upcoming else None}  # fmt: skip


def touchpoints_before(connection: Connection, account: str, day: date) -> list[dict[str, Any]]:
    t = KIND_TABLES["touchpoints"]
    end = datetime.combine(day + timedelta(days=1), datetime.min.time())
    query = (
        select(t.c.type, t.c.occurred_at, t.c.owner, t.c.summary)
        .where(t.c.account_id == account, t.c.occurred_at < end)
        .order_by(t.c.occurred_at.desc())
        .limit(TOUCHPOINTS)
    )
    return [_plain(row) for row in connection.execute(query)]
