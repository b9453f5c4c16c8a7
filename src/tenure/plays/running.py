"""Running plays: start a playbook on an account, advance the running plays day by day.

Starting a play (by hand, or from an alert whose trigger names the playbook) stores the play with
its baseline (the account's signals and health on the start day, which impact measurement
matches on) and one task per step, due on the start day plus the step's offset, with its owner
(the role's, :class:`tenure.plays.playbooks.Roles`) and its target contact (the first active
contact with the step's persona). Steps not yet due wait as ``pending``. When a step comes due
(on the start day, or on the day :func:`advance` runs), its branch condition is read on that
day's signals (not holding: ``skipped``, with the reason), its title and content are rendered
afresh, and then a human step becomes an ``open`` task and an automated one is handed to
``send`` (``sent`` or ``queued``; any other answer leaves it ``open`` for a person, with the
answer as its note). An automated step more than :data:`OVERDUE_DAYS` late (a back-dated play,
missed days) is not sent: it is ``open`` for a person to decide. Each day :func:`advance` also
ends plays: ``exited`` when ``exit_when`` holds, ``succeeded`` when ``success_when`` holds, and at
``max_days`` ``failed`` (a success criterion never met) or ``completed``; a play without a success
criterion is ``completed`` as soon as every task is finished. Steps not yet due when a play ends
are ``cancelled``. :func:`run_day` is the daily run: plays started from the recent alerts
(:func:`start_from_alerts`), then :func:`advance`.

Plays run on the day, never ahead of it: a day more than :data:`AHEAD_DAYS` after today (UTC) is
refused (its steps would be carried out early), as is a day before 1970.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, String, cast, func, insert, literal, select, text, update

from tenure.configfile import suggest
from tenure.health.scoring import EPOCH
from tenure.health.scoring import today as utc_today
from tenure.plays.content import ContentError, render
from tenure.plays.facts import Signals, record, signals_on
from tenure.plays.playbooks import Playbook, PlaybookSet, Step, default_playbooks
from tenure.routing.routes import PLAYS
from tenure.store import Store
from tenure.store.tables import alerts, deliveries, plays, tasks
from tenure.triggers.definitions import vocabulary

if TYPE_CHECKING:
    from tenure.routing.routes import RoutingFile

PLAY_STATUSES = ("running", "succeeded", "exited", "completed", "failed")
TASK_STATUSES = ("pending", "open", "sending", "sent", "queued", "done", "skipped", "cancelled")
FINISHED = ("sent", "queued", "done", "skipped", "cancelled")  # nothing left to do
ALERTS_IN_PLAY = ("open", "acknowledged")  # an alert closed before its play started starts none
DELIVERED = ("sent", "queued")  # what ``send`` answers when it has carried a step out
NO_ROUTES = "not sent: no routes configured (TENURE_ROUTES)"
NO_IN_APP = "in-app message to deliver: no in-app channel is connected"
ALERT_LOOKBACK_DAYS = 7  # the daily run starts plays from alerts raised up to this many days ago
OVERDUE_DAYS = 3  # an automated step later than this is not sent: a person decides
AHEAD_DAYS = 1  # how far past today (UTC) a play may run: time zones ahead of UTC
LOCK_KEY = 74_201_002  # PostgreSQL advisory lock: starts take turns (one running play each)
Send = Callable[[dict[str, Any]], str]


class PlayError(ValueError):
    """A play that cannot start, or a task that cannot change; ``str()`` says why."""


def inbox_only(task: dict[str, Any]) -> str:
    """The ``send`` used when no routes are configured: nothing is sent, and the step stays open
    for a person (in ``tenure tasks``) with a note saying why: :data:`NO_IN_APP` for an in-app
    step (no in-app channel delivers it to the customer), :data:`NO_ROUTES` otherwise."""
    return NO_IN_APP if task["channel"] == "in_app" else NO_ROUTES


def routed(store: Store, routing: RoutingFile | None) -> Send:
    """The ``send`` for a routing file (TENURE_ROUTES): email and Slack steps go out on its
    channels (:func:`tenure.routing.deliver.send_step`, with retries); in-app steps stay open for
    a person (:data:`NO_IN_APP`); without a routing file, :func:`inbox_only`."""
    if routing is None:
        return inbox_only
    from tenure.routing.deliver import send_step

    def send(task: dict[str, Any]) -> str:
        if task["channel"] not in ("email", "slack"):
            return inbox_only(task)
        return send_step(store, routing, task)

    return send


def start(
    store: Store, playbook: str, account_id: str, day: date, started_by: str = "hand",
    alert_id: int | None = None, *, playbooks: PlaybookSet | None = None, send: Send = inbox_only,
    signals: Signals = signals_on,
) -> dict[str, Any]:  # fmt: skip
    """Start ``playbook`` on ``account_id`` as of ``day``: the play with its tasks (steps due on
    the start day carried out). PlayError: no such playbook or account, already running, or a
    day in the future (:func:`check_day`)."""
    check_day(day)
    found = playbooks or default_playbooks()
    book = found.get(playbook)
    if book is None:
        raise PlayError(
            f"no playbook {playbook!r}{suggest(playbook, [p.name for p in found.playbooks])}"
        )
    _refuse_running(store, account_id, book.name)
    facts = _facts(store, account_id, day)
    row = signals(store, [account_id], day, book.names()).get(account_id, {})
    return _start(store, found, book, day, account_id=account_id, facts=facts,
                  started_by=started_by, alert_id=alert_id, signals=row, send=send)  # fmt: skip


def start_from_alerts(
    store: Store, day: date, *, playbooks: PlaybookSet | None = None, send: Send = inbox_only,
    lookback: int = ALERT_LOOKBACK_DAYS, signals: Signals = signals_on,
) -> dict[str, Any]:  # fmt: skip
    """Start the playbooks named by the open (or acknowledged) alerts raised from ``lookback``
    days before ``day`` to ``day`` (by their trigger's ``playbook:`` or a playbook's
    ``start_when``): an alert raised on import, by a catch-up run or on a day the daily run missed
    still starts its plays. A play starts on ``day`` (its baseline keeps the alert's day). An
    alert already started, a playbook already running on the account, or one that ran on the
    account on or after the alert's day, is skipped with the reason, so running it again starts
    nothing."""
    check_day(day)
    found = playbooks or default_playbooks()
    since = day - timedelta(days=max(lookback, 0))
    with store.engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(
            select(alerts).where(alerts.c.day >= since, alerts.c.day <= day,
                                 alerts.c.status.in_(ALERTS_IN_PLAY))
            .order_by(alerts.c.alert_id))]  # fmt: skip
        wanted = [(a, name) for a in rows for name in found.for_alert(a["trigger"], a["playbook"])]
        known = _started(connection, [a["alert_id"] for a in rows])
        ran = _ran(connection, {a["account_id"] for a in rows}, since)
    started: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    fresh = [a["account_id"] for a, name in wanted if (a["alert_id"], name) not in known]
    rows_on = signals(store, fresh, day, found.names()) if fresh else {}
    for alert, name in wanted:
        said = {"alert_id": alert["alert_id"], "trigger": alert["trigger"],
                "account_id": alert["account_id"], "playbook": name}  # fmt: skip
        book = found.get(name)
        earlier = next((p for p in ran.get((alert["account_id"], name), [])
                        if p["ended_day"] >= alert["day"]), None)  # fmt: skip
        if (alert["alert_id"], name) in known:
            skipped.append(
                said | {"reason": f"already started (play {known[(alert['alert_id'], name)]})"}
            )
        elif book is None:
            skipped.append(said | {"reason": f"no playbook {name!r} in force"})
        elif earlier is not None:
            skipped.append(said | {"reason": f"{name} ran on {alert['account_id']} after the "
                                             f"alert (play {earlier['play_id']}, "
                                             f"{earlier['status']} on {earlier['ended_day']})"})  # fmt: skip
        else:
            try:
                _refuse_running(store, alert["account_id"], name)
                account = alert["account_id"]
                play = _start(store, found, book, day, account_id=account,
                              facts=_facts(store, account, day),
                              started_by=f"trigger:{alert['trigger']}", alert_id=alert["alert_id"],
                              signals=rows_on.get(account, {}), send=send)  # fmt: skip
            except PlayError as err:
                skipped.append(said | {"reason": str(err)})
            else:
                started.append(play)
    return {"day": day.isoformat(), "started": started, "skipped": skipped}


def advance(
    store: Store, day: date, *, playbooks: PlaybookSet | None = None, send: Send = inbox_only,
    signals: Signals = signals_on,
) -> dict[str, Any]:  # fmt: skip
    """Advance every running play to ``day``: reconcile the queued steps with their deliveries
    (:func:`reconcile`), end the plays whose exit or success criterion holds (read on ``day``'s
    signals, from the day after the start), carry out the steps due by ``day`` (an automated one
    more than :data:`OVERDUE_DAYS` late stays open for a person), and end those past
    ``max_days`` or with every task finished."""
    check_day(day)
    found = playbooks or default_playbooks()
    reconciled = reconcile(store)
    with store.engine.connect() as connection:
        running = [dict(r._mapping) for r in connection.execute(
            select(plays).where(plays.c.status == "running", plays.c.started_day <= day)
            .order_by(plays.c.play_id))]  # fmt: skip
    rows_on = signals(store, [p["account_id"] for p in running], day, found.names())
    report: dict[str, Any] = {"day": day.isoformat(), "ended": [], "tasks": [], "problems": [],
                              "reconciled": reconciled}  # fmt: skip
    for play in running:
        book = found.get(play["playbook"])
        if book is None:
            report["problems"].append(
                f"play {play['play_id']} on {play['account_id']}: no playbook "
                f"{play['playbook']!r} in force; left as it is"
            )
            continue
        row = rows_on.get(play["account_id"], {})
        ending = _criteria(book, play, row, day)
        if ending is None:
            report["tasks"] += _due(store, book, play, row, day, send)
            ending = _over(store, book, play, day)
        if ending is not None and _end(store, play["play_id"], *ending, day):
            report["ended"].append({"play_id": play["play_id"], "playbook": book.name,
                                    "account_id": play["account_id"], "status": ending[0],
                                    "outcome": ending[1]})  # fmt: skip
    return report


def run_day(
    store: Store, day: date, *, playbooks: PlaybookSet | None = None, send: Send = inbox_only,
    lookback: int = ALERT_LOOKBACK_DAYS, signals: Signals = signals_on,
) -> dict[str, Any]:  # fmt: skip
    """The daily run (``tenure plays advance``, or a scheduler): start the plays named by the
    recent alerts (:func:`start_from_alerts`), then :func:`advance` every running play to
    ``day``. The advance's report, with ``started`` (plays) and ``not_started`` (alerts, each with
    the reason)."""
    found = playbooks or default_playbooks()
    started = start_from_alerts(store, day, playbooks=found, send=send, lookback=lookback,
                                signals=signals)  # fmt: skip
    moved = advance(store, day, playbooks=found, send=send, signals=signals)
    return moved | {"started": started["started"], "not_started": started["skipped"]}


def reconcile(store: Store) -> list[dict[str, Any]]:
    """Queued steps whose delivery (``task:<task_id>`` on the ``plays`` route) has since ended:
    ``sent`` when it went out; reopened for a person when it died (``open``, note ``delivery
    failed: <its last error>``). What became of each."""
    subject = literal("task:") + cast(tasks.c.task_id, String)
    query = (select(tasks, deliveries.c.status.label("delivery"), deliveries.c.last_error)
             .join(deliveries, (deliveries.c.route == PLAYS) & (deliveries.c.subject == subject))
             .where(tasks.c.status == "queued", deliveries.c.status.in_(("sent", "dead")))
             .order_by(tasks.c.task_id))  # fmt: skip
    with store.engine.connect() as connection:
        found = [dict(r._mapping) for r in connection.execute(query)]
    moved = []
    for row in found:
        task = {k: v for k, v in row.items() if k not in ("delivery", "last_error")}
        if row["delivery"] == "sent":
            changed = _move(store, task, "sent", None)
        else:
            why = row["last_error"] or "no error recorded"
            changed = _move(store, task, "open", f"delivery failed: {why}", {"done_at": None})
        if changed is not None:
            moved.append(changed | {"play_id": task["play_id"], "account_id": task["account_id"],
                                    "step": task["step"], "channel": task["channel"]})  # fmt: skip
    return moved


def check_day(day: date, today: date | None = None) -> None:
    """PlayError for a day plays cannot run on: more than :data:`AHEAD_DAYS` after ``today``
    (default: today, UTC), whose steps would be carried out ahead of their day, or before
    1970-01-01 (the signals' first day)."""
    now = today or utc_today()
    if day > now + timedelta(days=AHEAD_DAYS):
        raise PlayError(f"{day} is in the future (today is {now}): plays run on the day, not "
                        "ahead of it")  # fmt: skip
    if day < EPOCH:
        raise PlayError(f"{day} is out of range: plays run from {EPOCH} on")


# Starting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Draft:
    """A step made concrete for one account: what its task row will hold."""

    step: Step
    due_day: date
    owner: str | None
    contact_id: str | None
    title: str
    content: str
    note: str | None


def _facts(store: Store, account_id: str, day: date) -> dict[str, Any]:
    facts = record(store, account_id, day)
    if facts["account"] is None:
        raise PlayError(f"no account {account_id!r}")
    return facts


def _start(
    store: Store, found: PlaybookSet, book: Playbook, day: date, *, account_id: str,
    facts: dict[str, Any], started_by: str, alert_id: int | None, signals: dict[str, Any],
    send: Send,
) -> dict[str, Any]:  # fmt: skip
    why = _why(store, alert_id)
    drafts = [_draft(found, book, step, facts, signals, why, day) for step in book.steps]
    baseline = {"day": day.isoformat(), "alert_day": why["day"] if why else None,
                "health_score": signals.get("health_score"),
                "health_band": signals.get("health_band"), "signals": signals}  # fmt: skip
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.transaction() as connection:
        _serialise(connection)
        _refuse_running(store, account_id, book.name, connection)
        play_id = connection.execute(insert(plays).values(
            playbook=book.name, playbooks_digest=book.digest, account_id=account_id,
            started_day=day, started_by=started_by[:200], alert_id=alert_id, status="running",
            baseline=baseline, started_at=now,
        )).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
        connection.execute(insert(tasks), [
            {"play_id": play_id, "account_id": account_id, "step": d.step.name,
             "title": d.title[:500], "channel": d.step.channel, "owner_role": d.step.owner_role,
             "owner": d.owner, "persona": d.step.persona, "contact_id": d.contact_id,
             "due_day": d.due_day, "automated": d.step.automated, "content": d.content,
             "status": "pending", "note": d.note}
            for d in drafts
        ])  # fmt: skip
    play = {"play_id": int(play_id), "playbook": book.name}
    _due(store, book, play, signals, day, send, facts, why)
    return play_with_tasks(store, int(play_id))


def _refuse_running(
    store: Store, account_id: str, playbook: str, connection: Connection | None = None
) -> None:
    query = (select(plays.c.play_id, plays.c.started_day)
             .where(plays.c.account_id == account_id, plays.c.playbook == playbook,
                    plays.c.status == "running"))  # fmt: skip
    if connection is None:
        with store.engine.connect() as reader:
            row = reader.execute(query).first()
    else:
        row = connection.execute(query).first()
    if row is not None:
        raise PlayError(f"{playbook} is already running on {account_id} (play {row.play_id}, "
                        f"started {row.started_day})")  # fmt: skip


def _serialise(connection: Connection) -> None:
    """Starts take turns, so two cannot both find no running play (SQLite's writers queue)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def _started(connection: Connection, alert_ids: Sequence[int]) -> dict[tuple[int, str], int]:
    """(alert, playbook) -> play, for the plays already started from these alerts."""
    if not alert_ids:
        return {}
    query = select(plays.c.alert_id, plays.c.playbook, plays.c.play_id).where(
        plays.c.alert_id.in_(alert_ids)
    )
    return {(r.alert_id, r.playbook): r.play_id for r in connection.execute(query)}


def _ran(
    connection: Connection, accounts: set[str], since: date
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(account, playbook) -> the plays on these accounts that ended on or after ``since``."""
    if not accounts:
        return {}
    query = (select(plays.c.play_id, plays.c.account_id, plays.c.playbook, plays.c.status,
                    plays.c.ended_day)
             .where(plays.c.account_id.in_(sorted(accounts)), plays.c.ended_day >= since)
             .order_by(plays.c.play_id))  # fmt: skip
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in connection.execute(query):
        found.setdefault((row.account_id, row.playbook), []).append(dict(row._mapping))
    return found


def _why(store: Store, alert_id: int | None, strict: bool = True) -> dict[str, Any] | None:
    """What started the play: the alert's trigger, condition and values (None: by hand, or an
    alert no longer stored when not ``strict``)."""
    if alert_id is None:
        return None
    with store.engine.connect() as connection:
        row = connection.execute(select(alerts).where(alerts.c.alert_id == alert_id)).first()
    if row is None:
        if not strict:
            return None
        raise PlayError(f"no alert {alert_id}")
    return {"alert_id": row.alert_id, "trigger": row.trigger, "when": row.condition,
            "values": row.values, "day": row.day.isoformat(), "severity": row.severity}  # fmt: skip


def _draft(
    found: PlaybookSet, book: Playbook, step: Step, facts: dict[str, Any],
    signals: Mapping[str, Any], why: dict[str, Any] | None, day: date,
) -> _Draft:  # fmt: skip
    due = day + timedelta(days=step.day)
    owner = found.roles.owner(step.owner_role, facts["account"])
    contact = _contact(facts, step)
    context = content_context(book, step, facts, signals, why, due, owner)
    try:
        title, body, note = render(step.title, context), render(step.content, context), None
    except ContentError as err:
        title, body, note = step.name, "", _unrendered(step, err)
    return _Draft(step, due, owner, contact["contact_id"] if contact else None, title, body, note)


def _unrendered(step: Step, err: ContentError) -> str:
    return f"step {step.name!r} could not be rendered: {err}"


def _contact(facts: Mapping[str, Any], step: Step) -> dict[str, Any] | None:
    """The step's target: the first active contact with its persona."""
    if step.persona is None:
        return None
    people: list[dict[str, Any]] = facts["contacts"].get(step.persona) or []
    return people[0] if people else None


def content_context(
    book: Playbook, step: Step, facts: Mapping[str, Any], signals: Mapping[str, Any],
    why: dict[str, Any] | None, due: date, owner: str | None,
) -> dict[str, Any]:  # fmt: skip
    """What a step's title and content templates read (docs/playbooks.md lists it)."""
    return {
        "account": facts["account"], "contact": _contact(facts, step),
        "contacts": facts["contacts"], "renewal": facts["renewal"],
        "open_tickets": facts["open_tickets"], "touchpoints": facts["touchpoints"],
        "health": {"score": signals.get("health_score"), "band": signals.get("health_band")},
        "signals": {n: signals.get(n) for n in vocabulary()}, "why": why,
        "step": {"name": step.name, "day": step.day, "channel": step.channel,
                 "owner_role": step.owner_role, "owner": owner, "persona": step.persona,
                 "due_day": due.isoformat()},
        "playbook": {"name": book.name, "kind": book.kind, "version": book.version,
                     "description": book.description},
        "day": due.isoformat(),
    }  # fmt: skip


# Advancing ----------------------------------------------------------------------------------


def _criteria(
    book: Playbook, play: Mapping[str, Any], row: Mapping[str, Any], day: date
) -> tuple[str, str] | None:
    """Exited or succeeded on ``day`` (read from the day after the start)."""
    if day <= play["started_day"]:
        return None
    if book.exit_when is not None and book.exit_when.row(row):
        return "exited", f"exit_when held: {book.exit_when.text}"
    if book.success_when is not None and book.success_when.row(row):
        return "succeeded", f"success_when held: {book.success_when.text}"
    return None


def _over(
    store: Store, book: Playbook, play: Mapping[str, Any], day: date
) -> tuple[str, str] | None:
    """Past ``max_days`` (failed if a success criterion was never met), or every task finished
    in a play without a success criterion (completed)."""
    started: date = play["started_day"]
    if day >= started + timedelta(days=book.max_days):
        if book.success_when is not None:
            return "failed", f"success_when not met within {book.max_days} days"
        return "completed", f"max_days ({book.max_days}) reached"
    if book.success_when is not None:
        return None
    with store.engine.connect() as connection:
        left = connection.execute(
            select(func.count()).select_from(tasks)
            .where(tasks.c.play_id == play["play_id"], tasks.c.status.notin_(FINISHED))
        ).scalar_one()  # fmt: skip
    return ("completed", "every step done, sent or skipped") if left == 0 else None


def _end(store: Store, play_id: int, status: str, outcome: str, day: date) -> bool:
    with store.transaction() as connection:
        done = connection.execute(
            update(plays).where(plays.c.play_id == play_id, plays.c.status == "running")
            .values(status=status, outcome=outcome, ended_day=day)
        ).rowcount  # fmt: skip
        if done:
            connection.execute(
                update(tasks).where(tasks.c.play_id == play_id, tasks.c.status == "pending")
                .values(status="cancelled", note=f"cancelled: the play {status} on {day}")
            )  # fmt: skip
    return bool(done)


def _due(
    store: Store, book: Playbook, play: Mapping[str, Any], signals: Mapping[str, Any], day: date,
    send: Send, facts: dict[str, Any] | None = None, why: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Carry out the play's pending steps due by ``day``; what became of each."""
    with store.engine.connect() as connection:
        due = [dict(r._mapping) for r in connection.execute(
            select(tasks).where(tasks.c.play_id == play["play_id"], tasks.c.status == "pending",
                                tasks.c.due_day <= day)
            .order_by(tasks.c.due_day, tasks.c.task_id))]  # fmt: skip
    if not due:
        return []
    if facts is None:
        facts = record(store, due[0]["account_id"], day)
        why = _why(store, play.get("alert_id"), strict=False)
    done = []
    for task in due:
        step = book.step(task["step"])
        changed = _carry_out(store, book, step, task, (facts, signals, why), day, send)
        if changed is not None:
            done.append(changed | {"play_id": play["play_id"], "playbook": book.name,
                                   "account_id": task["account_id"], "step": task["step"],
                                   "channel": task["channel"]})  # fmt: skip
    return done


def _carry_out(
    store: Store, book: Playbook, step: Step | None, task: dict[str, Any],
    read: tuple[dict[str, Any], Mapping[str, Any], dict[str, Any] | None], day: date, send: Send,
) -> dict[str, Any] | None:  # fmt: skip
    """One due step: skipped by its branch, opened for a person, or handed to ``send``."""
    facts, signals, why = read
    if step is not None and step.when is not None and not step.when.row(signals):
        return _move(store, task, "skipped", f"skipped: {step.when.text} did not hold on {day}")
    values: dict[str, Any] = {}
    note = None
    # rendered afresh on the day (a step gone from the playbook keeps the text it was given)
    if step is not None:
        contact = _contact(facts, step)
        values["contact_id"] = contact["contact_id"] if contact else None
        context = content_context(book, step, facts, signals, why, task["due_day"], task["owner"])
        try:
            values |= {"title": render(step.title, context)[:500],
                       "content": render(step.content, context)}  # fmt: skip
        except ContentError as err:
            note = _unrendered(step, err)
    if not task["automated"] or note:
        return _move(store, task, "open", note, values)
    late = (day - task["due_day"]).days
    if late > OVERDUE_DAYS:
        return _move(store, task, "open", f"overdue by {late} days: not sent automatically",
                     values)  # fmt: skip
    persona, contact_id = task["persona"], values.get("contact_id", task["contact_id"])
    if persona and not contact_id:
        return _move(store, task, "open", f"not sent: no active {persona} contact", values)
    if _move(store, task, "sending", None, values) is None:
        return None  # another run took it
    payload = task | values | {"playbook": book.name, "due_day": task["due_day"].isoformat()}
    try:
        answer = send({k: payload[k] for k in _PAYLOAD})
    except Exception as err:  # a send that breaks must not stop the other plays
        answer = f"not sent: {type(err).__name__}: {err}"
    status = answer if answer in DELIVERED else "open"
    said = {"sent": None, "queued": f"queued: delivery task:{task['task_id']} (being retried)"}
    return _move(store, task | {"status": "sending"}, status, said.get(status, answer))


_PAYLOAD = ("task_id", "play_id", "playbook", "account_id", "step", "channel", "title", "content",
            "owner_role", "owner", "persona", "contact_id", "due_day")  # fmt: skip


def _move(
    store: Store, task: Mapping[str, Any], status: str, note: str | None,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:  # fmt: skip
    """Move a task on from the status it was read with (None: another run moved it first)."""
    changes = {**(values or {}), "status": status, "note": note}
    if status in FINISHED:
        changes["done_at"] = datetime.now(UTC).replace(tzinfo=None)
    with store.transaction() as connection:
        moved = connection.execute(
            update(tasks).where(tasks.c.task_id == task["task_id"],
                                tasks.c.status == task["status"]).values(**changes)
        ).rowcount  # fmt: skip
    if not moved:
        return None
    return {"task_id": task["task_id"], "status": status, "note": note}


def play_with_tasks(store: Store, play_id: int) -> dict[str, Any]:
    """One play with its tasks, each with the playbook's name as :func:`tenure.plays.tasks.
    list_tasks` gives it (KeyError when there is no such play)."""
    with store.engine.connect() as connection:
        row = connection.execute(select(plays).where(plays.c.play_id == play_id)).first()
        if row is None:
            raise KeyError(f"no play {play_id}")
        found = [dict(r._mapping) for r in connection.execute(
            select(tasks).where(tasks.c.play_id == play_id)
            .order_by(tasks.c.due_day, tasks.c.task_id))]  # fmt: skip
    return dict(row._mapping) | {"tasks": [t | {"playbook": row.playbook} for t in found]}
