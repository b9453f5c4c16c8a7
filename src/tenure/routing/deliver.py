"""Deliveries: alerts routed to channels, sent, retried with backoff, and kept when they die.

Each (route, subject) is one row of the ``deliveries`` table, inserted once (its unique index):
``alert:<id>`` for an alert, ``digest:<owner>:<day>`` for a digest, ``task:<id>`` for a play step.
A row is ``pending`` until sent (``sent``) or until its last attempt failed (``dead``: the
dead-letter list, each with its last error; :func:`retry` puts one back). After a failed attempt
the next waits ``backoff_seconds * 2 ** (attempts - 1)``; the channel's ``max_attempts`` ends it.

A route with a problem (:func:`tenure.routing.routes.check_routes`) sends nothing: it queues
nothing, and what it had queued waits (``held``) until it is fixed, without spending attempts.

A sender *claims* a delivery before sending it: the row's ``next_attempt_at`` becomes the claim's
time plus :data:`LEASE`, so another sender running at once leaves it alone, and only the claimer
(the row still holding that lease) records the outcome. The times of claims, outcomes and backoff
are read from a *clock* when each happens (:func:`clock_for`), not once per run: a run slowed
down by a dead server does not hand out leases that have already run out.

:func:`dispatch` is one routing run (new alerts, the day's digests, everything due): the
commands and a scheduler share it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tenure.routing.channels import Accepted, send
from tenure.routing.routes import (
    OWNER,
    PLAYS,
    Channel,
    Route,
    RoutingFile,
    check_routes,
    play_problems,
    route_problems,
)
from tenure.store import KIND_TABLES, Store
from tenure.store.tables import alerts as alerts_table
from tenure.store.tables import deliveries
from tenure.triggers.definitions import TriggerSet, default_triggers

NEW_FOR = timedelta(days=2)  # an open alert this recent is routed (once per route)
LEASE = timedelta(minutes=10)  # a delivery being sent is not picked up again for this long
TARGET = 500  # the target column's width
SUBJECT = 200  # the subject column's width
ERROR = 1000  # at most this much of an unexpected exception's text is kept as the error

Clock = Callable[[], datetime]  # now, as naive UTC


def utcnow() -> datetime:
    """Now, as the store keeps times: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def clock_for(now: datetime | None = None, clock: Clock | None = None) -> Clock:
    """The clock a run reads each time it claims a delivery, records an outcome or computes a
    backoff: ``clock`` when given; else, when ``now`` is given (tests, replays), a clock stopped
    at ``now``; else the real one (:func:`utcnow`)."""
    if clock is not None:
        return clock
    if now is not None:
        stopped = now
        return lambda: stopped
    return utcnow


@dataclass
class Routed:
    """What :func:`route_alerts` did."""

    queued: list[int] = field(default_factory=list)  # new delivery ids
    already: int = 0  # (route, alert) pairs queued before
    sends_nothing: dict[str, str] = field(default_factory=dict)  # route: why
    skipped: list[str] = field(default_factory=list)  # one alert on one route, and why

    def to_dict(self) -> dict[str, Any]:
        return {"queued": len(self.queued), "delivery_ids": self.queued,
                "already": self.already, "sends_nothing": self.sends_nothing,
                "skipped": self.skipped}  # fmt: skip


@dataclass
class Sent:
    """What :func:`send_due` did: sent, failed (of which now dead), and what waits."""

    sent: int = 0
    failed: int = 0
    dead: int = 0
    queued: int = 0  # pending after this run (retrying, or not yet due)
    held: dict[str, str] = field(default_factory=dict)  # route: why its deliveries wait
    errors: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)  # sent, with a note (refused)

    def to_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "failed": self.failed, "dead": self.dead,
                "queued": self.queued, "held": self.held, "errors": self.errors,
                "notes": self.notes}  # fmt: skip


# Routing alerts ------------------------------------------------------------------------------


