"""The record's JSON Schema, and the CLI's promises: one JSON object per command, clean errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from conftest import Cli
from tenure import __version__
from tenure.record import KINDS

ALL_KINDS = tuple(KINDS)

# One valid record of each kind, as the schema describes it.
SAMPLES: dict[str, dict[str, Any]] = {
    "accounts": {
        "account_id": "A1",
        "name": "Acme Robotics",
        "parent_account_id": "A0",
        "domains": ["acme-robotics.com"],
        "segment": "enterprise",
        "lifecycle_stage": "adoption",
        "created_at": "2024-01-15",
    },
    "contacts": {
        "contact_id": "C1",
        "account_id": "A1",
        "email": "jane@acme-robotics.com",
        "persona": "champion",
        "status": "active",
        "is_lead": False,
    },
    "subscriptions": {
        "subscription_id": "S1",
        "account_id": "A1",
        "plan": "Pro",
        "seats": 25,
        "mrr": 1234.5,
        "arr": 14814.0,
        "currency": "EUR",
        "billing_period": "annual",
        "start_date": "2024-01-15",
        "status": "active",
    },
    "invoices": {
        "invoice_id": "I1",
        "account_id": "A1",
        "subscription_id": "S1",
        "amount": -10.5,
        "issued_at": "2024-02-01",
        "status": "refunded",
    },
    "payments": {
        "account_id": "A1",
        "invoice_id": "I1",
        "amount": 100,
        "attempted_at": "2024-02-02T10:00:00Z",
        "status": "failed",
        "failure_reason": "card_declined",
    },
    "events": {
        "account_id": "A1",
        "user_email": "jane@acme-robotics.com",
        "event": "login",
        "timestamp": "2024-03-01T10:00:00Z",
        "count": 3,
        "properties": {"browser": "firefox"},
    },
    "tickets": {
        "ticket_id": "T1",
        "account_id": "A1",
        "priority": "P1",
        "status": "on_hold",
        "opened_at": "2024-03-01T10:00:00Z",
        "csat": 4,
    },
    "responses": {
        "contact_email": "jane@acme-robotics.com",
        "survey": "nps",
        "score": 9,
        "responded_at": "2024-04-01T10:00:00Z",
    },
    "touchpoints": {
        "account_id": "A1",
        "type": "qbr",
        "direction": "outbound",
        "occurred_at": "2024-05-01T10:00:00Z",
        "contact_ids": ["C1"],
    },
    "milestones": {"milestone_id": "M1", "account_id": "A1", "name": "Go live"},
    "opportunities": {
        "opportunity_id": "OP1",
        "account_id": "A1",
        "type": "seat_expansion",
        "stage": "won",
        "created_at": "2024-05-01",
    },
    "outcomes": {"account_id": "A1", "type": "churned", "date": "2024-06-30", "arr_change": -1200},
}
# A field of each kind that takes one of a few values, and a value it does not take.
BAD_ENUM = {
    "accounts": ("lifecycle_stage", "lost"),
    "contacts": ("persona", "ceo"),
    "subscriptions": ("billing_period", "weekly"),
    "invoices": ("status", "draft"),
    "payments": ("status", "paid"),
    "events": ("count", -1),
    "tickets": ("priority", "P0"),
    "responses": ("survey", "ces"),
    "touchpoints": ("type", "sms"),
    "milestones": ("category", "renewal"),
    "opportunities": ("stage", "closed_won"),
    "outcomes": ("type", "churn"),
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    data = Cli("sqlite:///:memory:").json("schema")
    return data


def validator(schema: dict[str, Any], kind: str) -> Draft202012Validator:
    return Draft202012Validator(
        schema | {"$ref": f"#/$defs/{kind}"}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def test_schema_is_valid_draft_2020_12(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert list(schema["$defs"]) == list(ALL_KINDS) == list(KINDS)
    for definition in schema["$defs"].values():
        Draft202012Validator.check_schema(definition)
        assert definition["x-key"] in definition["properties"]
        assert definition["x-time-field"] in definition["properties"]
        assert set(definition["required"]) <= set(definition["properties"])


def test_every_reference_names_a_key_that_exists(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    references = set()
    for kind, definition in defs.items():
        for name, prop in definition["properties"].items():
            if "x-references" in prop:
                target, key = prop["x-references"].split(".")
                assert target in defs, prop
                assert defs[target]["x-key"] == key and key in defs[target]["properties"]
                references.add((f"{kind}.{name}", prop["x-references"]))
    relationships = {(r["from"], r["to"]) for r in schema["x-relationships"]}
    assert relationships == references
    assert len(schema["x-relationships"]) == len(relationships)
    assert {r["cardinality"] for r in schema["x-relationships"]} == {"many-to-one"}
    assert ("accounts.parent_account_id", "accounts.account_id") in relationships
    assert ("payments.invoice_id", "invoices.invoice_id") in relationships


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_sample_record_validates_and_a_bad_value_does_not(
    schema: dict[str, Any], kind: str
) -> None:
    check = validator(schema, kind)
    check.validate(SAMPLES[kind])

    field, value = BAD_ENUM[kind]
    with pytest.raises(ValidationError) as bad:
        check.validate(SAMPLES[kind] | {field: value})
    assert list(bad.value.absolute_path) == [field]

    with pytest.raises(ValidationError):
        check.validate(SAMPLES[kind] | {"no_such_field": 1})
    required = schema["$defs"][kind]["required"]
    with pytest.raises(ValidationError):
        check.validate({k: v for k, v in SAMPLES[kind].items() if k != required[-1]})


def test_formats_are_checked(schema: dict[str, Any]) -> None:
    check = validator(schema, "subscriptions")
    assert not check.is_valid(SAMPLES["subscriptions"] | {"start_date": "15/01/2024"})
    assert not check.is_valid(SAMPLES["subscriptions"] | {"currency": "euro"})
    assert not check.is_valid(SAMPLES["subscriptions"] | {"mrr": -1})
    assert not validator(schema, "contacts").is_valid(SAMPLES["contacts"] | {"email": "jane"})


def test_schema_without_json_lists_every_kind() -> None:
    output = Cli("sqlite:///:memory:").run("schema").stdout
    for kind in ALL_KINDS:
        assert f"{kind}:" in output


# ---------------------------------------------------------------------------------------------
# The CLI.

ACCOUNTS = """account_id,name,domains,segment,lifecycle_stage,created_at
A1,Acme Robotics,acme-robotics.com,enterprise,adoption,2023-01-15
A2,Globex,globex.com,smb,churned,2023-02-01
A3,Initech,initech.example,smb,trial,2023-03-01
"""
# In force today: S1 (open), S2 (ends in 2099, MRR from ARR); not: S3 ended, S4 trial, S5 not begun.
SUBSCRIPTIONS = """subscription_id,account_id,mrr,arr,start_date,end_date,is_trial,status
S1,A1,1000.50,,2023-01-15,,false,active
S2,A1,,2400,2024-01-01,2099-01-01,false,active
S3,A2,300,,2023-02-01,2024-02-01,false,cancelled
S4,A3,50,,2024-03-01,,true,trial
S5,A2,700,,2099-01-01,,false,active
"""
CONTACTS = """contact_id,account_id,email,left_at
C1,A1,jane@acme-robotics.com,
C2,A1,bob@acme-robotics.com,2024-05-01
"""
TICKETS = """ticket_id,account_id,opened_at,resolved_at
T1,A1,2024-02-01T10:00:00Z,
T2,A1,2024-02-02T10:00:00Z,2024-02-02T12:00:00Z
"""
RESPONSES = """account_id,survey,score,responded_at
A1,nps,10,2024-04-01T10:00:00Z
A1,nps,7,2024-04-02T10:00:00Z
A1,csat,2,2024-04-03T10:00:00Z
"""
OUTCOMES = """account_id,type,date,arr_change
A2,churned,2024-02-01,-3600
A1,expanded,2024-01-01,2400
A1,renewed,2024-01-15,
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load_small(cli: Cli, folder: Path) -> None:
    for kind, text in [
        ("accounts", ACCOUNTS),
        ("contacts", CONTACTS),
        ("subscriptions", SUBSCRIPTIONS),
        ("tickets", TICKETS),
        ("responses", RESPONSES),
        ("outcomes", OUTCOMES),
    ]:
        report = cli.json("import", kind, write(folder, f"{kind}.csv", text))
        assert report["rejected"] == 0, report


