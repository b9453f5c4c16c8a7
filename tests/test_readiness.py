"""Data readiness: each object's level follows from its rules, on every backend, and on RavenStack.

A small clean portfolio (five accounts connected to every source) is the reference: it reaches L4
everywhere, and L5 once scores are live. Each case removes or ages what one rule needs and sees the
level, the evidence, the blocked capabilities and the next step move accordingly.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from conftest import Cli
from tenure.ingest.importer import import_file
from tenure.readiness import (
    CAPABILITIES,
    LADDERS,
    OBJECTS,
    Evidence,
    HealthFacts,
    Readiness,
    assess,
    at_least,
    at_most,
    climb,
)
from tenure.record import KINDS
from tenure.store import Store
from test_real_data import import_ravenstack

DOCS = Path(__file__).resolve().parents[1] / "docs" / "readiness.md"
AS_OF = date(2024, 7, 1)  # the day after the newest record of the portfolio
IDS = range(1, 6)
HEADERS = {
    "accounts": "account_id,name,segment,owner,lifecycle_stage,created_at",
    "subscriptions": "subscription_id,account_id,plan,seats,mrr,start_date,status",
    "contacts": "contact_id,account_id,email",
    "events": "event_id,account_id,subscription_id,user_id,event,feature,timestamp",
    "tickets": "ticket_id,account_id,contact_id,priority,opened_at,resolved_at,csat,subject",
    "responses": "response_id,account_id,contact_id,survey,score,responded_at",
    "milestones": "milestone_id,account_id,name,planned_date,achieved_date",
    "opportunities": "opportunity_id,account_id,type,product,amount,created_at",
    "outcomes": "outcome_id,account_id,type,date",
}
PORTFOLIO: dict[str, list[str]] = {
    "accounts": [f"A{i},Company {i},enterprise,jane,adoption,2023-01-0{i}" for i in IDS],
    "subscriptions": [f"S{i},A{i},pro,10,100,2023-02-01,active" for i in IDS],
    "contacts": [f"C{i},A{i},user{i}@company{i}.com" for i in IDS],
    "events": [
        row
        for i in IDS
        for row in (
            f"E{i}a,A{i},S{i},u{i},login,dashboard,2024-06-01T10:00:00Z",
            f"E{i}b,A{i},S{i},u{i},export,reports,2024-06-30T10:00:00Z",
        )
    ],
    "tickets": [
        f"T{i},A{i},C{i},P2,2024-06-30T08:00:00Z,2024-06-30T12:00:00Z,5,Export fails" for i in IDS
    ],
    "responses": [f"R{i},A{i},C{i},nps,9,2024-06-30T10:00:00Z" for i in IDS],
    "milestones": [f"M{i},A{i},Kick-off,2024-06-2{i},2024-06-{25 + i}" for i in IDS],
    "opportunities": [f"O{i},A{i},upsell,Analytics,5000,2024-06-30" for i in IDS],
    "outcomes": [f"X{i},A{i},renewed,2024-06-30" for i in IDS],
}
LIVE = HealthFacts("default-1", accounts_scored=5, latest_as_of=AS_OF, live=True, backtested=True)
RECORD_OBJECTS = ("usage_event", "support_ticket", "onboarding", "expansion_opportunity")


def load(store: Store, folder: Path, rows: dict[str, list[str]]) -> None:
    """Import ``rows`` kind by kind, parents first; every row must be accepted."""
    for kind in KINDS:
        if rows.get(kind):
            path = folder / f"{kind}.csv"
            path.write_text("\n".join([HEADERS[kind], *rows[kind]]) + "\n", encoding="utf-8")
            report = import_file(store, kind, path)
            assert (report.accepted, report.rejected) == (len(rows[kind]), 0), report.errors


def value(readiness: Readiness, obj: str, name: str) -> object:
    return readiness.object(obj).measure(name).value


def reasons(readiness: Readiness, obj: str) -> dict[str, str]:
    return {b.capability: b.reason for b in readiness.object(obj).blocked}


def test_an_empty_store_is_l0_everywhere_and_says_what_is_missing(store: Store) -> None:
    readiness = assess(store, AS_OF)
    assert readiness.levels() == dict.fromkeys(OBJECTS, 0)
    assert reasons(readiness, "health_score")["health scoring"] == (
        "no health scores computed: run `tenure score`"
    )
    assert reasons(readiness, "customer_account")["churn prediction"] == "no outcomes recorded"
    assert reasons(readiness, "usage_event")["seat utilisation"] == "no subscriptions carry seats"
    assert reasons(readiness, "support_ticket")["CSAT trend"] == "no tickets recorded"
    for obj in readiness.objects:
        assert obj.label == "L0 none"
        assert obj.blocked, obj.object  # nothing can run on nothing
        assert "L1 needs" in obj.next_step
    account = readiness.object("customer_account")
    assert account.next_step.startswith("Import your accounts with `tenure import accounts`")
    assert value(readiness, "customer_account", "coverage.usage") is None  # no accounts to cover


def test_accounts_alone_are_recorded_but_not_connected(store: Store, tmp_path: Path) -> None:
    load(store, tmp_path, {"accounts": PORTFOLIO["accounts"]})
    readiness = assess(store, AS_OF)
    assert readiness.levels() == dict.fromkeys(OBJECTS, 0) | {"customer_account": 2}
    account = readiness.object("customer_account")
    assert value(readiness, "customer_account", "completeness") == 1.0
    assert value(readiness, "customer_account", "sources_connected") == 0
    assert account.next_step == (
        "Connect product usage events to your accounts; L3 needs coverage.usage >= 80%, now 0.0%."
    )
    assert reasons(readiness, "usage_event")["silent-churn detection"] == (
        "no accounts have usage events"
    )
    assert reasons(readiness, "expansion_opportunity")["seat-headroom signal"] == (
        "no subscriptions carry seats"
    )


def test_accounts_without_their_standard_fields_are_scattered(
    sqlite_store: Store, tmp_path: Path
) -> None:
    bare = [f"A{i},Company {i},,,,2023-01-0{i}" for i in IDS]  # only created_at of the four
    load(sqlite_store, tmp_path, {"accounts": bare})
    readiness = assess(sqlite_store, AS_OF)
    account = readiness.object("customer_account")
    assert (account.level, value(readiness, "customer_account", "completeness")) == (1, 0.25)
    assert account.next_step.startswith("Fill in the fields that matter (mean of segment 0.0%")
    assert reasons(readiness, "customer_account")["book of business by CSM"] == (
        "no accounts have an owner"
    )


def test_a_connected_clean_portfolio_is_formal_everywhere(store: Store, tmp_path: Path) -> None:
    load(store, tmp_path, PORTFOLIO)
    readiness = assess(store, AS_OF)
    assert readiness.levels() == dict.fromkeys(OBJECTS, 4) | {"health_score": 0}
    assert value(readiness, "customer_account", "sources_connected") == 5
    assert value(readiness, "usage_event", "coverage") == 1.0
    assert value(readiness, "usage_event", "consistency") == 1.0
    assert value(readiness, "support_ticket", "linked_contact") == 1.0
    assert value(readiness, "customer_account", "freshness_days") == 1
    for obj in ("customer_account", *RECORD_OBJECTS):
        assert reasons(readiness, obj) == {}, obj  # the data carries every capability
        assert readiness.object(obj).next_step == (
            "Turn on live scoring so that each event updates its account's score; "
            "L5 needs live_scoring set, now no."
        )


def test_live_scores_on_fresh_data_reach_real_time(store: Store, tmp_path: Path) -> None:
    load(store, tmp_path, PORTFOLIO)
    readiness = assess(store, AS_OF, LIVE)
    assert readiness.levels() == dict.fromkeys(OBJECTS, 5)
    assert all(o.label == "L5 real-time" and not o.blocked for o in readiness.objects)


def test_stale_data_caps_real_time(store: Store, tmp_path: Path) -> None:
    load(store, tmp_path, PORTFOLIO)
    later = AS_OF + timedelta(days=199)  # the newest records are from the day before AS_OF
    current = HealthFacts("default-1", 5, later, live=True, backtested=True)
    readiness = assess(store, later, current)
    assert readiness.levels() == dict.fromkeys(OBJECTS, 4)
    for obj in OBJECTS:
        assert value(readiness, obj, "freshness_days") == 200, obj
        assert readiness.object(obj).summary.startswith(
            "L4 formal · L5 needs freshness_days <= 1 day, now 200 days"
        ), obj
    assert value(readiness, "health_score", "score_age_days") == 0
    assert assess(store, later, LIVE).object("health_score").level == 2  # scores 199 days old


def test_health_facts_move_the_health_score_up_one_rule_at_a_time(
    sqlite_store: Store, tmp_path: Path
) -> None:
    load(sqlite_store, tmp_path, PORTFOLIO)
    week_old = AS_OF - timedelta(days=8)
    ladder = [
        (None, 0),
        (HealthFacts(None, 5, AS_OF, live=False, backtested=False), 1),  # scores, no model
        (HealthFacts("default-1", 0, None, live=False, backtested=False), 2),  # a definition
        (HealthFacts("default-1", 3, AS_OF, live=False, backtested=False), 2),  # 60% scored
        (HealthFacts("default-1", 5, week_old, live=False, backtested=False), 2),  # 8 days old
        (HealthFacts("default-1", 4, AS_OF, live=False, backtested=False), 3),  # 80% scored
        (HealthFacts("default-1", 5, AS_OF, live=True, backtested=False), 3),
        (HealthFacts("default-1", 5, AS_OF, live=False, backtested=True), 4),
        (LIVE, 5),
    ]
    levels = [
        assess(sqlite_store, AS_OF, facts).object("health_score").level for facts, _ in ladder
    ]
    assert levels == [level for _, level in ladder]
    partly = assess(sqlite_store, AS_OF, ladder[3][0])
    assert reasons(partly, "health_score")["health scoring"] == (
        "only 60.0% of accounts have a health score"
    )
    assert value(partly, "health_score", "accounts_scored") == 0.6


def test_thin_usage_and_seatless_subscriptions_block_what_needs_them(
    store: Store, tmp_path: Path
) -> None:
    seatless = [f"S{i},A{i},pro,,100,2023-02-01,active" for i in IDS]
    rows = PORTFOLIO | {"subscriptions": seatless, "events": PORTFOLIO["events"][:2]}
    load(store, tmp_path, rows)
    readiness = assess(store, AS_OF)
    assert value(readiness, "usage_event", "coverage") == 0.2  # one account of five
    assert readiness.object("usage_event").level == 2  # 20% is not scattered, not connected
    assert readiness.object("customer_account").level == 2  # usage is a source it must have
    assert readiness.object("expansion_opportunity").level == 2  # no seats, no usage signal
    assert reasons(readiness, "usage_event") == {
        "silent-churn detection": "only 20.0% of accounts have usage events",
        "seat utilisation": "no subscriptions carry seats",
    }
    assert reasons(readiness, "customer_account") == {
        "churn prediction": "only 20.0% of accounts have usage events"
    }
    assert readiness.object("usage_event").summary == (
        "L2 recorded · L3 needs coverage >= 80%, now 20.0% · 2 blocked"
    )


def test_what_tenure_check_reports_keeps_records_below_formal(
    sqlite_store: Store, tmp_path: Path
) -> None:
    early = ["E0,A1,S1,u1,login,dashboard,2023-01-15T10:00:00Z"]  # before S1 starts
    load(sqlite_store, tmp_path, PORTFOLIO | {"events": PORTFOLIO["events"] + early})
    readiness = assess(sqlite_store, AS_OF)
    assert value(readiness, "usage_event", "consistency") == round(1 - 1 / 11, 4)
    assert readiness.object("usage_event").level == 3
    assert (
        "events_before_subscription 1"
        in readiness.object("usage_event").measure("consistency").detail
    )


@pytest.mark.parametrize(
    ("coverage", "days", "level"),
    [(0.8, 1, 2), (0.7999, 1, 0), (None, 0, 0), (1.0, 2, 1), (0.9, None, 1)],
)
def test_a_rung_is_reached_from_its_thresholds_on(
    coverage: float | None, days: int | None, level: int
) -> None:
    measures = {
        "coverage": Evidence("coverage", coverage, ""),
        "freshness_days": Evidence("freshness_days", days, "", "days"),
    }
    ladder = ((at_least("coverage", 0.8, "more"),), (at_most("freshness_days", 1, "sooner"),))
    reached, unmet = climb(ladder, measures)
    assert reached == level
    expected = [ladder[0][0], ladder[1][0], None][level]
    assert unmet is expected


def test_to_dict_is_json_with_the_documented_shape(sqlite_store: Store, tmp_path: Path) -> None:
    load(sqlite_store, tmp_path, PORTFOLIO)
    data = json.loads(json.dumps(assess(sqlite_store, AS_OF).to_dict()))
    assert data["as_of"] == "2024-07-01"
    assert [o["object"] for o in data["objects"]] == list(OBJECTS)
    for obj in data["objects"]:
        assert set(obj) == {"object", "level", "label", "evidence", "blocked", "next_step"}
        assert obj["label"].startswith(f"L{obj['level']} ")
        assert all(set(e) == {"name", "value", "detail"} for e in obj["evidence"])
        assert all(set(b) == {"capability", "reason"} for b in obj["blocked"])
        assert len({e["name"] for e in obj["evidence"]}) == len(obj["evidence"])


def test_every_rule_and_capability_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    rules = {r.text for ladder in LADDERS.values() for rung in ladder for r in rung}
    missing = sorted(rule for rule in rules if f"`{rule}`" not in text)
    assert not missing, f"docs/readiness.md lacks the rules {missing}"
    names = {name for capabilities in CAPABILITIES.values() for name, _ in capabilities}
    rows = set(re.findall(r"^\|[^|]*\| ([^|]+?) \|", text, flags=re.MULTILINE))
    assert names <= rows, f"docs/readiness.md lacks the capabilities {sorted(names - rows)}"


def test_ravenstack_readiness(sqlite_cli: Cli) -> None:
    import_ravenstack(sqlite_cli)
    store = Store(sqlite_cli.url)
    try:
        readiness = assess(store, date(2025, 1, 1))  # the day after the newest record
    finally:
        store.close()
    assert readiness.levels() == {
        "customer_account": 1,  # connected, but no segment, no owner, stage only when churned
        "health_score": 0,
        "usage_event": 3,
        "support_ticket": 3,
        "onboarding": 0,
        "expansion_opportunity": 0,
    }
    # Feature usage names subscriptions, and every one of the 500 accounts has some.
    assert value(readiness, "customer_account", "coverage.usage") == 1.0
    assert value(readiness, "customer_account", "coverage.support") == 0.984  # 492 of 500
    assert value(readiness, "customer_account", "completeness.lifecycle_stage") == 0.22  # 110
    assert value(readiness, "customer_account", "completeness") == 0.305  # (0+0+1+0.22)/4
    assert value(readiness, "customer_account", "sources_connected") == 3
    assert value(readiness, "support_ticket", "completeness.csat") == 0.5875  # 1,175 of 2,000
    assert value(readiness, "usage_event", "completeness") == 0.5  # feature, never a user
    # 19,128 events before their subscription: far more than 5% of 24,979.
    assert value(readiness, "usage_event", "consistency") == 0.0
    assert value(readiness, "usage_event", "freshness_days") == 1
    assert reasons(readiness, "usage_event") == {
        "active users": "no usage events name a user",
        "seat utilisation": "no usage events name a user",
    }
    assert reasons(readiness, "support_ticket") == {
        "ticket sentiment": "no tickets carry text",
        "requester analysis": "no tickets name a contact",
    }
    assert "health model backtesting" not in reasons(readiness, "health_score")  # 600 outcomes