def new_alerts(store: Store, since: datetime) -> list[dict[str, Any]]:
    """Open alerts raised at or after ``since``, oldest first."""
    t = alerts_table
    query = select(t).where(t.c.status == "open", t.c.raised_at >= since).order_by(t.c.alert_id)
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def route_alerts(
    store: Store, routing: RoutingFile, alerts: Iterable[Mapping[str, Any]] | None = None,
    *, triggers: TriggerSet | None = None, now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Routed:  # fmt: skip
    """Queue a delivery per matching route for each alert (rows of the ``alerts`` table; default:
    the open alerts raised in the last two days), once per (route, alert). The payload carries the
    alert with its context as of its day (``triggers``: the file in force, for the trigger's
    description). Routes with a problem queue nothing and are reported."""
    now = now or utcnow()
    env = os.environ if environ is None else environ
    rows = list(alerts) if alerts is not None else new_alerts(store, now - NEW_FOR)
    done = Routed()
    live = []
    for route in routing.routes:
        problems = route_problems(routing, route, env)
        if problems:
            done.sends_nothing[route.name] = problems[0].why
        else:
            live.append(route)
    if not rows or not live:
        return done
    facts = alert_facts(store, rows)
    contexts = _Contexts(store, triggers or default_triggers())
    for route in live:
        _route_one(store, routing, route, [f for f in facts if route.matches(f)], contexts, now,
                   done)  # fmt: skip
    return done


def alert_facts(store: Store, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What routes match on, per alert: severity, direction, trigger, and the account's id,
    segment and owner (as the record holds them now)."""
    found = [{"alert_id": r["alert_id"], "severity": r["severity"], "direction": r["direction"],
              "trigger": r["trigger"], "account": r["account_id"]} for r in rows]  # fmt: skip
    people = accounts_of(store, {f["account"] for f in found})
    for f in found:
        account = people.get(f["account"], {})
        f["segment"], f["owner"] = account.get("segment"), account.get("owner")
    return found


def accounts_of(store: Store, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Name, segment and owner of each account in ``ids``."""
    t = KIND_TABLES["accounts"]
    wanted = sorted(set(ids))
    query = select(t.c.account_id, t.c.name, t.c.segment, t.c.owner).where(
        t.c.account_id.in_(wanted)
    )
    with store.engine.connect() as connection:
        return {r.account_id: dict(r._mapping) for r in connection.execute(query)}


class _Contexts:
    """Each alert's context, assembled once however many routes it goes to."""

    def __init__(self, store: Store, triggers: TriggerSet) -> None:
        self.store, self.triggers = store, triggers
        self.found: dict[int, dict[str, Any]] = {}

    def alert(self, alert_id: int) -> dict[str, Any]:
        from tenure.triggers.live import alert_with_context

        if alert_id not in self.found:
            self.found[alert_id] = plain(alert_with_context(self.store, alert_id, self.triggers))
        return self.found[alert_id]


def _route_one(
    store: Store, routing: RoutingFile, route: Route, facts: list[dict[str, Any]],
    contexts: _Contexts, now: datetime, done: Routed,
) -> None:  # fmt: skip
    channel = routing.channels[route.channel]
    subjects = {f"alert:{f['alert_id']}": f for f in facts}
    known = existing(store, route.name, subjects)
    done.already += len(known)
    for subject, fact in subjects.items():
        if subject in known:
            continue
        to, why = recipients(routing, route, channel, fact.get("owner"))
        if why:
            done.skipped.append(f"route {route.name}: alert {fact['alert_id']}: {why}")
            continue
        payload = {"type": "alert", "to": to, "alert": contexts.alert(fact["alert_id"])}
        made = enqueue(store, route.name, channel, subject, payload, now)
        if made is not None:
            done.queued.append(made)


def recipients(
    routing: RoutingFile, route: Route, channel: Channel, owner: str | None
) -> tuple[list[str], str | None]:
    """Whom a route addresses for an account with ``owner``: ``owner`` becomes the owner's email
    address (email, webhook) or Slack member id (slack); (recipients, None), or ([], why not)."""
    found = []
    for item in route.to:
        if item != OWNER:
            found.append(item)
            continue
        person = routing.owners.get(owner) if owner else None
        address = None if person is None else (person.slack if channel.type == "slack"
                                               else person.email)  # fmt: skip
        if address:
            found.append(address)
        elif channel.type == "email":
            return [], (f"owner {owner!r} has no email address under owners" if owner
                        else "the account has no owner")  # fmt: skip
    return found, None


def existing(store: Store, route: str, subjects: Iterable[str]) -> set[str]:
    """Which of ``subjects`` already have a delivery on ``route``."""
    wanted = sorted(set(subjects))
    found: set[str] = set()
    with store.engine.connect() as connection:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            query = select(deliveries.c.subject).where(deliveries.c.route == route,
                                                       deliveries.c.subject.in_(chunk))  # fmt: skip
            found |= set(connection.execute(query).scalars())
    return found


def enqueue(
    store: Store, route: str, channel: Channel, subject: str, payload: Mapping[str, Any],
    now: datetime,
) -> int | None:  # fmt: skip
    """Insert a pending delivery, due now, unless (route, subject) has one; its id, or None.
    ValueError: a route or subject longer than its column (:data:`SUBJECT` characters)."""
    if len(route) > SUBJECT or len(subject) > SUBJECT:
        raise ValueError(f"route {route[:50]!r} or subject {subject[:50]!r} is over {SUBJECT} "
                         "characters")  # fmt: skip
    target = ", ".join(payload.get("to") or []) or channel.name
    row = {"route": route, "channel": channel.type, "subject": subject,
           "target": target[:TARGET], "payload": plain(payload), "status": "pending",
           "attempts": 0, "created_at": now, "next_attempt_at": now}  # fmt: skip
    with store.transaction() as connection:
        statement = _insert_once(connection).values(row).returning(deliveries.c.delivery_id)
        made = connection.execute(statement).scalar_one_or_none()
    return None if made is None else int(made)


def _insert_once(connection: Connection) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on the (route, subject) index, in either dialect."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(deliveries).on_conflict_do_nothing()
    if connection.dialect.name == "sqlite":
        return sqlite.insert(deliveries).on_conflict_do_nothing()
    raise NotImplementedError(f"deliveries on {connection.dialect.name}")


def plain(value: Any) -> Any:
    """``value`` as JSON values: dates and times in ISO format."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


# Sending -------------------------------------------------------------------------------------


def send_due(
    store: Store, routing: RoutingFile, now: datetime | None = None,
    environ: Mapping[str, str] | None = None, route: str | None = None, limit: int = 1000,
    *, clock: Clock | None = None,
) -> Sent:  # fmt: skip
    """Send the pending deliveries due at ``now`` (default: when the run starts; only
    ``route``'s, when given), oldest first; a failure is retried later with backoff, or dead
    after the channel's last attempt. Each claim and outcome reads ``clock`` (:func:`clock_for`:
    the real time, or stopped at ``now`` when ``now`` is given and ``clock`` is not)."""
    clock = clock_for(now, clock)
    now = now or clock()
    env = os.environ if environ is None else environ
    checks = check_routes(routing, env)
    done = Sent()
    for row in due(store, now, route, limit):
        channel, why = _channel(routing, checks, row, env)
        if channel is None:
            done.held[row["route"]] = why or "?"
            continue
        _tally(done, row, attempt(store, channel, row, clock, env))
    done.queued = _pending(store)
    return done


def due(store: Store, now: datetime, route: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:  # fmt: skip
    """Pending deliveries whose next attempt is due at ``now``."""
    query = (select(deliveries)
             .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
             .order_by(deliveries.c.next_attempt_at, deliveries.c.delivery_id).limit(limit))  # fmt: skip
    if route is not None:
        query = query.where(deliveries.c.route == route)
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def _channel(
    routing: RoutingFile, checks: Mapping[str, list[Any]], row: Mapping[str, Any],
    environ: Mapping[str, str],
) -> tuple[Channel | None, str | None]:  # fmt: skip
    """The channel a delivery goes out on now, or why its route sends nothing."""
    name = row["route"]
    if name == PLAYS:
        channel = routing.play_channel(row["channel"])
        problems = play_problems(routing, environ, row["channel"])
    else:
        found = routing.route(name)
        if found is None:
            return None, f"route {name!r} is not in {routing.origin}"
        channel, problems = routing.channels.get(found.channel), checks.get(name) or []
    if problems:
        return None, problems[0].why
    if channel is None or channel.type != row["channel"]:
        return None, f"no {row['channel']} channel for route {name!r} in {routing.origin}"
    return channel, None


@dataclass(frozen=True)
class Attempt:
    """One attempt's outcome: ``sent``, ``pending`` (retried later) or ``dead``; ``note``: what
    to know about a delivery that was sent (recipients an SMTP server refused)."""

    status: str
    attempts: int
    error: str | None = None
    note: str | None = None


def attempt(
    store: Store, channel: Channel, row: Mapping[str, Any], clock: Clock,
    environ: Mapping[str, str],
) -> Attempt | None:  # fmt: skip
    """Claim a due delivery at ``clock()``, send it and record the outcome (None: another sender
    holds it: it had claimed it, or claimed it after this sender's lease ran out, and records
    the outcome itself). Whatever the send raises is a failed attempt, retried with backoff
    (from when the attempt ended) or dead after the channel's last."""
    lease = _claim(store, row["delivery_id"], clock())
    if lease is None:
        return None
    try:
        result = send(channel, row, environ)
    except Exception as err:  # one bad delivery must not stop the others, nor stay claimed
        result = f"cannot send: {err.__class__.__name__}: {err}"[:ERROR]
    ended = clock()
    attempts = int(row["attempts"]) + 1
    error = result if isinstance(result, str) else None
    note = result.note if isinstance(result, Accepted) else None
    values: dict[str, Any]
    if error is None:
        values = {"status": "sent", "sent_at": ended, "next_attempt_at": None, "last_error": note}
    elif attempts >= channel.max_attempts:
        values = {"status": "dead", "next_attempt_at": None, "last_error": error}
    else:
        wait = channel.backoff_seconds * 2 ** (attempts - 1)
        values = {"status": "pending", "next_attempt_at": ended + timedelta(seconds=wait),
                  "last_error": error}  # fmt: skip
    with store.transaction() as connection:
        finished = connection.execute(
            update(deliveries)
            .where(deliveries.c.delivery_id == row["delivery_id"],
                   deliveries.c.status == "pending", deliveries.c.next_attempt_at == lease)
            .values(attempts=attempts, **values)
        )  # fmt: skip
    if not finished.rowcount:  # the lease ran out and another sender holds the row now
        return None
    return Attempt(str(values["status"]), attempts, error, note)


def _claim(store: Store, delivery_id: int, at: datetime) -> datetime | None:
    """Take a delivery due at ``at`` for this sender: its next attempt is pushed back to ``at``
    plus the lease, so two senders running at once do not both send it. The lease (the claim's
    token: only the row still holding it may be finished), or None when it is not due."""
    lease = at + LEASE
    with store.transaction() as connection:
        result = connection.execute(
            update(deliveries)
            .where(deliveries.c.delivery_id == delivery_id, deliveries.c.status == "pending",
                   deliveries.c.next_attempt_at <= at)
            .values(next_attempt_at=lease)
        )  # fmt: skip
    return lease if result.rowcount else None


def _tally(done: Sent, row: Mapping[str, Any], outcome: Attempt | None) -> None:
    if outcome is None:
        return
    if outcome.status == "sent":
        done.sent += 1
        if outcome.note:
            done.notes.append({"delivery_id": row["delivery_id"], "route": row["route"],
                               "subject": row["subject"], "note": outcome.note})  # fmt: skip
        return
    done.failed += 1
    done.dead += outcome.status == "dead"
    done.errors.append({"delivery_id": row["delivery_id"], "route": row["route"],
                        "subject": row["subject"], "status": outcome.status,
                        "attempts": outcome.attempts, "error": outcome.error})  # fmt: skip


def _pending(store: Store) -> int:
    query = select(func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
    with store.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


# Dead letters --------------------------------------------------------------------------------


def dead_letters(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """Deliveries whose last attempt failed, newest first, each with its last error."""
    query = (select(deliveries.c.delivery_id, deliveries.c.route, deliveries.c.channel,
                    deliveries.c.subject, deliveries.c.target, deliveries.c.attempts,
                    deliveries.c.last_error, deliveries.c.created_at)
             .where(deliveries.c.status == "dead")
             .order_by(deliveries.c.delivery_id.desc()).limit(limit))  # fmt: skip
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def retry(store: Store, delivery_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Put a dead delivery back in the queue, due now, with its attempts reset (its last error
    stays until the next attempt); the row. KeyError: no such delivery; ValueError: not dead."""
    now = now or utcnow()
    with store.transaction() as connection:
        row = connection.execute(
            select(deliveries).where(deliveries.c.delivery_id == delivery_id)
        ).first()
        if row is None:
            raise KeyError(f"no delivery {delivery_id}")
        if row.status != "dead":
            raise ValueError(f"delivery {delivery_id} is {row.status}, not dead")
        connection.execute(update(deliveries).where(deliveries.c.delivery_id == delivery_id)
                           .values(status="pending", attempts=0, next_attempt_at=now))  # fmt: skip
    return dict(row._mapping) | {"status": "pending", "attempts": 0, "next_attempt_at": now}


# Play steps ----------------------------------------------------------------------------------


def send_step(
    store: Store, routing: RoutingFile | None, task: Mapping[str, Any],
    now: datetime | None = None, environ: Mapping[str, str] | None = None,
) -> str:  # fmt: skip
    """Send an automated play step now: ``task`` has task_id, account_id, channel (``email`` or
    ``slack``), title, content, owner, and contact_id or persona (whom an email goes to). Queued
    once as ``task:<task_id>`` on route ``plays`` and sent on the routing file's ``plays`` channel
    of that type (else its first channel of that type). ``"sent"``; ``"queued"`` (it failed and
    will be retried by :func:`send_due`); otherwise why it cannot be sent. ``now``: as in
    :func:`send_due` (given, it stops the clock)."""
    clock = clock_for(now)
    now = clock()
    env = os.environ if environ is None else environ
    kind = task.get("channel")
    if routing is None:
        return "no routing file (TENURE_ROUTES is empty): nothing is sent"
    if kind not in ("email", "slack"):
        return f"a step is sent by email or slack, not {kind!r}"
    channel = routing.play_channel(str(kind))
    problems = play_problems(routing, env, str(kind))
    if channel is None or problems:
        return problems[0].why if problems else f"no {kind} channel in {routing.origin}"
    to, why = _step_recipients(store, routing, channel, task)
    if why:
        return why
    subject = f"task:{task['task_id']}"
    account = accounts_of(store, [str(task["account_id"])]).get(str(task["account_id"]), {})
    payload = {"type": "task", "to": to, "task": dict(task), "account": account}
    enqueue(store, PLAYS, channel, subject, payload, now)
    return _send_now(store, channel, subject, clock, env)


def _step_recipients(
    store: Store, routing: RoutingFile, channel: Channel, task: Mapping[str, Any]
) -> tuple[list[str], str | None]:
    """Email: the step's contact (or the account's first active contact with its persona);
    Slack: the owner's member id (a mention), when the owners list gives one."""
    if channel.type == "slack":
        person = routing.owners.get(str(task.get("owner") or ""))
        return ([person.slack] if person and person.slack else []), None
    address = contact_email(store, str(task["account_id"]), task.get("contact_id"),
                            task.get("persona"))  # fmt: skip
    if address is None:
        who = (f"contact {task['contact_id']!r}" if task.get("contact_id")
               else f"an active {task.get('persona') or 'contact'}")  # fmt: skip
        return [], f"no email address for {who} on account {task['account_id']!r}"
    return [address], None


def contact_email(
    store: Store, account: str, contact_id: object = None, persona: object = None
) -> str | None:
    """The email of ``contact_id``, else of the account's first active contact with ``persona``."""
    t = KIND_TABLES["contacts"]
    query = select(t.c.email).where(t.c.account_id == account, t.c.email.is_not(None))
    if contact_id:
        query = query.where(t.c.contact_id == str(contact_id))
    elif persona:
        query = query.where(t.c.persona == str(persona), func.coalesce(t.c.status, "") != "left")
    else:
        return None
    with store.engine.connect() as connection:
        found = connection.execute(query.order_by(t.c.name, t.c.contact_id).limit(1)).scalar()
    return None if found is None else str(found)


def _send_now(
    store: Store, channel: Channel, subject: str, clock: Clock, environ: Mapping[str, str]
) -> str:
    """Send one delivery if it is due; ``sent``, ``queued`` or why it is not sent."""
    with store.engine.connect() as connection:
        row = connection.execute(select(deliveries).where(
            deliveries.c.route == PLAYS, deliveries.c.subject == subject)).first()  # fmt: skip
    assert row is not None
    found = dict(row._mapping)
    if found["status"] == "sent":
        return "sent"
    if found["status"] == "dead":
        return f"dead after {found['attempts']} attempts: {found['last_error']}"
    if found["next_attempt_at"] is not None and found["next_attempt_at"] > clock():
        return "queued"
    outcome = attempt(store, channel, found, clock, environ)
    if outcome is None or outcome.status == "pending":
        return "queued"
    if outcome.status == "dead":
        return f"dead after {outcome.attempts} attempts: {outcome.error}"
    return "sent"


# One routing run ------------------------------------------------------------------------------


def dispatch(
    store: Store, routing: RoutingFile, day: date | None = None, now: datetime | None = None,
    environ: Mapping[str, str] | None = None, *, triggers: TriggerSet | None = None,
    digests: bool = True, clock: Clock | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One routing run, in order: route the new open alerts (:func:`route_alerts`: those raised
    in the two days before ``now``), queue ``day``'s digests (:func:`tenure.routing.digest.
    queue_digests`; ``day`` defaults to ``now``'s UTC day; ``digests=False``: none, as in
    ``tenure alerts send``), then send every delivery that is due (:func:`send_due`). ``now`` and
    ``clock`` as in :func:`send_due` (default: the real time). What was done, as JSON values:
    ``file``, ``day``, ``routed`` (:meth:`Routed.to_dict`), ``digests``
    (:meth:`~tenure.routing.digest.Digests.to_dict`, or None) and ``sent``
    (:meth:`Sent.to_dict`). ValueError: ``day`` out of range (before anything is done)."""
    from tenure.routing.digest import check_day, queue_digests

    clock = clock_for(now, clock)
    day = day or clock().date()
    check_day(day)
    env = os.environ if environ is None else environ
    routed = route_alerts(store, routing, triggers=triggers, now=clock(), environ=env)
    queued = queue_digests(store, routing, day, clock(), env) if digests else None
    sent = send_due(store, routing, clock(), env, clock=clock)
    return {"file": routing.origin, "day": day.isoformat(), "routed": routed.to_dict(),
            "digests": None if queued is None else queued.to_dict(), "sent": sent.to_dict()}  # fmt: skip