def test_summary_counts_and_recurring_revenue_in_force(cli: Cli, tmp_path: Path) -> None:
    load_small(cli, tmp_path)
    summary = cli.json("summary")
    records = summary["records"]
    assert list(records) == list(ALL_KINDS)
    assert {k: v for k, v in records.items() if v} == {
        "accounts": 3,
        "contacts": 2,
        "subscriptions": 5,
        "tickets": 2,
        "responses": 3,
        "outcomes": 3,
    }
    assert summary["active_subscriptions"] == 2
    assert summary["mrr"] == pytest.approx(1200.50)
    assert summary["arr"] == pytest.approx(12006.0 + 2400.0)
    assert summary["accounts_by_segment"] == {"smb": 2, "enterprise": 1}
    assert summary["accounts_by_stage"] == {"adoption": 1, "churned": 1, "trial": 1}
    assert summary["contacts_left"] == 1
    assert summary["open_tickets"] == 1
    assert (summary["average_nps"], summary["nps"]) == (8.5, 50.0)  # one promoter, one passive
    assert summary["outcomes"]["churned"] == {
        "count": 1,
        "accounts": 1,
        "arr_change": -3600.0,
        "arr_change_unknown": 0,
    }
    assert summary["outcomes"]["expanded"]["arr_change"] == 2400.0
    assert summary["outcomes"]["renewed"]["count"] == 1
    assert (summary["first_event"], summary["last_event"]) == (None, None)

    text = cli.run("summary").stdout
    assert "1,200.50" in text and "MRR in force" in text


