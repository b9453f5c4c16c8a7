"""The Signal Stack: every signal Tenure computes, declared once.

Groups follow the seed documents' Signal Stack (Activity, Engagement, Milestones, Recency) plus
Support, Voice and Commercial. Each signal is an expression over the prepared sources below; both
engines are derived from these declarations. ``docs/signals.md`` is generated from this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from tenure.signals.declare import (
    Always,
    AsOf,
    Attribute,
    Coalesce,
    Const,
    During,
    Expr,
    KnownIf,
    Ref,
    Signal,
    Source,
    Window,
    at_most,
    distinct,
    highest,
    latest,
    lowest,
    nothing,
    total,
    where,
)

# Column recipes (see tenure.signals.sources): field:F the stored value; day:F the day number of a
# date or timestamp; micros:F a timestamp in microseconds; x100:F / x10000:F the value times 100 /
# 10,000 rounded to an integer (so sums are exact); first:A,B the first non-empty of two fields;
# resolved_day:F the day a ticket stopped being open; sentiment:A,B the VADER compound score of
# the text fields, times 10,000.
ACCOUNTS = Source(
    "accounts", "accounts", "account_id", "created_day",
    (("created_day", "day:created_at"), ("segment", "field:segment"),
     ("lifecycle_stage", "field:lifecycle_stage"), ("owner", "field:owner")),
    append_only=False, description="The account itself: when it started, segment, stage, owner.",
)  # fmt: skip
USAGE = Source(
    "usage", "events", "event_id", "day",
    (("day", "day:timestamp"), ("user", "first:user_id,user_email"),
     ("feature", "first:feature,event"), ("count", "field:count")),
    append_only=True, description="Product usage events.", keyed=False,
)  # fmt: skip
TICKETS = Source(
    "tickets", "tickets", "ticket_id", "opened_day",
    (("opened_day", "day:opened_at"), ("resolved_day", "resolved_day:resolved_at"),
     ("priority", "field:priority"), ("csat", "x100:csat"),
     ("sentiment", "sentiment:subject,body")),
    append_only=False, description="Support tickets (a ticket closed without a resolution time "
    "counts as resolved the day it was opened).",
)  # fmt: skip
SURVEYS = Source(
    "surveys", "responses", "response_id", "day",
    (("day", "day:responded_at"), ("at", "micros:responded_at"), ("survey", "field:survey"),
     ("score", "x100:score"), ("sentiment", "sentiment:comment")),
    append_only=True, description="NPS and CSAT survey responses.",
)  # fmt: skip
TOUCHPOINTS = Source(
    "touchpoints", "touchpoints", "touchpoint_id", "day",
    (("day", "day:occurred_at"), ("type", "field:type")),
    append_only=True, description="Conversations: emails, calls, meetings, business reviews.",
)  # fmt: skip
TOUCH_PEOPLE = Source(
    "touch_people", "touchpoints", "touchpoint_id", "day",
    (("day", "day:occurred_at"), ("person", "field:contact_ids")),
    append_only=True, explode="person",
    description="One row per contact who took part in a touchpoint.",
)  # fmt: skip
MILESTONES = Source(
    "milestones", "milestones", "milestone_id", "planned_day",
    (("planned_day", "day:planned_date"), ("achieved_day", "day:achieved_date"),
     ("category", "field:category")),
    append_only=False, description="Onboarding, adoption and value milestones.",
)  # fmt: skip
SUBSCRIPTIONS = Source(
    "subscriptions", "subscriptions", "subscription_id", "start_day",
    (("start_day", "day:start_date"), ("end_day", "day:end_date"),
     ("renews_day", "first_day:renewal_date,end_date"), ("seats", "field:seats"),
     ("mrr", "x100:mrr"), ("is_trial", "field:is_trial")),
    append_only=False, description="Subscriptions: seats and MRR in force, renewal dates.",
)  # fmt: skip
PAYMENTS = Source(
    "payments", "payments", "payment_id", "day",
    (("day", "day:attempted_at"), ("status", "field:status")),
    append_only=True, description="Payment attempts.",
)  # fmt: skip

CONTACTS = Source(
    "contacts", "contacts", "contact_id", "left_day",
    (("left_day", "day:left_at"), ("persona", "field:persona")),
    append_only=False, description="People at the account: persona, and the day they left.",
)  # fmt: skip

SOURCES: tuple[Source, ...] = (
    ACCOUNTS, USAGE, TICKETS, SURVEYS, TOUCHPOINTS, TOUCH_PEOPLE, MILESTONES, SUBSCRIPTIONS,
    PAYMENTS, CONTACTS,
)  # fmt: skip

OPEN = During("opened_day", ("resolved_day",))
IN_FORCE = During("start_day", ("end_day",))
PAID = where("is_trial", "==", False)
NPS = where("survey", "==", "nps")


def _events(days: int, skip: int = 0) -> Expr:
    return total(USAGE, Window(days, skip), "count")


def _per_day(value: Expr, days: int) -> Expr:
    return value / days


def _users(days: int) -> Expr:
    """Distinct users in ``days`` days; unknown (null) when the account's usage of the last 90
    days names no user at all (a usage export without users is not a product nobody uses)."""
    # the latest day of usage naming a user, and of any usage (one value each in running state)
    named = Coalesce((highest(USAGE, Window(90), "day", where("user", "not null")), Const(0)))
    used = Coalesce((highest(USAGE, Window(90), "day"), Const(0)))
    silent = at_most(used, 0)  # no usage at all: 0 users is the truth
    return KnownIf(distinct(USAGE, Window(days), "user"), named + silent)


def _activity() -> Iterator[Signal]:
    yield Signal("active_users_7d", "activity",
                 "Distinct users active in the last 7 days (missing when usage names no user).",
                 "users", _users(7), True)  # fmt: skip
    yield Signal("active_users_30d", "activity",
                 "Distinct users active in the last 30 days (missing when usage names no user).",
                 "users", _users(30), True)  # fmt: skip
    yield Signal(
        "active_users_per_seat", "activity",
        "Users active in the last 7 days per paid seat in force.",
        "ratio", Ref("active_users_7d") / Ref("seats"), True,
    )  # fmt: skip
    yield Signal("events_30d", "activity", "Usage events in the last 30 days.", "events",
                 _events(30), True)  # fmt: skip
    yield Signal(
        "events_per_active_user", "activity",
        "Usage events in the last 30 days per user active in them.",
        "ratio", Ref("events_30d") / Ref("active_users_30d"), True,
    )  # fmt: skip
    yield Signal(
        "usage_trend_14d", "activity",
        "Daily events in the last 14 days against the account's own daily rate in the 90 days "
        "before them, minus 1 (-0.38 is a 38% drop).",
        "ratio", _per_day(_events(14), 14) / _per_day(_events(90, 14), 90) - 1, True,
    )  # fmt: skip


def _engagement(key_features: Sequence[str]) -> Iterator[Signal]:
    depth: Expr = nothing()
    if key_features:
        in_key = where("feature", "in", tuple(key_features))
        depth = total(USAGE, Window(30), "count", in_key) / Ref("events_30d")
    yield Signal("feature_breadth", "engagement", "Distinct features used in the last 30 days.",
                 "features", distinct(USAGE, Window(30), "feature"), True)  # fmt: skip
    yield Signal(
        "key_feature_depth", "engagement",
        "Share of the last 30 days' events that were in the key features (the health model's "
        "key_features; missing when none are named).",
        "share", depth, True,
    )  # fmt: skip
    yield Signal("seat_utilisation", "engagement",
                 "Users active in the last 30 days per paid seat in force.",
                 "ratio", Ref("active_users_30d") / Ref("seats"), True)  # fmt: skip
    yield Signal("touchpoints_30d", "engagement", "Touchpoints in the last 30 days.",
                 "touchpoints", total(TOUCHPOINTS, Window(30)), True)  # fmt: skip
    yield Signal("touchpoints_90d", "engagement", "Touchpoints in the last 90 days.",
                 "touchpoints", total(TOUCHPOINTS, Window(90)), True)  # fmt: skip
    yield Signal("people_engaged_90d", "engagement",
                 "Distinct contacts who took part in a touchpoint in the last 90 days.",
                 "people", distinct(TOUCH_PEOPLE, Window(90), "person"), True)  # fmt: skip


def _milestones() -> Iterator[Signal]:
    onboarding = where("category", "==", "onboarding")
    achieved = total(MILESTONES, Window(None, on="achieved_day"), None, onboarding)
    planned = total(MILESTONES, Always(), None, onboarding)
    overdue = During("planned_day", ("achieved_day",))
    first_value = lowest(
        MILESTONES, Window(None, on="achieved_day"), "achieved_day",
        where("category", "==", "value"),
    )  # fmt: skip
    yield Signal("onboarding_progress", "milestones",
                 "Share of the onboarding milestones achieved so far.",
                 "share", achieved / planned, True)  # fmt: skip
    yield Signal(
        "days_behind_plan", "milestones",
        "Days since the planned date of the oldest milestone not yet achieved (0 when on plan).",
        "days", Coalesce((AsOf() - lowest(MILESTONES, overdue, "planned_day"), _zero())), False,
    )  # fmt: skip
    yield Signal("time_to_first_value", "milestones",
                 "Days from the account's start to its first value milestone achieved.",
                 "days", first_value - Attribute("created_day"), False)  # fmt: skip


def _recency() -> Iterator[Signal]:
    yield Signal(
        "days_since_activity", "recency",
        "Days since the last usage event (365 when none in a year).",
        "days", _days_since(highest(USAGE, Window(365), "day")), False,
    )  # fmt: skip
    yield Signal(
        "days_since_touchpoint", "recency",
        "Days since the last touchpoint (365 when none in a year).",
        "days", _days_since(highest(TOUCHPOINTS, Window(365), "day")), False,
    )  # fmt: skip


def _support() -> Iterator[Signal]:
    for priority in ("P1", "P2", "P3", "P4"):
        yield Signal(
            f"open_tickets_{priority.lower()}", "support", f"Open {priority} tickets.",
            "tickets", total(TICKETS, OPEN, None, where("priority", "==", priority)), False,
        )  # fmt: skip
    yield Signal("open_tickets", "support", "Open tickets of any priority.",
                 "tickets", total(TICKETS, OPEN), False)  # fmt: skip
    oldest = lowest(TICKETS, OPEN, "opened_day", where("priority", "==", "P1"))
    yield Signal("oldest_open_p1_days", "support",
                 "Age in days of the oldest open P1 ticket (0 when none is open).",
                 "days", Coalesce((AsOf() - oldest, _zero())), False)  # fmt: skip
    recent, before = total(TICKETS, Window(14)), total(TICKETS, Window(90, 14))
    yield Signal(
        "ticket_spike", "support",
        "Tickets opened in the last 14 days against the account's own rate in the 90 days "
        "before, smoothed: (14-day count x 90/14 + 1) / (prior 90-day count + 1); 1 is usual.",
        "ratio", (recent * 90 / 14 + 1) / (before + 1), False,
    )  # fmt: skip
    rated = where("csat", "not null")
    csat = total(TICKETS, Window(90), "csat", rated) / total(TICKETS, Window(90), None, rated)
    yield Signal("csat_90d", "support",
                 "Mean CSAT (1 to 5) of tickets opened in the last 90 days.",
                 "score", csat / 100, True)  # fmt: skip
    felt = where("sentiment", "not null")
    feeling = total(TICKETS, Window(90), "sentiment", felt) + total(
        SURVEYS, Window(90), "sentiment", felt
    )
    said = total(TICKETS, Window(90), None, felt) + total(SURVEYS, Window(90), None, felt)
    yield Signal(
        "sentiment_90d", "support",
        "Mean sentiment (-1 to 1, VADER, computed offline) of ticket text and survey comments "
        "in the last 90 days.",
        "score", feeling / said / 10000, True,
    )  # fmt: skip


def _voice() -> Iterator[Signal]:
    def mean_nps(window: Window) -> Expr:
        scored = total(SURVEYS, window, "score", NPS) / total(SURVEYS, window, None, NPS)
        return scored / 100

    yield Signal("nps_latest", "voice", "The latest NPS answer (0 to 10) in the last year.",
                 "score", latest(SURVEYS, Window(365), "score", NPS) / 100, True)  # fmt: skip
    yield Signal(
        "nps_trend", "voice",
        "Mean NPS answer in the last 90 days minus the mean in the 90 days before.",
        "score", mean_nps(Window(90)) - mean_nps(Window(90, 90)), True,
    )  # fmt: skip
    yield Signal("detractor", "voice", "1 when the latest NPS answer is 6 or lower.",
                 "flag", at_most(Ref("nps_latest"), 6), False)  # fmt: skip


def _commercial() -> Iterator[Signal]:
    def mrr(skip: int = 0) -> Expr:
        return total(SUBSCRIPTIONS, During("start_day", ("end_day",), skip), "mrr", PAID) / 100

    renewing = During("start_day", ("end_day", "renews_day"))
    yield Signal("subscriptions_in_force", "commercial",
                 "Subscriptions in force, trials included (0: not a customer that day).",
                 "count", total(SUBSCRIPTIONS, IN_FORCE), None)  # fmt: skip
    yield Signal("subscriptions_started", "commercial",
                 "Subscriptions started so far, ended ones included.",
                 "count", total(SUBSCRIPTIONS, Window(None, on="start_day")), None)  # fmt: skip
    yield Signal("seats", "commercial", "Paid seats in force.",
                 "seats", total(SUBSCRIPTIONS, IN_FORCE, "seats", PAID), None)  # fmt: skip
    yield Signal("mrr", "commercial", "Monthly recurring revenue in force (paid, not trials).",
                 "currency", mrr(), None)  # fmt: skip
    yield Signal("mrr_change_90d", "commercial",
                 "MRR now against 90 days ago, minus 1 (0.2 is 20% more).",
                 "ratio", mrr() / mrr(90) - 1, True)  # fmt: skip
    yield Signal(
        "days_to_renewal", "commercial",
        "Days to the next renewal (or end) date of a subscription in force.",
        "days", lowest(SUBSCRIPTIONS, renewing, "renews_day", PAID) - AsOf(), None,
    )  # fmt: skip
    yield Signal("failed_payments_7d", "commercial", "Failed payment attempts in 7 days.",
                 "payments", total(PAYMENTS, Window(7), None, where("status", "==", "failed")),
                 False)  # fmt: skip
    yield Signal("failed_payments_90d", "commercial", "Failed payment attempts in 90 days.",
                 "payments", total(PAYMENTS, Window(90), None, where("status", "==", "failed")),
                 False)  # fmt: skip
    yield Signal("seat_headroom", "commercial",
                 "Paid seats in force not used in the last 30 days (negative: over-deployed).",
                 "seats", Ref("seats") - Ref("active_users_30d"), None)  # fmt: skip


def _people() -> Iterator[Signal]:
    """Departures of the people a renewal depends on (a contact marked left, with its day)."""
    for persona, who in (("champion", "champion"), ("executive_sponsor", "sponsor")):
        role = where("persona", "==", persona)
        title = persona.replace("_", " ")
        yield Signal(f"{who}s_left_90d", "people", f"Contacts with the {title} persona who left "
                     "in the last 90 days.", "people",
                     total(CONTACTS, Window(90, on="left_day"), None, role), False)  # fmt: skip
        yield Signal(f"days_since_{who}_left", "people", f"Days since the latest {title} left "
                     f"(missing: no {title} has left).", "days",
                     AsOf() - highest(CONTACTS, Window(None, on="left_day"), "left_day", role),
                     None)  # fmt: skip
    yield Signal("sponsor_left_to_renewal_days", "people",
                 "Days from the latest executive sponsor departure to the next renewal (90 or "
                 "less: the sponsor left within 90 days of renewal).", "days",
                 Ref("days_since_sponsor_left") + Ref("days_to_renewal"), None)  # fmt: skip


def _zero() -> Expr:
    return Const(0)


def _days_since(last: Expr) -> Expr:
    return Coalesce((AsOf() - last, Const(365)))


GROUPS = ("activity", "engagement", "milestones", "recency", "support", "voice", "commercial",
          "people")  # fmt: skip


@dataclass(frozen=True)
class Catalog:
    """The signals in force: every declaration, in dependency-respecting order by group."""

    signals: tuple[Signal, ...]

    def __iter__(self) -> Iterator[Signal]:
        return iter(self.signals)

    def __len__(self) -> int:
        return len(self.signals)

    @cached_property
    def _by_name(self) -> dict[str, Signal]:
        return {signal.name: signal for signal in self.signals}

    def named(self, name: str) -> Signal:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown signal {name!r}") from None

    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.signals)

    def sources(self) -> tuple[Source, ...]:
        used = {a.source.name for s in self.signals for a in s.aggregates()} | {"accounts"}
        return tuple(s for s in SOURCES if s.name in used)


def catalog(key_features: Iterable[str] = ()) -> Catalog:
    """The Signal Stack; ``key_features`` (from the health model) defines key-feature depth."""
    signals = (
        *_commercial(),
        *_activity(),
        *_engagement(tuple(key_features)),
        *_milestones(),
        *_recency(),
        *_support(),
        *_voice(),
        *_people(),
    )
    return Catalog(tuple(signals))


def documented() -> Catalog:
    """The catalog as documented (key-feature depth shown with a placeholder feature list)."""
    return catalog(["<key features>"])


def signal_info(signal: Signal, within: Catalog | None = None) -> dict[str, Any]:
    """What ``tenure signals`` and docs/signals.md say of a signal (references resolved)."""
    cat = within or documented()
    aggregates, seen, todo = [], set(), [signal]
    while todo:
        current = todo.pop()
        aggregates += current.aggregates()
        for name in current.references():
            if name not in seen:
                seen.add(name)
                todo.append(cat.named(name))
    healthier = {True: "higher", False: "lower", None: "context"}[signal.higher_is_healthier]
    return {
        "name": signal.name,
        "group": signal.group,
        "description": signal.description,
        "unit": signal.unit,
        "sources": sorted({a.source.name for a in aggregates}),
        "windows": sorted({a.when.describe() for a in aggregates}),
        "aggregation": signal.aggregation(),
        "healthier": healthier,
    }


# How an explanation says a signal's value ("{}" is the value in words).
PHRASES: dict[str, str] = {
    "usage_trend_14d": "usage {} against its own baseline",
    "active_users_per_seat": "{} weekly active users per seat",
    "events_per_active_user": "{} events per active user",
    "feature_breadth": "{} features used",
    "seat_utilisation": "{} monthly active users per seat",
    "key_feature_depth": "{} of use in key features",
    "people_engaged_90d": "{} people engaged in 90 days",
    "touchpoints_90d": "{} touchpoints in 90 days",
    "onboarding_progress": "onboarding {} done",
    "days_behind_plan": "{} behind plan",
    "days_since_activity": "last active {} ago",
    "days_since_touchpoint": "last touchpoint {} ago",
    "open_tickets_p1": "{} P1 tickets open",
    "oldest_open_p1_days": "oldest P1 open {}",
    "ticket_spike": "ticket rate {} times its usual",
    "csat_90d": "CSAT {}",
    "sentiment_90d": "sentiment {}",
    "nps_latest": "latest NPS {}",
    "nps_trend": "NPS trend {}",
    "failed_payments_90d": "{} failed payments in 90 days",
    "mrr_change_90d": "MRR {} over 90 days",
}


def phrase(name: str) -> str:
    """The template an explanation uses for a signal."""
    return PHRASES.get(name, name.replace("_", " ") + " {}")
