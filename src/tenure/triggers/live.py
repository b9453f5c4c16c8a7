"""Triggers in force: evaluated on every import (the incremental engine's signals) and daily.

Each evaluation reads the accounts' signals as of a day, adds the fields triggers read
(attributes, calendar, health, churn probability), steps each trigger's episode per account
(kept in the store, so a trigger fires once per episode however often it is evaluated), and
stores the alerts raised with the values that raised them. Replay (:mod:`tenure.triggers.replay`)
walks the same episodes over history without storing anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, delete, insert, select, text

from tenure.churn.snapshots import as_date
from tenure.health.score import is_customer
from tenure.health.scoring import (
    AS_OF,
    LiveScores,
    RegisteredModel,
    active_model,
    day_number,
    from_day_number,
    signal_rows,
)
from tenure.store import Store
from tenure.store.tables import alerts, health_scores, trigger_state
from tenure.triggers.definitions import Trigger, TriggerSet, default_triggers, load_triggers
from tenure.triggers.episodes import Episode
from tenure.triggers.replay import (
    BAND_BEFORE,
    BAND_RANK,
    Alert,
    add_fields,
    daily_values,
    plain,
)

LOCK_KEY = 74_201_001  # PostgreSQL advisory lock: one trigger evaluation at a time
HISTORY_DAYS = 7  # health_band_change_7d compares with the band this many days before


def triggers_in_force(path: str) -> TriggerSet:
    """The trigger file named by the TENURE_TRIGGERS setting, or the shipped defaults."""
    return load_triggers(Path(path)) if path else default_triggers()


def evaluate(
    store: Store, triggers: TriggerSet, frame: pd.DataFrame, step_from: int | None = None,
    registered: RegisteredModel | None = None,
) -> list[Alert]:  # fmt: skip
    """Step every trigger on ``frame`` (one row per account and day; rows before ``step_from``
    only give history, such as the health band 7 days before); store the episodes and the
    alerts raised; the alerts."""
    if frame.empty:
        return []
    add_fields(store, frame, registered or active_model(store), triggers)
    if step_from is not None:
        frame = frame[frame["day"] >= step_from]
    frame = frame.sort_values(["account_id", "day"])
    accounts = sorted(frame["account_id"].unique())
    with store.transaction() as connection:
        _serialise(connection)
        states = _states(connection, accounts)
        records = frame.to_dict("records")
        raised = [a for t in triggers.triggers
                  for a in _step(t, frame, records, states, triggers)]  # fmt: skip
        _save(connection, states, raised, triggers)
    return raised


def _serialise(connection: Connection) -> None:
    """One evaluation at a time: an import and the daily run must not step the same episode
    twice. SQLite's writers already queue (BEGIN IMMEDIATE); PostgreSQL takes a lock held to the
    end of the transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def _step(
    trigger: Trigger, frame: pd.DataFrame, records: list[dict[str, Any]],
    states: dict[tuple[str, str], Episode], triggers: TriggerSet,
) -> list[Alert]:  # fmt: skip
    if any(n not in frame for n in trigger.condition.names):
        return []  # reads a field this store cannot give (no churn model): nothing to step
    raised = []
    held = trigger.condition.frame(frame)
    for row, holds in zip(records, held, strict=True):
        account, day = str(row["account_id"]), from_day_number(int(row["day"]))
        episode = states.setdefault((account, trigger.name), Episode())
        muted = triggers.suppressed(account, row.get("segment"), day)
        if episode.step(int(row["day"]), bool(holds), trigger.for_days, trigger.cooldown_days,
                        muted, gaps_clear=False):  # fmt: skip
            values = {n: plain(row.get(n)) for n in trigger.condition.names}
            raised.append(Alert(trigger.name, account, day, trigger.severity, trigger.direction,
                                trigger.playbook, values))  # fmt: skip
    return raised


def _states(connection: Connection, accounts: Sequence[str]) -> dict[tuple[str, str], Episode]:
    found = {}
    query = select(trigger_state).where(trigger_state.c.account_id.in_(accounts))
    for row in connection.execute(query):
        found[(row.account_id, row.trigger)] = Episode(
            _number(row.held_since), bool(row.armed), _number(row.last_fired),
            _number(row.last_day),
        )  # fmt: skip
    return found


def _number(day: date | None) -> int | None:
    return None if day is None else day_number(day)


def _day(number: int | None) -> date | None:
    return None if number is None else from_day_number(number)


def _save(
    connection: Connection, states: dict[tuple[str, str], Episode], raised: list[Alert],
    triggers: TriggerSet,
) -> None:  # fmt: skip
    accounts = sorted({a for a, _ in states})
    connection.execute(delete(trigger_state).where(trigger_state.c.account_id.in_(accounts)))
    rows = [
        {"account_id": a, "trigger": t, "held_since": _day(e.held_since), "armed": e.armed,
         "last_fired": _day(e.last_fired), "last_day": _day(e.last_day)}
        for (a, t), e in states.items()
    ]  # fmt: skip
    if rows:
        connection.execute(insert(trigger_state), rows)
    now = datetime.now(UTC).replace(tzinfo=None)
    conditions = {t.name: t.condition.text for t in triggers.triggers}
    if raised:
        connection.execute(insert(alerts), [
            {"trigger": a.trigger, "account_id": a.account_id, "day": a.day,
             "severity": a.severity, "direction": a.direction, "playbook": a.playbook,
             "condition": conditions[a.trigger], "values": a.values, "status": "open",
             "raised_at": now, "triggers_digest": triggers.digest}
            for a in raised
        ])  # fmt: skip


