"""The daily job: what a scheduler runs once a day (``tenure daily``, e.g. from cron).

In order, as of a day:

1. score every account (the day's row of the daily health history, which live trigger
   evaluation reads for the band a week before);
2. evaluate the triggers in force on every customer, catching up on the days since the last
   evaluation (up to :data:`CATCH_UP_DAYS`), so a missed night loses no episode;
3. start the playbooks named by recent alerts and advance every running play
   (:func:`tenure.plays.running.run_day`; automated steps go out through the routes);
4. route the new alerts, queue each owner's digest, and send what is due
   (:func:`tenure.routing.deliver.dispatch`), when a routing file is in force.

Imports keep scores and alerts current between runs; this job does what only a calendar can.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from tenure.settings import Settings
from tenure.store import Store
from tenure.store.tables import trigger_state

CATCH_UP_DAYS = 31  # the most days one run evaluates when the schedule missed some


def run_daily(store: Store, settings: Settings, day: date) -> dict[str, Any]:
    """Run the daily job as of ``day`` with the files in force in ``settings``; what each part
    did, as JSON values. Config errors (a trigger, playbook or routing file) raise before
    anything is written."""
    from tenure.health.scoring import active_model, score_portfolio
    from tenure.plays.playbooks import playbooks_in_force
    from tenure.plays.running import routed, run_day
    from tenure.routing.deliver import dispatch
    from tenure.routing.routes import routes_in_force
    from tenure.triggers.live import run, triggers_in_force

    triggers = triggers_in_force(settings.triggers)
    playbooks = playbooks_in_force(settings.playbooks)
    routing = routes_in_force(settings.routes)
    scores = score_portfolio(store, active_model(store), day, 1)
    since = catch_up_from(store, day)
    alerts = run(store, triggers, day, since)
    plays = run_day(store, day, playbooks=playbooks, send=routed(store, routing))
    sent = None if routing is None else dispatch(store, routing, day, triggers=triggers)
    return {
        "day": day.isoformat(),
        "scores": scores.to_dict(),
        "triggers": {"from": since.isoformat(), "alerts": [a.to_dict() for a in alerts]},
        "plays": _plain(plays),
        "routing": sent,
    }


def catch_up_from(store: Store, day: date) -> date:
    """The first day to evaluate: the day after the latest one evaluated, at most
    :data:`CATCH_UP_DAYS` back; ``day`` itself on a first run or when already evaluated."""
    with store.engine.connect() as connection:
        latest = connection.execute(select(func.max(trigger_state.c.last_day))).scalar()
    if latest is None:
        return day
    latest = latest if isinstance(latest, date) else date.fromisoformat(str(latest)[:10])
    first = latest + timedelta(days=1)
    return min(max(first, day - timedelta(days=CATCH_UP_DAYS - 1)), day)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.isoformat() if isinstance(value, date) else value
