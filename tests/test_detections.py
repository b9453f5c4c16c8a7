"""Detection rules, one by one: each fires at its threshold and not just short of it.

``tenure.health.detections.detect(account, now, before)`` reads plain signal dictionaries (one row
of the Signal Stack now and one ``LOOKBACK`` days earlier), so the rules are driven here with
hand-written dictionaries; tests/test_health_cli.py checks them end to end (``tenure detect``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tenure.health.detections import (
    BROADENING,
    LOOKBACK,
    MOMENTUM,
    RULES,
    SEAT_PRESSURE,
    SILENT_DECAY,
    Detection,
    detect,
)

# An account that triggers nothing: steady usage, a few users on many seats, onboarding done.
QUIET: dict[str, Any] = {
    "usage_trend_14d": 0.0,
    "open_tickets": 0,
    "touchpoints_30d": 0,
    "ticket_spike": 1.0,
    "days_since_activity": 1,
    "seat_utilisation": 0.5,
    "seats": 10,
    "active_users_30d": 5,
    "feature_breadth": 4,
    "onboarding_progress": 1.0,
    "days_behind_plan": 0,
}
BEFORE: dict[str, Any] = {"feature_breadth": 4, "onboarding_progress": 1.0}

# Every signal a rule reads, on either side.
READ = sorted(set(QUIET) | set(BEFORE))


def kinds(now: dict[str, Any], before: dict[str, Any] | None = None) -> dict[str, Detection]:
    found = detect("A1", now, BEFORE if before is None else before)
    assert len({d.kind for d in found}) == len(found)  # one detection per rule at most
    for d in found:
        assert d.account_id == "A1" and d.reason
    return {d.kind: d for d in found}


def short_of(threshold: float, towards: float) -> float:
    """The float next to ``threshold`` on the side that does not meet it."""
    return math.nextafter(threshold, towards)


def test_a_quiet_account_triggers_nothing() -> None:
    assert detect("A1", QUIET, BEFORE) == []
    assert [(kind, direction) for kind, direction, _ in RULES] == [
        ("silent_churn", "risk"),
        ("seat_headroom", "expansion"),
        ("broadening_usage", "expansion"),
        ("milestone_momentum", "expansion"),
    ]


# Silent churn -----------------------------------------------------------------------------------


@pytest.mark.parametrize("trend", [SILENT_DECAY, -0.3, -0.31, -0.85, -1.0])
def test_silent_churn_fires_at_and_beyond_the_decay(trend: float) -> None:
    found = kinds(QUIET | {"usage_trend_14d": trend, "days_since_activity": 9})
    assert list(found) == ["silent_churn"]
    d = found["silent_churn"]
    assert (d.direction, d.kind) == ("risk", "silent_churn")
    assert d.reason.startswith(f"usage {trend:+.0%} against its own 90-day baseline")
    assert "no open tickets" in d.reason and "no touchpoints in 30 days" in d.reason
    assert d.reason.endswith("last activity 9 days ago")
    assert d.to_dict() == {
        "account_id": "A1",
        "kind": "silent_churn",
        "direction": "risk",
        "reason": d.reason,
    }


@pytest.mark.parametrize("trend", [short_of(SILENT_DECAY, 0), -0.29, 0.0, 0.5, None])
def test_silent_churn_does_not_fire_short_of_the_decay(trend: float | None) -> None:
    assert "silent_churn" not in kinds(QUIET | {"usage_trend_14d": trend})


def test_a_drop_computed_from_event_counts_at_exactly_30_percent_fires() -> None:
    # 49 events in the last 14 days against 450 in the 90 days before: exactly 30% below.
    trend = (49 / 14) / (450 / 90) - 1
    assert "silent_churn" in kinds(QUIET | {"usage_trend_14d": trend})


@pytest.mark.parametrize(
    "contact",
    [
        {"open_tickets": 1},
        {"open_tickets": 3},
        {"touchpoints_30d": 1},
        {"ticket_spike": 1.5},
        {"open_tickets": 1, "touchpoints_30d": 2},
    ],
)
def test_silent_churn_is_not_silent_when_the_customer_is_in_touch(contact: dict[str, Any]) -> None:
    collapsing = QUIET | {"usage_trend_14d": -0.8}
    assert "silent_churn" in kinds(collapsing)
    assert "silent_churn" not in kinds(collapsing | contact)


@pytest.mark.parametrize(
    "absent",
    [
        {"open_tickets": None},
        {"touchpoints_30d": None},
        {"ticket_spike": None},
        {"open_tickets": 0, "touchpoints_30d": 0, "ticket_spike": 1.0},
    ],
)
def test_silent_churn_with_no_contact_recorded(absent: dict[str, Any]) -> None:
    assert "silent_churn" in kinds(QUIET | {"usage_trend_14d": -0.8} | absent)


# Seat pressure ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("active", "seats"), [(9, 10), (18, 20), (27, 30), (10, 10), (12, 10), (1, 1)]
)
def test_seat_pressure_fires_from_90_percent_of_seats(active: int, seats: int) -> None:
    use = active / seats
    assert use >= SEAT_PRESSURE
    found = kinds(QUIET | {"seat_utilisation": use, "seats": seats, "active_users_30d": active})
    assert list(found) == ["seat_headroom"]
    d = found["seat_headroom"]
    assert d.direction == "expansion"
    assert d.reason == f"{active} people active in 30 days on {seats} paid seats ({use:.0%})"


@pytest.mark.parametrize("use", [short_of(SEAT_PRESSURE, 0), 8 / 10, 17 / 20, 26 / 30, 0.0, None])
def test_seat_pressure_does_not_fire_below_90_percent(use: float | None) -> None:
    assert "seat_headroom" not in kinds(QUIET | {"seat_utilisation": use})


def test_seat_pressure_exactly_at_the_threshold() -> None:
    assert "seat_headroom" in kinds(QUIET | {"seat_utilisation": SEAT_PRESSURE})


# Broadening usage -------------------------------------------------------------------------------


@pytest.mark.parametrize(("was", "now"), [(2, 2 + BROADENING), (0, 3), (4, 9), (0, 10)])
def test_broadening_fires_at_three_more_features(was: int, now: int) -> None:
    found = kinds(QUIET | {"feature_breadth": now}, BEFORE | {"feature_breadth": was})
    assert list(found) == ["broadening_usage"]
    d = found["broadening_usage"]
    assert d.direction == "expansion"
    assert d.reason == f"features used in 30 days went from {was} to {now}"


@pytest.mark.parametrize(("was", "now"), [(2, 2 + BROADENING - 1), (5, 5), (9, 3), (0, 2)])
def test_broadening_does_not_fire_below_three_more(was: int, now: int) -> None:
    assert "broadening_usage" not in kinds(
        QUIET | {"feature_breadth": now}, BEFORE | {"feature_breadth": was}
    )


def test_broadening_needs_breadth_known_on_both_days() -> None:
    """No usage data 30 days ago is not "no features": a new account is not broadening."""
    assert "broadening_usage" not in kinds(QUIET | {"feature_breadth": None})
    assert "broadening_usage" not in kinds(
        QUIET | {"feature_breadth": 3}, {"feature_breadth": None}
    )
    found = kinds(QUIET | {"feature_breadth": 3}, {"feature_breadth": 0})
    assert found["broadening_usage"].reason == "features used in 30 days went from 0 to 3"


# Milestone momentum -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("was", "now"),
    [
        (0.0, MOMENTUM),
        (0.2, 0.5),
        (0.5, 0.8),
        (0.7, 1.0),
        (4 / 10, 7 / 10),  # 4 of 10 milestones to 7 of 10: exactly 30 points, in floats
        (8 / 20, 14 / 20),
        (11 / 20, 17 / 20),
        (13 / 20, 19 / 20),
        (1 / 5, 3 / 5),
        (0.0, 1.0),
    ],
)
def test_momentum_fires_at_thirty_points_of_onboarding_on_plan(was: float, now: float) -> None:
    found = kinds(
        QUIET | {"onboarding_progress": now, "days_behind_plan": 0},
        BEFORE | {"onboarding_progress": was},
    )
    assert list(found) == ["milestone_momentum"]
    d = found["milestone_momentum"]
    assert d.direction == "expansion"
    assert d.reason == f"onboarding went from {was:.0%} to {now:.0%} in {LOOKBACK} days, on plan"


@pytest.mark.parametrize(
    ("was", "now"),
    # (not one float short of 0.3: a gain that rounds to 30 points is 30 points)
    [(0.0, MOMENTUM - 1e-6), (0.4, 0.69), (3 / 10, 5 / 10), (0.5, 0.5), (0.9, 0.2)],
)
def test_momentum_does_not_fire_below_thirty_points(was: float, now: float) -> None:
    assert "milestone_momentum" not in kinds(
        QUIET | {"onboarding_progress": now}, BEFORE | {"onboarding_progress": was}
    )


@pytest.mark.parametrize("behind", [1, 14, 90])
def test_momentum_needs_the_account_on_plan(behind: int) -> None:
    now, before = QUIET | {"onboarding_progress": 0.8}, BEFORE | {"onboarding_progress": 0.2}
    assert "milestone_momentum" in kinds(now | {"days_behind_plan": 0}, before)
    assert "milestone_momentum" in kinds(now | {"days_behind_plan": None}, before)
    assert "milestone_momentum" not in kinds(now | {"days_behind_plan": behind}, before)


@pytest.mark.parametrize(("was", "now"), [(None, 0.8), (0.2, None), (None, None)])
def test_momentum_needs_progress_on_both_days(was: float | None, now: float | None) -> None:
    assert "milestone_momentum" not in kinds(
        QUIET | {"onboarding_progress": now}, BEFORE | {"onboarding_progress": was}
    )


# Missing signals --------------------------------------------------------------------------------

# Every rule fires on this pair, so each missing signal is read on a path that gets far.
ALL_FIRE_NOW: dict[str, Any] = {
    "usage_trend_14d": -0.8,
    "open_tickets": 0,
    "touchpoints_30d": 0,
    "ticket_spike": 1.0,
    "days_since_activity": 12,
    "seat_utilisation": 1.0,
    "seats": 4,
    "active_users_30d": 4,
    "feature_breadth": 6,
    "onboarding_progress": 0.9,
    "days_behind_plan": 0,
}
ALL_FIRE_BEFORE: dict[str, Any] = {"feature_breadth": 1, "onboarding_progress": 0.3}


def test_every_rule_fires_on_the_reference_pair() -> None:
    assert set(kinds(ALL_FIRE_NOW, ALL_FIRE_BEFORE)) == {kind for kind, _, _ in RULES}


@pytest.mark.parametrize("signal", READ)
def test_a_missing_signal_never_crashes(signal: str) -> None:
    for now, before in (
        ({k: v for k, v in ALL_FIRE_NOW.items() if k != signal}, ALL_FIRE_BEFORE),
        (ALL_FIRE_NOW | {signal: None}, ALL_FIRE_BEFORE),
        (ALL_FIRE_NOW, {k: v for k, v in ALL_FIRE_BEFORE.items() if k != signal}),
        (ALL_FIRE_NOW, ALL_FIRE_BEFORE | {signal: None}),
    ):
        found = detect("A1", now, before)
        assert all(d.reason for d in found)
        assert len(found) <= len(RULES)


def test_no_signals_at_all() -> None:
    assert detect("A1", {}, {}) == []
    assert detect("A1", dict.fromkeys(READ), dict.fromkeys(READ)) == []
