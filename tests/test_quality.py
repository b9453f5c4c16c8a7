"""`tenure check`: each finding shown by the smallest data set that has it, on every backend.

Every case starts from a clean base (one account with one open subscription) and adds only what the
finding needs, so the report must hold exactly that finding: its count and a first example id.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import BACKENDS, Cli, fresh_postgres
from tenure import quality
from tenure.record import KINDS

# The order files must be imported in: parents before the records that name them.
ORDER = tuple(KINDS)
HEADERS = {
    "accounts": "account_id,name,parent_account_id,lifecycle_stage,created_at",
    "subscriptions": "subscription_id,account_id,mrr,start_date,end_date,status,is_trial",
    "invoices": "invoice_id,account_id,subscription_id,amount,issued_at",
    "payments": "payment_id,account_id,invoice_id,amount,attempted_at,status",
    "events": "event_id,account_id,subscription_id,event,timestamp",
    "tickets": "ticket_id,account_id,contact_id,opened_at",
    "outcomes": "outcome_id,account_id,type,date",
    "contacts": "contact_id,account_id,email",
    "responses": "response_id,account_id,contact_id,survey,score,responded_at",
    "milestones": "milestone_id,account_id,name,planned_date,achieved_date",
}
BASE: dict[str, list[str]] = {
    "accounts": ["A1,Acme,,adoption,2023-01-01"],
    "subscriptions": ["S1,A1,100,2024-01-01,,active,false"],
}
# A second account, clean on its own: it signed up in 2023 and has one subscription that ended.
A2 = "A2,Globex,,adoption,2023-01-01"
S2_ENDED = "S2,A2,50,2024-01-01,2024-06-30,cancelled,false"

# code -> (extra rows per kind, expected findings as (kind, count, first example))
CASES: dict[str, tuple[dict[str, list[str]], list[tuple[str, int, str]]]] = {
    "events_before_subscription": (
        {"events": ["E1,A1,S1,login,2023-12-31T23:00:00Z", "E2,A1,S1,login,2024-01-01T08:00:00Z"]},
        [("events", 1, "E1")],
    ),
    "events_after_subscription": (
        {
            "accounts": [A2],
            "subscriptions": [S2_ENDED],
            "events": [
                "E1,A2,S2,login,2024-06-30T22:00:00Z",
                "E2,A2,S2,login,2024-07-01T09:00:00Z",
                "E3,A2,S2,login,2024-09-01T09:00:00Z",
            ],
        },
        [("events", 2, "E2")],
    ),
    "events_before_signup": (
        # E2 is within the day of grace (signup dates are local, event times UTC)
        {"events": ["E1,A1,,login,2022-12-30T10:00:00Z", "E2,A1,,login,2022-12-31T22:30:00Z"]},
        [("events", 1, "E1")],
    ),
    "tickets_before_signup": (
        {"tickets": ["T1,A1,,2022-06-01T10:00:00Z", "T2,A1,,2023-06-01T10:00:00Z"]},
        [("tickets", 1, "T1")],
    ),
    "outcomes_before_signup": (
        {"outcomes": ["O1,A1,renewed,2022-12-30", "O2,A1,renewed,2022-12-31"]},
        [("outcomes", 1, "O1")],
    ),
    "overlapping_subscriptions": (
        {
            "accounts": [A2],
            # A1: a second subscription inside the open one; A2: back to back, which is fine.
            "subscriptions": [
                "S2,A1,10,2024-06-01,2024-09-01,expired,false",
                "S3,A2,10,2024-01-01,2024-12-31,expired,false",
                "S4,A2,10,2024-12-31,,active,false",
            ],
        },
        [("subscriptions", 1, "A1")],
    ),
    "churned_without_outcome": (
        {"accounts": ["A2,Globex,,churned,2023-01-01"], "subscriptions": [S2_ENDED]},
        [("accounts", 1, "A2")],
    ),
    "churn_outcome_not_flagged": (
        {
            "accounts": ["A2,Globex,,churned,2023-01-01"],
            "subscriptions": [S2_ENDED],
            "outcomes": ["O1,A1,churned,2024-06-30", "O2,A2,churned,2024-06-30"],
        },
        [("outcomes", 1, "A1")],
    ),
    "churned_with_open_subscription": (
        {
            "accounts": ["A2,Globex,,churned,2023-01-01", "A3,Initech,,churned,2023-01-01"],
            "subscriptions": [
                "S2,A2,50,2024-01-01,,active,false",
                "S3,A3,50,2024-01-01,,expired,false",
            ],
            "outcomes": ["O1,A2,churned,2024-06-30", "O2,A3,churned,2024-06-30"],
        },
        [("accounts", 1, "A2")],
    ),
    "cancelled_without_end_date": (
        {"accounts": [A2], "subscriptions": ["S2,A2,50,2024-01-01,,cancelled,false"]},
        [("subscriptions", 1, "S2")],
    ),
    "ended_but_active": (
        {"accounts": [A2], "subscriptions": ["S2,A2,50,2024-01-01,2025-01-01,active,false"]},
        [("subscriptions", 1, "S2")],
    ),
    "paying_trial": (
        {
            "accounts": [A2, "A3,Initech,,trial,2023-01-01"],
            "subscriptions": [
                "S2,A2,50,2024-01-01,,trial,true",
                "S3,A3,0,2024-01-01,,trial,true",
            ],
        },
        [("subscriptions", 1, "S2")],
    ),
    "zero_amount_invoices": (
        {
            "invoices": [
                "I1,A1,S1,0,2024-02-01",
                "I2,A1,S1,100,2024-03-01",
                "I3,A1,S1,-5,2024-04-01",
            ]
        },
        [("invoices", 1, "I1")],
    ),
    "future_dates": (
        {
            "events": [
                "E1,A1,S1,login,2099-01-01T10:00:00Z",
                "E2,A1,S1,login,2024-02-01T10:00:00Z",
            ],
            "outcomes": ["O1,A1,renewed,2099-01-01"],
        },
        [("events", 1, "E1"), ("outcomes", 1, "O1")],
    ),
    "orphan_parent_account_id": (
        {
            "accounts": ["A2,Globex,A9,adoption,2023-01-01", "A3,Initech,A1,adoption,2023-01-01"],
            "subscriptions": [S2_ENDED, "S3,A3,50,2024-01-01,,active,false"],
        },
        [("accounts", 1, "A2")],
    ),
    "orphan_subscription_id": (
        {
            "invoices": ["I1,A1,S9,100,2024-02-01", "I2,A1,S1,100,2024-03-01"],
            "events": ["E1,A1,S9,login,2024-02-01T10:00:00Z"],
        },
        [("invoices", 1, "I1"), ("events", 1, "E1")],
    ),
    "orphan_invoice_id": (
        {
            "invoices": ["I1,A1,S1,100,2024-02-01"],
            "payments": [
                "P1,A1,I9,100,2024-02-02T10:00:00Z,failed",
                "P2,A1,I1,100,2024-02-03T10:00:00Z,succeeded",
            ],
        },
        [("payments", 1, "P1")],
    ),
    "orphan_contact_id": (
        {
            "contacts": ["C1,A1,jane@acme.com"],
            "tickets": ["T1,A1,C9,2024-02-01T10:00:00Z", "T2,A1,C1,2024-02-01T10:00:00Z"],
            "responses": ["R1,A1,C9,nps,9,2024-03-01T10:00:00Z"],
        },
        [("tickets", 1, "T1"), ("responses", 1, "R1")],
    ),
    "accounts_without_subscription": (
        {"accounts": [A2, "A3,Initech,,adoption,2023-01-01"]},
        [("accounts", 2, "A2")],
    ),
    "duplicate_keys": (
        {"invoices": ["I1,A1,S1,100,2024-02-01", "I1,A1,S1,120,2024-02-01"]},
        [("invoices", 1, "I1")],
    ),
}
KNOWN_BUGS: dict[str, str] = {}


def write_csv(folder: Path, kind: str, rows: list[str]) -> Path:
    path = folder / f"{kind}.csv"
    path.write_text(HEADERS[kind] + "\n" + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def load(cli: Cli, folder: Path, extra: dict[str, list[str]]) -> None:
    """Import the base plus ``extra``, kind by kind, parents first."""
    for kind in ORDER:
        rows = BASE.get(kind, []) + extra.get(kind, [])
        if rows:
            cli.json("import", kind, write_csv(folder, kind, rows))


def findings(cli: Cli) -> list[dict[str, Any]]:
    data = cli.json("check")
    assert set(data) == {"warnings"}
    warnings: list[dict[str, Any]] = data["warnings"]
    return warnings


def case_params() -> list[Any]:
    params = []
    for backend in BACKENDS:
        for code in CASES:
            marks = []
            if code in KNOWN_BUGS:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[code]))
            params.append(pytest.param(backend, code, id=f"{backend}-{code}", marks=marks))
    return params


@pytest.fixture
def backend_cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    backend = request.param
    if backend == "sqlite":
        return Cli(f"sqlite:///{tmp_path / 'tenure.db'}")
    return Cli(fresh_postgres(request.getfixturevalue("postgres_url")))


@pytest.mark.parametrize(("backend_cli", "code"), case_params(), indirect=["backend_cli"])
def test_each_finding_from_its_smallest_data_set(
    backend_cli: Cli, code: str, tmp_path: Path
) -> None:
    extra, expected = CASES[code]
    load(backend_cli, tmp_path, extra)
    found = findings(backend_cli)
    assert [(f["code"], f["kind"]) for f in found] == sorted(
        ((code, kind) for kind, _, _ in expected), key=lambda pair: ORDER.index(pair[1])
    ), found
    by_kind = {f["kind"]: f for f in found}
    for kind, count, example in expected:
        finding = by_kind[kind]
        assert finding["count"] == count, finding
        assert finding["examples"][0] == example, finding
        assert f"{count:,}" in finding["message"]


def test_every_code_in_quality_has_a_case() -> None:
    """A new check must come with its smallest data set here."""
    source = inspect.getsource(quality)
    literal = set(re.findall(r'ctx\.finding\(\s*[^,]+,\s*"(\w+)"', source))
    literal |= set(re.findall(r'Finding\(\s*kind,\s*"(\w+)"', source))
    before_signup = {f"{fn.__name__}" for fn in quality.CHECKS if "before_signup" in fn.__name__}
    orphans = {
        (kind.name, f"orphan_{name}")
        for kind in KINDS.values()
        for name in kind.references
        if name != "account_id" or kind.name == "accounts"
    }
    assert len(literal) > 10 and len(before_signup) == 3
    assert literal | before_signup | {code for _, code in orphans} == set(CASES)
    covered = {(kind, code) for code, (_, found) in CASES.items() for kind, _, _ in found}
    assert orphans <= covered


CLEAN = {
    "accounts": "account_id,name,domains,segment,lifecycle_stage,created_at,parent_account_id\n"
    "A1,Acme,acme.com,enterprise,adoption,2023-01-01,\n"
    "A2,Acme EU,acme.eu,enterprise,mature,2023-02-01,A1\n"
    "A3,Globex,globex.com,smb,churned,2023-01-01,\n",
    "contacts": "contact_id,account_id,email,name,persona,created_at\n"
    "C1,A1,jane@acme.com,Jane,champion,2023-01-02\n"
    "C2,A3,bob@globex.com,Bob,end_user,2023-01-05\n",
    "subscriptions": "subscription_id,account_id,plan,mrr,start_date,end_date,renewal_date,status,"
    "is_trial\n"
    "S1,A1,Pro,1000,2023-01-01,,2027-01-01,active,false\n"
    "S2,A2,Pro,500,2023-02-01,,2027-02-01,active,false\n"
    "S3,A3,Basic,100,2023-01-01,2024-06-30,,cancelled,false\n",
    "invoices": "invoice_id,account_id,subscription_id,amount,issued_at,due_date,paid_at\n"
    "I1,A1,S1,12000,2024-01-01,2024-01-31,2024-01-20\n"
    "I2,A3,S3,-100,2024-07-01,2024-07-31,\n",
    "payments": "payment_id,account_id,invoice_id,amount,attempted_at,status\n"
    "P1,A1,I1,12000,2024-01-20T10:00:00Z,succeeded\n",
    "events": "event_id,account_id,subscription_id,user_email,event,timestamp\n"
    "E1,A1,S1,jane@acme.com,login,2024-03-01T10:00:00Z\n"
    "E2,,S2,,export,2024-03-02T10:00:00Z\n"
    "E3,A3,S3,bob@globex.com,login,2024-06-30T23:30:00Z\n",
    "tickets": "ticket_id,account_id,contact_id,priority,opened_at,resolved_at\n"
    "T1,A1,C1,P2,2024-02-01T10:00:00Z,2024-02-01T15:00:00Z\n",
    "responses": "response_id,account_id,contact_id,survey,score,responded_at\n"
    "R1,A1,C1,nps,9,2024-04-01T10:00:00Z\n",
    "touchpoints": "touchpoint_id,account_id,type,occurred_at\nTP1,A1,qbr,2024-05-01T10:00:00Z\n",
    "milestones": "milestone_id,account_id,name,planned_date,achieved_date\n"
    "M1,A1,Go live,2023-03-01,2023-03-15\n",
    "opportunities": "opportunity_id,account_id,type,amount,stage,created_at\n"
    "OP1,A1,seat_expansion,5000,qualified,2024-05-01\n",
    "outcomes": "outcome_id,account_id,type,date,arr_change\n"
    "O1,A1,renewed,2024-01-01,0\n"
    "O2,A3,churned,2024-06-30,-1200\n",
}


def test_clean_data_set_of_every_kind_has_no_warnings(cli: Cli, tmp_path: Path) -> None:
    for kind in ORDER:
        path = tmp_path / f"{kind}.csv"
        path.write_text(CLEAN[kind], encoding="utf-8")
        report = cli.json("import", kind, path)
        assert report["rejected"] == 0 and report["held_for_review"] == 0, report
    assert findings(cli) == []
    assert all(count > 0 for count in cli.json("summary")["records"].values())


def test_a_milestone_planned_for_next_year_is_not_a_future_date(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    load(sqlite_cli, tmp_path, {"milestones": ["M1,A1,Expand to EU,2099-06-30,"]})
    assert findings(sqlite_cli) == []


def test_check_without_json_lists_the_findings(sqlite_cli: Cli, tmp_path: Path) -> None:
    load(sqlite_cli, tmp_path, CASES["zero_amount_invoices"][0])
    output = sqlite_cli.run("check").stdout
    assert "zero_amount_invoices" in output and "I1" in output
