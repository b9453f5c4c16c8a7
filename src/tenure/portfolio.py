"""The portfolio at a glance: what the record holds, recurring revenue in force, and outcomes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from tenure.store import KIND_TABLES, Store

accounts = KIND_TABLES["accounts"]
subscriptions = KIND_TABLES["subscriptions"]
contacts = KIND_TABLES["contacts"]
events = KIND_TABLES["events"]
outcomes = KIND_TABLES["outcomes"]
responses = KIND_TABLES["responses"]
tickets = KIND_TABLES["tickets"]


@dataclass
class PortfolioSummary:
    """Headline figures of the whole portfolio as of one day."""

    as_of: date
    records: dict[str, int]
    accounts_by_segment: dict[str, int] = field(default_factory=dict)
    accounts_by_stage: dict[str, int] = field(default_factory=dict)
    active_subscriptions: int = 0
    mrr: float = 0.0
    arr: float = 0.0
    contacts_left: int = 0
    first_event: str | None = None
    last_event: str | None = None
    open_tickets: int = 0
    average_nps: float | None = None  # mean NPS answer, 0 to 10
    nps: float | None = None  # Net Promoter Score: % promoters (9-10) - % detractors (0-6)
    outcomes: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(store: Store, as_of: date | None = None) -> PortfolioSummary:
    """Summarise the portfolio in ``store`` as of ``as_of`` (default today)."""
    day = as_of or date.today()
    summary = PortfolioSummary(as_of=day, records=store.counts())
    with store.engine.connect() as connection:
        summary.accounts_by_segment = _group_count(connection, accounts.c.segment)
        summary.accounts_by_stage = _group_count(connection, accounts.c.lifecycle_stage)
        _revenue(connection, summary, day)
        _people_and_voice(connection, summary)
        summary.outcomes = _outcomes(connection)
    return summary


def _group_count(connection: Connection, column: Any) -> dict[str, int]:
    query = select(column, func.count()).group_by(column).order_by(func.count().desc())
    return {str(key or "(none)"): int(n) for key, n in connection.execute(query)}


def _revenue(connection: Connection, summary: PortfolioSummary, day: date) -> None:
    in_force = and_(
        subscriptions.c.start_date <= day,
        or_(subscriptions.c.end_date.is_(None), subscriptions.c.end_date > day),
        or_(subscriptions.c.is_trial.is_(None), subscriptions.c.is_trial.is_(False)),
    )
    query = select(
        func.count(),
        func.coalesce(func.sum(subscriptions.c.mrr), 0),
        func.coalesce(func.sum(subscriptions.c.arr), 0),
    ).where(in_force)
    count, mrr, arr = connection.execute(query).one()
    summary.active_subscriptions = int(count)
    summary.mrr, summary.arr = round(float(mrr), 2), round(float(arr), 2)


def _people_and_voice(connection: Connection, summary: PortfolioSummary) -> None:
    summary.contacts_left = int(
        connection.execute(select(func.count()).where(contacts.c.status == "left")).scalar_one()
    )
    first, last = connection.execute(
        select(func.min(events.c.timestamp), func.max(events.c.timestamp))
    ).one()
    summary.first_event = None if first is None else str(first)
    summary.last_event = None if last is None else str(last)
    summary.open_tickets = int(
        connection.execute(
            select(func.count()).where(tickets.c.status.in_(["new", "open", "pending", "on_hold"]))
        ).scalar_one()
    )
    score = responses.c.score
    mean, promoters, detractors, answers = connection.execute(
        select(
            func.avg(score),
            func.sum(case((score >= 9, 1), else_=0)),
            func.sum(case((score <= 6, 1), else_=0)),
            func.count(),
        ).where(responses.c.survey == "nps")
    ).one()
    if answers:
        summary.average_nps = round(float(mean), 2)
        summary.nps = round(100.0 * (int(promoters) - int(detractors)) / int(answers), 1)


def _outcomes(connection: Connection) -> dict[str, dict[str, float]]:
    query = select(
        outcomes.c.type,
        func.count(),
        func.coalesce(func.sum(outcomes.c.arr_change), 0),
        func.count(func.distinct(outcomes.c.account_id)),
        func.sum(case((outcomes.c.arr_change.is_(None), 1), else_=0)),
    ).group_by(outcomes.c.type)
    return {
        str(kind): {
            "count": int(n),
            "accounts": int(accounts_n),
            "arr_change": round(float(s), 2),
            "arr_change_unknown": int(unknown or 0),
        }
        for kind, n, s, accounts_n, unknown in connection.execute(query)
    }
