"""Data quality: inconsistencies the account record can see in itself, per kind, with examples.

Each check is a small function over SQL that returns a :class:`Finding` or None. ``tenure check`` runs
them all; nothing is changed, the report only says what looks wrong and where.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, func, literal, or_, select
from sqlalchemy.orm import aliased

from tenure.record import KINDS
from tenure.store import Store
from tenure.store.sql import day_before, day_of
from tenure.store.tables import KIND_TABLES, imports, rejections

accounts = KIND_TABLES["accounts"]
subscriptions = KIND_TABLES["subscriptions"]
events = KIND_TABLES["events"]
outcomes = KIND_TABLES["outcomes"]
tickets = KIND_TABLES["tickets"]
FAR_FUTURE = date(9999, 12, 31)
EXAMPLES = 3


@dataclass(frozen=True)
class Finding:
    """One kind of inconsistency: how many records show it, what it means, and a few examples."""

    kind: str
    code: str
    count: int
    message: str
    examples: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckContext:
    connection: Connection
    today: date

    def count_and_examples(self, query: Select[Any]) -> tuple[int, list[str]]:
        """Count the rows of ``query`` (whose first column is an id) and keep a few ids."""
        sub = query.subquery()
        count = int(self.connection.execute(select(func.count()).select_from(sub)).scalar_one())
        first = sub.c[next(iter(sub.c.keys()))]
        rows = self.connection.execute(select(first).order_by(first).limit(EXAMPLES)).scalars()
        return count, [str(r) for r in rows]

    def finding(self, kind: str, code: str, query: Select[Any], message: str) -> Finding | None:
        count, examples = self.count_and_examples(query)
        if not count:
            return None
        return Finding(kind, code, count, message.format(count=count), examples)


Check = Callable[[CheckContext], "Finding | list[Finding] | None"]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn


@check
def events_before_subscription(ctx: CheckContext) -> Finding | None:
    query = (
        select(events.c.event_id)
        .join(subscriptions, subscriptions.c.subscription_id == events.c.subscription_id)
        .where(day_of(events.c.timestamp) < subscriptions.c.start_date)
    )
    return ctx.finding(
        "events",
        "events_before_subscription",
        query,
        "{count:,} usage events happen before their subscription starts",
    )


@check
def events_after_subscription(ctx: CheckContext) -> Finding | None:
    query = (
        select(events.c.event_id)
        .join(subscriptions, subscriptions.c.subscription_id == events.c.subscription_id)
        .where(day_of(events.c.timestamp) > subscriptions.c.end_date)
    )
    return ctx.finding(
        "events",
        "events_after_subscription",
        query,
        "{count:,} usage events happen after their subscription ended",
    )


def _before_signup(kind: str, table: Any, instant: Any, noun: str) -> Check:
    def run(ctx: CheckContext) -> Finding | None:
        key = table.c[KINDS[kind].key]
        query = (  # a whole day's grace: signup dates are local, times are UTC
            select(key)
            .join(accounts, accounts.c.account_id == table.c.account_id)
            .where(day_of(instant) < day_before(accounts.c.created_at))
        )
        return ctx.finding(
            kind,
            f"{kind}_before_signup",
            query,
            "{count:,} " + noun + " are dated more than a day before their account signed up",
        )

    run.__name__ = f"{kind}_before_signup"
    return run


check(_before_signup("events", events, events.c.timestamp, "usage events"))
check(_before_signup("tickets", tickets, tickets.c.opened_at, "tickets"))
check(_before_signup("outcomes", outcomes, outcomes.c.date, "outcomes"))


@check
def overlapping_subscriptions(ctx: CheckContext) -> Finding | None:
    a, b = aliased(subscriptions), aliased(subscriptions)
    query = (
        select(a.c.account_id)
        .join(
            b,
            and_(
                a.c.account_id == b.c.account_id,
                a.c.subscription_id < b.c.subscription_id,
                a.c.start_date < func.coalesce(b.c.end_date, literal(FAR_FUTURE)),
                b.c.start_date < func.coalesce(a.c.end_date, literal(FAR_FUTURE)),
            ),
        )
        .distinct()
    )
    found = ctx.finding(
        "subscriptions",
        "overlapping_subscriptions",
        query,
        "{count:,} accounts have subscriptions whose dates overlap",
    )
    return found


def _churned_outcomes() -> Any:
    return select(outcomes.c.account_id).where(outcomes.c.type == "churned")


@check
def churned_without_outcome(ctx: CheckContext) -> Finding | None:
    query = select(accounts.c.account_id).where(
        accounts.c.lifecycle_stage == "churned", accounts.c.account_id.not_in(_churned_outcomes())
    )
    return ctx.finding(
        "accounts",
        "churned_without_outcome",
        query,
        "{count:,} accounts are marked churned but have no churned outcome",
    )


@check
def churn_outcome_not_flagged(ctx: CheckContext) -> Finding | None:
    query = select(accounts.c.account_id).where(
        or_(accounts.c.lifecycle_stage.is_(None), accounts.c.lifecycle_stage != "churned"),
        accounts.c.account_id.in_(_churned_outcomes()),
    )
    return ctx.finding(
        "outcomes",
        "churn_outcome_not_flagged",
        query,
        "{count:,} accounts have a churned outcome but are not marked churned",
    )


@check
def churned_with_open_subscription(ctx: CheckContext) -> Finding | None:
    open_subs = select(subscriptions.c.account_id).where(
        subscriptions.c.end_date.is_(None),
        or_(
            subscriptions.c.status.is_(None),
            subscriptions.c.status.not_in(["cancelled", "expired"]),
        ),
    )
    query = select(accounts.c.account_id).where(
        accounts.c.lifecycle_stage == "churned", accounts.c.account_id.in_(open_subs)
    )
    return ctx.finding(
        "accounts",
        "churned_with_open_subscription",
        query,
        "{count:,} accounts marked churned still have an open subscription",
    )


@check
def subscription_status_contradictions(ctx: CheckContext) -> list[Finding]:
    found = [
        ctx.finding(
            "subscriptions",
            "cancelled_without_end_date",
            select(subscriptions.c.subscription_id).where(
                subscriptions.c.status == "cancelled", subscriptions.c.end_date.is_(None)
            ),
            "{count:,} subscriptions are cancelled but have no end date",
        ),
        ctx.finding(
            "subscriptions",
            "ended_but_active",
            select(subscriptions.c.subscription_id).where(
                subscriptions.c.status == "active", subscriptions.c.end_date < ctx.today
            ),
            "{count:,} subscriptions say active but ended in the past",
        ),
        ctx.finding(
            "subscriptions",
            "paying_trial",
            select(subscriptions.c.subscription_id).where(
                subscriptions.c.is_trial.is_(True), subscriptions.c.mrr > 0
            ),
            "{count:,} subscriptions are trials yet carry MRR",
        ),
    ]
    return [f for f in found if f is not None]


@check
def zero_amount_invoices(ctx: CheckContext) -> Finding | None:
    invoices = KIND_TABLES["invoices"]
    query = select(invoices.c.invoice_id).where(invoices.c.amount == 0)
    return ctx.finding(
        "invoices", "zero_amount_invoices", query, "{count:,} invoices are for an amount of 0"
    )


# What must not lie in the future: what happened, not what is planned (a milestone's plan may).
OBSERVED_FIELD = {"milestones": "achieved_date"}


@check
def future_dates(ctx: CheckContext) -> list[Finding]:
    found = []
    for kind in KINDS.values():
        table = KIND_TABLES[kind.name]
        field = OBSERVED_FIELD.get(kind.name, kind.time_field)
        column = table.c[field]
        limit: date | datetime = ctx.today
        if kind.field(field).type.storage == "timestamp":
            limit = datetime(ctx.today.year, ctx.today.month, ctx.today.day, 23, 59, 59)
        query = select(table.c[kind.key]).where(column > limit)
        found.append(
            ctx.finding(
                kind.name,
                "future_dates",
                query,
                "{count:,} records are dated after today (" + field + ")",
            )
        )
    return [f for f in found if f is not None]


@check
def orphans(ctx: CheckContext) -> list[Finding]:
    found = []
    for kind in KINDS.values():
        table = KIND_TABLES[kind.name]
        for name, target in kind.references.items():
            if name == "account_id" and kind.name != "accounts":
                continue  # checked on import: an unknown account is refused there
            parent = KIND_TABLES[target]
            key = parent.c[KINDS[target].key]
            query = select(table.c[kind.key]).where(
                table.c[name].is_not(None), table.c[name].not_in(select(key))
            )
            found.append(
                ctx.finding(
                    kind.name,
                    f"orphan_{name}",
                    query,
                    "{count:,} records name a " + name + " that does not exist",
                )
            )
    return [f for f in found if f is not None]


@check
def accounts_without_subscription(ctx: CheckContext) -> Finding | None:
    query = select(accounts.c.account_id).where(
        accounts.c.account_id.not_in(select(subscriptions.c.account_id))
    )
    if not ctx.connection.execute(select(func.count()).select_from(subscriptions)).scalar_one():
        return None
    return ctx.finding(
        "accounts",
        "accounts_without_subscription",
        query,
        "{count:,} accounts have no subscription",
    )


@check
def duplicate_keys(ctx: CheckContext) -> list[Finding]:
    query = (
        select(imports.c.kind, func.count(), func.min(rejections.c.reason))
        .join(imports, imports.c.import_id == rejections.c.import_id)
        .where(or_(rejections.c.reason.like("%with different values%")))
        .group_by(imports.c.kind)
    )
    return [
        Finding(
            kind,
            "duplicate_keys",
            int(count),
            f"{int(count):,} rows reused an id already taken by a different record "
            "(rejected on import; see the import report)",
            _quoted(str(example)),
        )
        for kind, count, example in ctx.connection.execute(query)
    ]


def _quoted(reason: str) -> list[str]:
    """The first quoted value in a rejection reason (the id it names)."""
    found = re.search(r"'([^']*)'", reason)
    return [found[1] if found else reason]


def run_checks(
    store: Store, today: date | None = None, progress: Callable[[int, int], None] | None = None
) -> list[Finding]:
    """Every finding, in a stable order (by kind, then code); ``progress(done, total)`` per check."""
    found: list[Finding] = []
    with store.engine.connect() as connection:
        ctx = CheckContext(connection, today or date.today())
        for done, fn in enumerate(CHECKS, start=1):
            result = fn(ctx)
            if isinstance(result, Finding):
                found.append(result)
            elif result:
                found.extend(result)
            if progress:
                progress(done, len(CHECKS))
    return sorted(found, key=lambda f: (list(KINDS).index(f.kind), f.code))
