"""Identity resolution: which account a contact or event belongs to, and the review list when unsure.

Unit tests of :class:`AccountDirectory`, then the whole path through ``tenure import`` and
``tenure matches`` on every backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import Cli
from tenure.identity import AccountDirectory, email_domain, normalise_company
from tenure.store import Store
from tenure.store.tables import KIND_TABLES


@pytest.fixture
def directory() -> AccountDirectory:
    found = AccountDirectory()
    found.add("A1", "Acme Robotics, Inc.", ["acme-robotics.com", "www.acme.io"])
    found.add("A2", "Globex Corporation", ["globex.com", "shared.example"])
    found.add("A3", "Initech LLC", ["shared.example", "gmail.com"])
    return found


@pytest.mark.parametrize(
    "email",
    ["jane@acme-robotics.com", "JANE@ACME-ROBOTICS.COM", "jane@eu.acme-robotics.com", "j@acme.io"],
)
def test_domain_and_its_subdomains_match(directory: AccountDirectory, email: str) -> None:
    match = directory.match(email, None)
    assert (match.account_id, match.confidence, match.method) == ("A1", 1.0, "domain")
    assert match.matched


def test_a_lookalike_domain_does_not_match(directory: AccountDirectory) -> None:
    assert not directory.match("x@notacme-robotics.com", None).matched
    assert not directory.match("x@acme-robotics.com.evil.example", None).matched


def test_free_mail_never_matches_even_when_an_account_lists_it(
    directory: AccountDirectory,
) -> None:
    assert "gmail.com" not in directory.by_domain
    match = directory.match("someone@gmail.com", None)
    assert (match.account_id, match.method) == (None, "free-mail")


def test_free_mail_falls_through_to_the_company_name(directory: AccountDirectory) -> None:
    match = directory.match("someone@gmail.com", "Globex Corp.")
    assert (match.account_id, match.method, match.confidence) == ("A2", "name", 1.0)


def test_a_domain_two_accounts_own_is_not_matched(directory: AccountDirectory) -> None:
    for email in ("x@shared.example", "x@team.shared.example"):
        match = directory.match(email, None)
        assert match.account_id is None
        assert match.method == "domain-ambiguous"
        assert {c for c, _ in match.candidates} == {"A2", "A3"}


def test_an_ambiguous_domain_is_settled_by_the_company_name(directory: AccountDirectory) -> None:
    assert directory.match("x@shared.example", "Initech").account_id == "A3"


def test_the_most_specific_domain_wins(directory: AccountDirectory) -> None:
    directory.add("A4", "Globex Europe", ["eu.shared.example"])
    assert directory.match("x@eu.shared.example", None).account_id == "A4"


@pytest.mark.parametrize(
    ("company", "account", "confidence"),
    [
        ("Acme Robotics", "A1", 1.0),
        ("ACME ROBOTICS LTD", "A1", 1.0),
        ("Acme Robotics GmbH", "A1", 1.0),
        ("Globex", "A2", 1.0),
        ("Initech, Inc.", "A3", 1.0),
        ("Acme Robots", "A1", 0.917),
    ],
)
def test_company_name_above_the_threshold_matches(
    directory: AccountDirectory, company: str, account: str, confidence: float
) -> None:
    match = directory.match(None, company)
    assert (match.account_id, match.method) == (account, "name")
    assert match.confidence == pytest.approx(confidence, abs=0.001)
    assert match.candidates[0] == (account, match.confidence)


@pytest.mark.parametrize(
    ("company", "candidate", "low", "high"),
    [("Acme Robotix", "A1", 0.85, 0.9), ("Hooli", "A1", 0.0, 0.7), ("Initrode", "A3", 0.5, 0.9)],
)
def test_company_name_below_the_threshold_is_not_guessed(
    directory: AccountDirectory, company: str, candidate: str, low: float, high: float
) -> None:
    match = directory.match("someone@gmail.com", company)
    assert match.account_id is None and not match.matched
    assert match.method == "name"
    assert low <= match.confidence < high
    assert match.candidates[0] == (candidate, match.confidence)
    assert [c for _, c in match.candidates] == sorted(
        (c for _, c in match.candidates), reverse=True
    )


def test_the_threshold_decides(directory: AccountDirectory) -> None:
    directory.threshold = 0.85
    assert directory.match(None, "Acme Robotix").account_id == "A1"
    directory.threshold = 1.0
    assert directory.match(None, "Acme Robots").account_id is None
    assert directory.match(None, "Acme Robotics Inc").account_id == "A1"


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("ACME Robotics, Inc.", "acme robotics"),
        ("Globex Corporation", "globex"),
        ("Initech L.L.C.", "initech"),
        ("Umbrella GmbH", "umbrella"),
        ("Hooli Pty Ltd", "hooli"),
        ("Stark Industries plc", "stark industries"),
    ],
)
def test_legal_suffixes_are_ignored(name: str, normalised: str) -> None:
    assert normalise_company(name) == normalised


def test_nothing_to_go_on_is_no_match(directory: AccountDirectory) -> None:
    for email, company in [(None, None), ("not-an-email", None), ("x@", None), (None, "Inc.")]:
        match = directory.match(email, company)
        assert match.account_id is None and match.confidence == 0.0
    assert email_domain("Jane@Example.COM ") == "example.com"
    assert email_domain("nobody") is None
    assert not AccountDirectory().match(None, "Acme").matched


def test_domains_with_spaces_and_www_are_cleaned() -> None:
    found = AccountDirectory()
    found.add("A1", None, [" WWW.Acme.io "])
    assert found.match("jane@acme.io", None).account_id == "A1"


def test_a_name_inside_another_is_not_a_confident_match() -> None:
    found = AccountDirectory()
    found.add("B1", "Box", ["box.com"])
    assert not found.match("someone@gmail.com", "Dropbox").matched


# ---------------------------------------------------------------------------------------------
# End to end: import, hold, review.

ACCOUNTS = """account_id,name,domains,segment,created_at
A1,"Acme Robotics, Inc.",acme-robotics.com;acme.io,enterprise,2024-01-15
A2,Globex Corporation,globex.com,smb,2024-02-01
"""

CONTACTS = """email,name,company,created_at
jane@eu.acme-robotics.com,Jane Doe,,2024-03-01
bob@gmail.com,Bob Roe,Globex Corp.,2024-03-02
amy@gmail.com,Amy Poe,Acme Robotix,2024-03-03
zed@initech.example,Zed Moe,Initech,2024-03-04
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def account_of(cli: Cli, kind: str, column: str, value: str) -> list[Any]:
    table = KIND_TABLES[kind]
    store = Store(cli.url)
    try:
        with store.engine.connect() as connection:
            query = select(table.c.account_id).where(table.c[column] == value)
            return list(connection.execute(query).scalars())
    finally:
        store.close()