def run(store: Store, triggers: TriggerSet, day: date, since: date | None = None) -> list[Alert]:
    """The daily evaluation (run it on a schedule): every customer as of ``day``; with ``since``,
    every day from ``since`` to ``day`` in order (catching up on days a schedule missed)."""
    start = min(since or day, day)
    first = start - timedelta(days=HISTORY_DAYS if _needs_history(triggers) else 0)
    frame = daily_values(store, active_model(store), first, day, None)
    return evaluate(store, triggers, frame, step_from=day_number(start))


def _needs_history(triggers: TriggerSet) -> bool:
    return "health_band_change_7d" in triggers.names()


def after_import(
    store: Store, triggers: TriggerSet, scores: LiveScores, accounts: Iterable[str]
) -> list[Alert]:
    """After an import has updated ``accounts``' live scores: their triggers, on the signals the
    incremental engine just computed."""
    touched = set(accounts)
    rows = [
        {"account_id": account, "day": day, **signals}
        for account, (day, signals) in scores.latest.items()
        if account in touched
    ]
    customers = [r for r in rows if is_customer(r)]
    if not customers:
        return []
    first = min(int(r["day"]) for r in customers)
    if _needs_history(triggers):
        customers = _with_band_before(store, scores, customers)
    return evaluate(store, triggers, pd.DataFrame(customers), first, scores.registered)


def _with_band_before(
    store: Store, scores: LiveScores, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The band 7 days before each row, for health_band_drop: from the daily health history of
    the model in force where it holds that day, else from the batch engine's signals then."""
    wanted = {(r["account_id"], from_day_number(int(r["day"]) - HISTORY_DAYS)) for r in rows}
    query = select(health_scores.c.account_id, health_scores.c.day, health_scores.c.band).where(
        health_scores.c.model_id == scores.registered.model_id,
        health_scores.c.account_id.in_(sorted({a for a, _ in wanted})),
        health_scores.c.day.in_(sorted({d for _, d in wanted})),
    )
    with store.engine.connect() as connection:
        recorded = {(a, as_date(d)): b for a, d, b in connection.execute(query)}
    for row in rows:
        band = recorded.get((row["account_id"], from_day_number(int(row["day"]) - HISTORY_DAYS)))
        row[BAND_BEFORE] = BAND_RANK.get(band or "", math.nan)
    missing = [(a, d) for a, d in wanted if (a, d) not in recorded]
    if not missing:
        return rows
    earlier = signal_rows(store, scores.catalog, sorted({day_number(d) for _, d in missing}),
                          sorted({a for a, _ in missing}))  # fmt: skip
    return [{"day": r.pop(AS_OF)} | r for r in earlier] + rows


def open_alerts(
    store: Store, status: str | None = "open", limit: int = 100
) -> list[dict[str, Any]]:
    """The inbox: alerts newest first (``status`` None: every status)."""
    query = select(alerts).order_by(alerts.c.day.desc(), alerts.c.alert_id.desc()).limit(limit)
    if status is not None:
        query = query.where(alerts.c.status == status)
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


STATUSES = ("open", "acknowledged", "closed")  # an alert's life in the inbox


def set_status(store: Store, alert_id: int, status: str) -> dict[str, Any]:
    """Move an alert on in the inbox (acknowledged: someone has it; closed: dealt with); the
    alert as it is now. KeyError: no such alert; ValueError: not a status, or already closed."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    with store.transaction() as connection:
        row = connection.execute(select(alerts).where(alerts.c.alert_id == alert_id)).first()
        if row is None:
            raise KeyError(f"no alert {alert_id}")
        if row.status == "closed" and status != "closed":
            raise ValueError(f"alert {alert_id} is closed")
        connection.execute(
            alerts.update().where(alerts.c.alert_id == alert_id).values(status=status)
        )
    return dict(row._mapping) | {"status": status}


def alert_with_context(store: Store, alert_id: int, triggers: TriggerSet) -> dict[str, Any]:
    """One alert with its context assembled as of its day; KeyError when there is no such alert."""
    from tenure.triggers.context import assemble

    with store.engine.connect() as connection:
        row = connection.execute(select(alerts).where(alerts.c.alert_id == alert_id)).first()
    if row is None:
        raise KeyError(f"no alert {alert_id}")
    found = dict(row._mapping)
    alert = Alert(found["trigger"], found["account_id"], found["day"], found["severity"],
                  found["direction"], found["playbook"], found["values"])  # fmt: skip
    trigger = next((t for t in triggers.triggers
                    if t.name == alert.trigger and t.condition.text == found["condition"]), None)  # fmt: skip
    context = assemble(store, alert, trigger, active_model(store))
    context["why"]["when"] = found["condition"]  # as it was when the alert was raised
    return found | {"context": context}