def test_summary_of_an_empty_record(sqlite_cli: Cli) -> None:
    summary = sqlite_cli.json("summary")
    assert set(summary["records"].values()) == {0}
    assert (summary["mrr"], summary["arr"], summary["nps"]) == (0.0, 0.0, None)


def test_every_reporting_command_prints_one_json_object(sqlite_cli: Cli, tmp_path: Path) -> None:
    assert set(sqlite_cli.json("migrate")) == {"database", "revision"}
    assert "$defs" in sqlite_cli.json("schema")
    report = sqlite_cli.json("import", "accounts", write(tmp_path, "a.csv", ACCOUNTS))
    assert report["accepted"] == 3 and report["kind"] == "accounts"
    assert [w["code"] for w in sqlite_cli.json("check")["warnings"]] == ["churned_without_outcome"]
    assert sqlite_cli.json("summary")["records"]["accounts"] == 3
    assert sqlite_cli.json("matches") == {"matches": [], "count": 0}
    assert sqlite_cli.json("matches", "--status", "all")["count"] == 0


def test_demo_with_a_tiny_spec_prints_one_json_object(sqlite_cli: Cli, tmp_path: Path) -> None:
    data = sqlite_cli.json("demo", "--accounts", "3", "--months", "2", "--out", tmp_path / "d")
    assert data["database"].startswith("sqlite")
    assert data["summary"]["records"]["accounts"] == 3
    assert all(i["rejected"] == 0 for i in data["imports"])
    assert all(Path(p).exists() for paths in data["files"].values() for p in paths)


def test_demo_with_no_months_is_a_usage_error(sqlite_cli: Cli, tmp_path: Path) -> None:
    result = sqlite_cli.run("demo", "--accounts", "2", "--months", "0", "--out", tmp_path, code=2)
    assert "--months" in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("migrate", "--db", "nosuch://x"), "cannot open the database"),
        (("check", "--db", "nosuch://x"), "nosuch"),
        (("summary", "--db", "nosuch://x"), "nosuch"),
        (("matches", "--db", "nosuch://x"), "nosuch"),
        (("matches", "accept", "1", "--db", "nosuch://x"), "nosuch"),
        (("import", "accounts", "{tmp}/a.csv", "--db", "nosuch://x"), "nosuch"),
        (("import", "accounts", "{tmp}/missing.csv"), "no such file"),
        (("import", "accounts", "{tmp}/[/x]missing.csv"), "[/x]missing.csv: no such file"),
        (("import", "widgets", "{tmp}/a.csv"), "unknown kind 'widgets'"),
        (("import", "accounts", "{tmp}"), "is a folder"),
        (("import", "accounts", "{tmp}/a.csv", "--mapping", "{tmp}/none.yml"), "none.yml"),
        (("matches", "accept", "7"), "no review with id 7"),
        (("matches", "reject", "7"), "no review with id 7"),
    ],
)
def test_errors_are_one_json_object_and_exit_1(
    sqlite_cli: Cli, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    write(tmp_path, "a.csv", ACCOUNTS)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = sqlite_cli.run(*argv, "--json", code=1)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout
    data = json.loads(lines[0])
    assert set(data) == {"error"}
    assert says in data["error"]
    assert result.exception is None or isinstance(result.exception, SystemExit)

    plain = sqlite_cli.run(*argv, code=1)
    assert "Error:" in plain.output and says in plain.output
    assert not plain.stdout.strip().startswith("{")


def test_version() -> None:
    result = Cli("sqlite:///:memory:").run("--version")
    assert result.stdout.strip() == f"tenure {__version__}"
    assert __version__.count(".") == 2


def test_no_arguments_shows_help() -> None:
    result = Cli("sqlite:///:memory:").run(code=None)
    assert "import" in result.output and "matches" in result.output