def imported(cli: Cli, tmp_path: Path) -> dict[str, Any]:
    cli.json("import", "accounts", write(tmp_path, "accounts.csv", ACCOUNTS))
    return cli.json("import", "contacts", write(tmp_path, "contacts.csv", CONTACTS))


def test_contacts_are_matched_or_held(cli: Cli, tmp_path: Path) -> None:
    report = imported(cli, tmp_path)
    assert (report["rows"], report["rejected"], report["held_for_review"]) == (4, 0, 2)
    assert account_of(cli, "contacts", "email", "jane@eu.acme-robotics.com") == ["A1"]
    assert account_of(cli, "contacts", "email", "bob@gmail.com") == ["A2"]
    assert account_of(cli, "contacts", "email", "amy@gmail.com") == []

    listed = cli.json("matches")
    assert listed["count"] == 2 == len(listed["matches"])
    amy, zed = listed["matches"]
    assert (amy["kind"], amy["email"], amy["company"]) == (
        "contacts",
        "amy@gmail.com",
        "Acme Robotix",
    )
    assert (amy["candidate_account_id"], amy["method"], amy["status"]) == ("A1", "name", "pending")
    assert 0.85 <= amy["confidence"] < 0.9
    assert zed["email"] == "zed@initech.example" and zed["confidence"] < 0.6
    assert zed["resolved_account_id"] is None


def test_accept_reject_and_their_errors(cli: Cli, tmp_path: Path) -> None:
    imported(cli, tmp_path)
    amy, zed = cli.json("matches")["matches"]

    done = cli.json("matches", "accept", str(amy["review_id"]))
    assert (done["status"], done["resolved_account_id"]) == ("accepted", "A1")
    assert account_of(cli, "contacts", "email", "amy@gmail.com") == ["A1"]

    again = cli.json("matches", "accept", str(amy["review_id"]), code=1)
    assert again == {"error": f"review {amy['review_id']} is already accepted"}
    plain = cli.run("matches", "accept", str(amy["review_id"]), code=1)
    assert "already accepted" in plain.output

    unknown = cli.json("matches", "accept", str(zed["review_id"]), "--account", "A9", code=1)
    assert unknown == {"error": "unknown account 'A9'"}
    missing = cli.json("matches", "reject", "999", code=1)
    assert missing == {"error": "no review with id 999"}

    rejected = cli.json("matches", "reject", str(zed["review_id"]))
    assert (rejected["status"], rejected["resolved_account_id"]) == ("rejected", None)
    assert account_of(cli, "contacts", "email", "zed@initech.example") == []
    assert cli.json("matches", "accept", str(zed["review_id"]), code=1) == {
        "error": f"review {zed['review_id']} is already rejected"
    }

    assert cli.json("matches")["count"] == 0
    everything = cli.json("matches", "--status", "all")
    assert [m["status"] for m in everything["matches"]] == ["accepted", "rejected"]
    assert cli.json("matches", "--status", "accepted")["count"] == 1
    assert cli.json("summary")["records"]["contacts"] == 3


