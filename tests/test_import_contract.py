"""The import contract, on every backend: counts add up, re-import changes nothing, bad rows say why."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from conftest import Cli
from tenure.store import KIND_TABLES, Store

ACCOUNTS = """account_id,name,domains,segment,lifecycle_stage,created_at
A1,Acme Robotics,acme-robotics.com,enterprise,adoption,2024-01-15
A2,Globex,globex.com,smb,onboarding,2024-02-01
"""

SUBSCRIPTIONS = """subscription_id,account_id,plan,seats,mrr,start_date,renewal_date
S1,A1,Pro,25,"1,234.50",2024-01-15,2025-01-15
S2,A2,Basic,-3,100,2024-02-01,2025-02-01
S3,A9,Basic,3,100,2024-02-01,2025-02-01
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_add_up_and_bad_rows_name_the_field(cli: Cli, tmp_path: Path) -> None:
    cli.json("import", "accounts", write(tmp_path, "a.csv", ACCOUNTS))
    report = cli.json("import", "subscriptions", write(tmp_path, "s.csv", SUBSCRIPTIONS))
    assert (report["rows"], report["accepted"], report["rejected"]) == (3, 1, 2)
    assert report["rows"] == report["accepted"] + report["rejected"] + report["duplicates"]
    errors = {(e["row"], e["field"]) for e in report["errors"]}
    assert errors == {(2, "seats"), (3, "account_id")}
    assert "A9" in next(e["reason"] for e in report["errors"] if e["row"] == 3)


def test_same_file_twice_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", ACCOUNTS)
    first = cli.json("import", "accounts", path)
    second = cli.json("import", "accounts", path)
    assert first["accepted"] == 2
    assert (second["accepted"], second["duplicates"], second["rejected"]) == (0, 2, 0)


def test_changed_entity_is_updated_not_duplicated(cli: Cli, tmp_path: Path) -> None:
    cli.json("import", "accounts", write(tmp_path, "a.csv", ACCOUNTS))
    changed = ACCOUNTS.replace("Globex,globex.com,smb", "Globex,globex.com,mid-market")
    report = cli.json("import", "accounts", write(tmp_path, "b.csv", changed))
    assert (report["accepted"], report["duplicates"]) == (1, 1)


def test_events_without_ids_get_deterministic_ids(cli: Cli, tmp_path: Path) -> None:
    cli.json("import", "accounts", write(tmp_path, "a.csv", ACCOUNTS))
    events = "account_id,user_id,event,timestamp\nA1,u1,login,2024-03-01T10:00:00Z\nA1,u2,login,2024-03-01 11:00\n"
    path = write(tmp_path, "e.csv", events)
    assert cli.json("import", "events", path)["accepted"] == 2
    again = cli.json("import", "events", path)
    assert (again["accepted"], again["duplicates"]) == (0, 2)


def test_a_narrower_export_leaves_other_fields_alone(cli: Cli, tmp_path: Path) -> None:
    cli.json("import", "accounts", write(tmp_path, "a.csv", ACCOUNTS))
    narrow = "account_id,owner\nA1,Dana\n"
    report = cli.json("import", "accounts", write(tmp_path, "owners.csv", narrow))
    assert report["accepted"] == 1
    again = cli.json("import", "accounts", write(tmp_path, "owners.csv", narrow))
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    blank = "account_id,owner,segment\nA1,,\n"
    cli.json("import", "accounts", write(tmp_path, "blank.csv", blank))
    store = Store(cli.url)
    table = KIND_TABLES["accounts"]
    with store.engine.connect() as connection:
        row = connection.execute(select(table).where(table.c.account_id == "A1")).mappings().one()
    store.close()
    assert row["name"] == "Acme Robotics" and row["domains"] == ["acme-robotics.com"]
    assert row["owner"] is None and row["segment"] is None  # a blank cell in a column it carries


def test_a_narrower_export_keeps_derived_and_default_fields(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    sqlite_cli.json("import", "accounts", write(tmp_path, "a.csv", ACCOUNTS))
    people = "contact_id,account_id,email,persona,left_at,is_lead\nC1,A1,c1@acme-robotics.com,champion,2024-05-01,true\n"
    sqlite_cli.json("import", "contacts", write(tmp_path, "c.csv", people))
    titles = "contact_id,account_id,title\nC1,A1,VP Operations\n"
    assert sqlite_cli.json("import", "contacts", write(tmp_path, "t.csv", titles))["accepted"] == 1
    store = Store(sqlite_cli.url)
    table = KIND_TABLES["contacts"]
    with store.engine.connect() as connection:
        row = connection.execute(select(table)).mappings().one()
    store.close()
    assert (row["title"], row["status"], row["is_lead"], row["persona"]) == (
        "VP Operations",
        "left",
        True,
        "champion",
    )
