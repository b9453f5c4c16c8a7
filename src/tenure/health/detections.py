"""Detections with reasons: silent churn and expansion signals, read off the Signal Stack.

Each rule looks at an account's signals now and ``LOOKBACK`` days earlier and, when it holds, says
why in a sentence a CSM can act on. Thresholds are module constants; each rule's
docstring says when it fires and docs/signals.md lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from tenure.health.score import is_customer
from tenure.health.scoring import (
    RegisteredModel,
    day_number,
    load_tables,
    signal_rows,
    today,
)
from tenure.store import Store

LOOKBACK = 30
SILENT_DECAY = -0.3  # usage 14-day trend at or below this, against the account's own baseline
SEAT_PRESSURE = 0.9  # users active in 30 days per paid seat
BROADENING = 3  # more distinct features than LOOKBACK days ago
MOMENTUM = 0.3  # onboarding progress gained in LOOKBACK days, on plan

Signals = Mapping[str, Any]


@dataclass(frozen=True)
class Detection:
    account_id: str
    kind: str  # silent_churn, seat_headroom, broadening_usage, milestone_momentum
    direction: str  # risk or expansion
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _silent(now: Signals, _before: Signals) -> str | None:
    """Usage's 14-day trend against the account's own baseline is at or below -30%, with no open
    ticket, no ticket spike and no touchpoint in 30 days: decay nobody is talking about."""
    trend = now.get("usage_trend_14d")
    if trend is None or trend > SILENT_DECAY:
        return None
    spike = now.get("ticket_spike") or 0  # missing: no spike
    if now.get("open_tickets") or now.get("touchpoints_30d") or spike > 1:
        return None
    return (
        f"usage {trend:+.0%} against its own 90-day baseline, with no open tickets and no "
        f"touchpoints in 30 days; last activity {now.get('days_since_activity')} days ago"
    )


def _seats(now: Signals, _before: Signals) -> str | None:
    """Users active in 30 days are at least 90% of the paid seats in force."""
    use, seats = now.get("seat_utilisation"), now.get("seats")
    if use is None or use < SEAT_PRESSURE:
        return None
    return (
        f"{now.get('active_users_30d')} people active in 30 days on {seats} paid seats ({use:.0%})"
    )


def _broadening(now: Signals, before: Signals) -> str | None:
    """At least 3 more distinct features used in the last 30 days than 30 days earlier."""
    wide, was = now.get("feature_breadth"), before.get("feature_breadth")
    if wide is None or was is None or wide - was < BROADENING:
        return None
    return f"features used in 30 days went from {was} to {wide}"


def _momentum(now: Signals, before: Signals) -> str | None:
    """Onboarding progress rose by at least 30 points in 30 days and nothing is behind plan."""
    progress, was = now.get("onboarding_progress"), before.get("onboarding_progress")
    # rounded: 4/10 -> 7/10 is 0.29999999999999993 in floats, and is 30 points
    if progress is None or was is None or round(progress - was, 9) < MOMENTUM:
        return None
    if now.get("days_behind_plan"):
        return None
    return f"onboarding went from {was:.0%} to {progress:.0%} in {LOOKBACK} days, on plan"


RULES: tuple[tuple[str, str, Callable[[Signals, Signals], str | None]], ...] = (
    ("silent_churn", "risk", _silent),
    ("seat_headroom", "expansion", _seats),
    ("broadening_usage", "expansion", _broadening),
    ("milestone_momentum", "expansion", _momentum),
)


def detect(account: str, now: Signals, before: Signals) -> list[Detection]:
    """Every rule that holds for one account (none for an account that is not a customer)."""
    if not is_customer(now):
        return []
    found = []
    for kind, direction, rule in RULES:
        reason = rule(now, before)
        if reason:
            found.append(Detection(account, kind, direction, reason))
    return found


def detect_portfolio(
    store: Store, registered: RegisteredModel, as_of: date | None = None
) -> list[Detection]:
    """Detections for every account as of ``as_of`` (default today)."""
    day = as_of or today()
    cat = registered.catalog()
    tables = load_tables(store, cat)
    then, now = day_number(day - timedelta(days=LOOKBACK)), day_number(day)
    rows = signal_rows(store, cat, [then, now], tables=tables)
    by_day: dict[int, dict[str, Signals]] = {then: {}, now: {}}
    for row in rows:
        by_day[row["as_of"]][row["account_id"]] = row
    found = []
    for account, signals in sorted(by_day[now].items()):
        found += detect(account, signals, by_day[then].get(account, {}))
    return found