def test_accept_under_another_account(cli: Cli, tmp_path: Path) -> None:
    imported(cli, tmp_path)
    zed = cli.json("matches")["matches"][1]
    done = cli.json("matches", "accept", str(zed["review_id"]), "--account", "A2")
    assert (done["status"], done["resolved_account_id"]) == ("accepted", "A2")
    assert done["candidate_account_id"] != "A2"
    assert account_of(cli, "contacts", "email", "zed@initech.example") == ["A2"]
    assert account_of(cli, "contacts", "contact_id", "zed@initech.example") == ["A2"]


def test_the_same_file_twice_holds_nothing_new(sqlite_cli: Cli, tmp_path: Path) -> None:
    imported(sqlite_cli, tmp_path)
    again = sqlite_cli.json("import", "contacts", write(tmp_path, "contacts.csv", CONTACTS))
    assert (again["accepted"], again["duplicates"]) == (0, 4)
    assert sqlite_cli.json("matches")["count"] == 2


def test_events_with_only_a_user_email_are_matched_by_domain(cli: Cli, tmp_path: Path) -> None:
    cli.json("import", "accounts", write(tmp_path, "accounts.csv", ACCOUNTS))
    events = (
        "user_email,event,timestamp\n"
        "ann@acme-robotics.com,login,2024-03-01T10:00:00Z\n"
        "bo@eu.globex.com,export,2024-03-02T10:00:00Z\n"
        "cy@gmail.com,login,2024-03-03T10:00:00Z\n"
    )
    report = cli.json("import", "events", write(tmp_path, "events.csv", events))
    assert (report["rows"], report["rejected"], report["held_for_review"]) == (3, 0, 1)
    assert account_of(cli, "events", "user_email", "ann@acme-robotics.com") == ["A1"]
    assert account_of(cli, "events", "user_email", "bo@eu.globex.com") == ["A2"]
    held = cli.json("matches")["matches"]
    assert [(m["kind"], m["email"], m["method"]) for m in held] == [
        ("events", "cy@gmail.com", "free-mail")
    ]
    cli.json("matches", "accept", str(held[0]["review_id"]), code=1)  # no candidate to default to
    cli.json("matches", "accept", str(held[0]["review_id"]), "--account", "A2")
    assert account_of(cli, "events", "user_email", "cy@gmail.com") == ["A2"]
    assert cli.json("summary")["records"]["events"] == 3


def with_threshold(cli: Cli, threshold: str) -> Cli:
    """The same database, with ``TENURE_MATCH_THRESHOLD`` set for every command."""
    cli.runner = CliRunner(env={"TENURE_MATCH_THRESHOLD": threshold})
    return cli


def test_a_lower_threshold_matches_what_the_default_holds(cli: Cli, tmp_path: Path) -> None:
    report = imported(with_threshold(cli, "0.85"), tmp_path)
    assert report["held_for_review"] == 1
    assert account_of(cli, "contacts", "email", "amy@gmail.com") == ["A1"]
    assert [m["email"] for m in cli.json("matches")["matches"]] == ["zed@initech.example"]


def test_a_threshold_of_one_holds_even_near_exact_names(sqlite_cli: Cli, tmp_path: Path) -> None:
    sqlite_cli.json("import", "accounts", write(tmp_path, "accounts.csv", ACCOUNTS))
    near = "email,company\nbob@gmail.com,Globex Corp.\nsue@gmail.com,Globexx Inc.\n"
    default = sqlite_cli.json("import", "contacts", write(tmp_path, "near.csv", near))
    assert default["held_for_review"] == 0

    strict = with_threshold(Cli(sqlite_cli.url.replace("tenure.db", "strict.db")), "1")
    strict.json("import", "accounts", write(tmp_path, "accounts.csv", ACCOUNTS))
    report = strict.json("import", "contacts", write(tmp_path, "near.csv", near))
    assert report["held_for_review"] == 1
    assert [m["company"] for m in strict.json("matches")["matches"]] == ["Globexx Inc."]


def test_a_bad_threshold_is_an_error_not_a_traceback(sqlite_cli: Cli) -> None:
    data = with_threshold(sqlite_cli, "1.5").json("matches", code=1)
    assert "TENURE_MATCH_THRESHOLD" in data["error"]


def test_an_accepted_match_is_not_held_again(cli: Cli, tmp_path: Path) -> None:
    cli.json("import", "accounts", write(tmp_path, "accounts.csv", ACCOUNTS))
    contacts = write(tmp_path, "c.csv", "email,name,company\nzed@gmail.com,Zed,Unknown Co\n")
    assert cli.json("import", "contacts", contacts)["held_for_review"] == 1
    review_id = cli.json("matches")["matches"][0]["review_id"]
    cli.json("matches", "accept", str(review_id), "--account", "A2")
    again = cli.json("import", "contacts", contacts)
    assert (again["accepted"], again["duplicates"], again["held_for_review"]) == (0, 1, 0)
    assert cli.json("matches")["count"] == 0


def test_an_unknown_review_status_is_an_error(sqlite_cli: Cli) -> None:
    data = sqlite_cli.json("matches", "--status", "bogus", code=1)
    assert "bogus" in data["error"]
