"""The daily digest: per account owner, the open alerts on their accounts, by severity.

A digest for ``day`` holds the owner's open alerts of that day or before that were raised after
the owner's previous digest was queued (the first digest: the alerts of ``day``; never older than
:data:`LOOKBACK_DAYS`), so an alert raised late in a day is in the next digest. It is queued once
per owner and day (subject ``digest:<owner>:<day>`` on route ``digest``) and sent on the routing
file's ``digest`` channel to ``to`` (``owner``: the owner's address). Owners with no new open
alerts get no digest. An owner name longer than :data:`OWNER_IN_SUBJECT` characters is shortened
in the subject, the same way every time (its start, ``~`` and a hash of the whole name), so the
subject fits its column.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from tenure.routing.deliver import (
    Clock,
    accounts_of,
    clock_for,
    enqueue,
    recipients,
    send_due,
    utcnow,
)
from tenure.routing.messages import MOST_SEVERE_FIRST
from tenure.routing.routes import DIGEST, RoutingFile, route_problems
from tenure.store import Store
from tenure.store.tables import alerts, deliveries

LOOKBACK_DAYS = 31
OWNER_IN_SUBJECT = 150  # the longest owner name kept whole in ``digest:<owner>:<day>``
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9999, 12, 31)  # the days a digest can be for


@dataclass
class Digests:
    """What :func:`queue_digests` did for a day."""

    day: date
    queued: list[dict[str, Any]] = field(default_factory=list)  # owner, delivery_id, total
    already: list[str] = field(default_factory=list)  # owners whose digest was queued before
    skipped: dict[str, str] = field(default_factory=dict)  # owner: why
    unowned: int = 0  # open alerts on accounts without an owner: in no digest
    sends_nothing: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "queued": self.queued, "already": self.already,
                "skipped": self.skipped, "unowned": self.unowned,
                "sends_nothing": self.sends_nothing}  # fmt: skip


def subject(owner: str, day: date) -> str:
    """``digest:<owner>:<day>``, with a long owner name shortened (:func:`subject_owner`)."""
    return f"digest:{subject_owner(owner)}:{day.isoformat()}"


def subject_owner(owner: str) -> str:
    """The owner as a digest's subject names them: the name itself, or when it is longer than
    :data:`OWNER_IN_SUBJECT` characters its start, ``~`` and 16 hex digits of its SHA-256 (the
    same every time, so a digest is still queued once per owner and day)."""
    if len(owner) <= OWNER_IN_SUBJECT:
        return owner
    digest = hashlib.sha256(owner.encode("utf-8")).hexdigest()[:16]
    return f"{owner[: OWNER_IN_SUBJECT - 17]}~{digest}"


def check_day(day: date) -> None:
    """ValueError (one line) unless ``day`` is from :data:`FIRST_DAY` to :data:`LAST_DAY`."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"day {day.isoformat()} is out of range: give a day from "
                         f"{FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}")  # fmt: skip


def queue_digests(
    store: Store, routing: RoutingFile, day: date, now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Digests:  # fmt: skip
    """Queue ``day``'s digest for every owner with new open alerts (once per owner and day);
    :func:`tenure.routing.deliver.send_due` with ``route="digest"`` sends them. ValueError:
    ``day`` out of range (:func:`check_day`)."""
    check_day(day)
    now = now or utcnow()
    done = Digests(day)
    route = routing.digest
    if route is None:
        done.sends_nothing = f"{routing.origin} has no digest section"
        return done
    problems = route_problems(routing, route, os.environ if environ is None else environ)
    if problems:
        done.sends_nothing = problems[0].why
        return done
    channel = routing.channels[route.channel]
    for owner, rows in owners_alerts(store, day, done).items():
        to, why = recipients(routing, route, channel, owner)
        if why:
            done.skipped[owner] = why
            continue
        made = enqueue(store, DIGEST, channel, subject(owner, day), payload(owner, day, rows, to), now)  # fmt: skip
        if made is None:
            done.already.append(owner)
        else:
            done.queued.append({"owner": owner, "delivery_id": made, "total": len(rows)})
    return done


def owners_alerts(store: Store, day: date, done: Digests) -> dict[str, list[dict[str, Any]]]:
    """Each owner's open alerts for ``day``'s digest (counting those on unowned accounts)."""
    previous = previous_digests(store, day)
    rows = open_alerts_until(store, day)
    people = accounts_of(store, {r["account_id"] for r in rows})
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        account = people.get(row["account_id"], {})
        owner = account.get("owner")
        if not owner:
            done.unowned += row["day"] == day
            continue
        since = previous.get(subject_owner(owner))
        if (row["day"] == day) if since is None else (row["raised_at"] > since):
            found.setdefault(owner, []).append(summary(row, account))
    return found


def previous_digests(store: Store, day: date) -> dict[str, datetime]:
    """When each owner's latest digest for a day before ``day`` was queued (by the owner as the
    subject names them: :func:`subject_owner`)."""
    query = select(deliveries.c.subject, deliveries.c.created_at).where(
        deliveries.c.route == DIGEST, deliveries.c.subject.startswith("digest:")
    )
    found: dict[str, tuple[str, datetime]] = {}
    with store.engine.connect() as connection:
        for subject_, created in connection.execute(query):
            owner, _, digest_day = subject_.removeprefix("digest:").rpartition(":")
            if digest_day < day.isoformat() and digest_day > found.get(owner, ("", created))[0]:
                found[owner] = (digest_day, created)
    return {owner: created for owner, (_, created) in found.items()}


def open_alerts_until(store: Store, day: date) -> list[dict[str, Any]]:
    """Open alerts of ``day`` and the :data:`LOOKBACK_DAYS` before, oldest first."""
    first = day - timedelta(days=LOOKBACK_DAYS)
    query = (select(alerts).where(alerts.c.status == "open", alerts.c.day <= day,
                                  alerts.c.day >= first)
             .order_by(alerts.c.day, alerts.c.alert_id))  # fmt: skip
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def summary(row: Mapping[str, Any], account: Mapping[str, Any]) -> dict[str, Any]:
    """One alert's line in a digest."""
    return {"alert_id": row["alert_id"], "trigger": row["trigger"],
            "account_id": row["account_id"], "account_name": account.get("name"),
            "segment": account.get("segment"), "day": row["day"].isoformat(),
            "severity": row["severity"], "values": row["values"],
            "playbook": row["playbook"]}  # fmt: skip


def payload(
    owner: str, day: date, rows: Iterable[Mapping[str, Any]], to: list[str]
) -> dict[str, Any]:
    """A digest's payload: counts and alerts by severity, most severe first."""
    listed = list(rows)
    by_severity = {s: [r for r in listed if r["severity"] == s] for s in MOST_SEVERE_FIRST}
    since = min(r["day"] for r in listed) if listed else day.isoformat()
    return {"type": "digest", "to": to, "owner": owner, "day": day.isoformat(), "since": since,
            "total": len(listed), "counts": {s: len(v) for s, v in by_severity.items()},
            "alerts": {s: v for s, v in by_severity.items() if v}}  # fmt: skip


def send_digests(
    store: Store, routing: RoutingFile, day: date | None = None, now: datetime | None = None,
    environ: Mapping[str, str] | None = None, *, clock: Clock | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What ``tenure digest`` does: queue ``day``'s digests (default: ``now``'s UTC day) and send
    the digests that are due. :meth:`Digests.to_dict` with ``sent`` (what
    :func:`tenure.routing.deliver.send_due` did on route ``digest``). ValueError: ``day`` out
    of range."""
    clock = clock_for(now, clock)
    day = day or clock().date()
    env = os.environ if environ is None else environ
    queued = queue_digests(store, routing, day, clock(), env)
    sent = send_due(store, routing, clock(), env, route=DIGEST, clock=clock)
    return queued.to_dict() | {"sent": sent.to_dict()}
