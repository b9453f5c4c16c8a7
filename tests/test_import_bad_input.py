"""Bad and awkward input files, through the CLI: what a user sees, and what ends up stored.

Each test imports one troublesome file with ``tenure import KIND FILE --json`` and checks the report a
user reads (counts, reasons naming row and field, warnings, refusals) and the rows in the database.
"""

from __future__ import annotations

import gc
import gzip
import json
import sqlite3
import warnings
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from conftest import Cli
from tenure.ingest import ImportRefused, import_file
from tenure.record import KINDS
from tenure.record.fields import MAX_TEXT
from tenure.store import KIND_TABLES, Store
from tenure.store.tables import imports, rejections

ACCOUNTS = """account_id,name,domains,segment,lifecycle_stage,created_at
A1,Acme Robotics,acme-robotics.com,enterprise,adoption,2024-01-15
A2,Globex,globex.com,smb,onboarding,2024-02-01
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding, newline="")
    return path


def stored(cli: Cli, kind: str) -> list[dict[str, Any]]:
    """Every stored row of ``kind``, ordered by key, as plain dicts."""
    store = Store(cli.url)
    try:
        table = KIND_TABLES[kind]
        with store.engine.connect() as connection:
            query = select(table).order_by(table.c[KINDS[kind].key])
            return [dict(row) for row in connection.execute(query).mappings()]
    finally:
        store.close()


def nothing_written(cli: Cli) -> None:
    """No record of any kind, no import logged, no rejection kept."""
    store = Store(cli.url)
    try:
        assert set(store.counts().values()) == {0}
        with store.engine.connect() as connection:
            for table in (imports, rejections):
                count = select(func.count()).select_from(table)
                assert connection.execute(count).scalar_one() == 0
    finally:
        store.close()


def import_json(cli: Cli, kind: str, path: Path, *extra: str, code: int = 0) -> dict[str, Any]:
    return cli.json("import", kind, str(path), *extra, code=code)


def seed_accounts(cli: Cli, tmp_path: Path) -> None:
    report = import_json(cli, "accounts", write(tmp_path, "seed-accounts.csv", ACCOUNTS))
    assert report["accepted"] == 2


def adds_up(report: dict[str, Any]) -> None:
    assert report["rows"] == report["accepted"] + report["rejected"] + report["duplicates"]


def error_fields(report: dict[str, Any]) -> set[tuple[int, str]]:
    return {(e["row"], e["field"]) for e in report["errors"]}


def refused(cli: Cli, args: Sequence[str]) -> str:
    """Run an import expected to be refused; return the error a user reads."""
    data = cli.json("import", *args, code=1)
    assert set(data) == {"error"}
    message: str = data["error"]
    assert message.startswith("refused, nothing imported")
    return message


# --- whole-file problems --------------------------------------------------------------------


def test_empty_file_is_refused(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.csv", "")
    message = refused(sqlite_cli, ["accounts", str(path)])
    assert "empty" in message
    nothing_written(sqlite_cli)


def test_header_only_is_accepted_with_a_warning(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.csv", "account_id,name,created_at\n")
    report = import_json(sqlite_cli, "accounts", path)
    assert (report["rows"], report["accepted"], report["rejected"]) == (0, 0, 0)
    assert any("no data rows" in w for w in report["warnings"])
    assert stored(sqlite_cli, "accounts") == []


def test_semicolon_delimited_file_imports(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = "account_id;name;segment\nA1;Acme, Inc.;enterprise\nA2;Globex;smb\n"
    report = import_json(sqlite_cli, "accounts", write(tmp_path, "accounts.csv", text))
    assert report["delimiter"] == ";"
    assert (report["rows"], report["accepted"], report["rejected"]) == (2, 2, 0)
    rows = stored(sqlite_cli, "accounts")
    assert [(r["account_id"], r["name"], r["segment"]) for r in rows] == [
        ("A1", "Acme, Inc.", "enterprise"),
        ("A2", "Globex", "smb"),
    ]


def test_utf8_byte_order_mark_does_not_hide_the_first_column(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(b"\xef\xbb\xbfaccount_id,name\nA1,Acme\n")
    report = import_json(sqlite_cli, "accounts", path)
    assert (report["accepted"], report["rejected"]) == (1, 0)
    assert report["warnings"] == []
    (row,) = stored(sqlite_cli, "accounts")
    assert (row["account_id"], row["name"], row["attributes"]) == ("A1", "Acme", None)


def test_latin1_text_survives_with_an_encoding_warning(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, "accounts.csv", "account_id,name\nA1,Café Müller\n", "latin-1")
    report = import_json(sqlite_cli, "accounts", path)
    assert report["accepted"] == 1
    assert report["encoding"] == "cp1252"
    assert any("Latin-1" in w and "encoding" in w for w in report["warnings"])
    assert stored(sqlite_cli, "accounts")[0]["name"] == "Café Müller"


def test_missing_required_column_is_refused_and_nothing_written(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    seed_accounts(sqlite_cli, tmp_path)
    text = "subscription_id,account_id,mrr\nS1,A1,100\n"
    message = refused(sqlite_cli, ["subscriptions", str(write(tmp_path, "subs.csv", text))])
    assert "required column missing" in message
    assert "start_date" in message
    assert stored(sqlite_cli, "subscriptions") == []
    assert sqlite_cli.json("summary")["records"]["subscriptions"] == 0


def test_unknown_kind_is_refused_with_the_kinds(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, "widgets.csv", "widget_id\nW1\n")
    message = refused(sqlite_cli, ["widgets", str(path)])
    assert "unknown kind 'widgets'" in message
    for kind in KINDS:
        assert kind in message
    nothing_written(sqlite_cli)


def test_mapping_with_unknown_field_names_file_line_and_field(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    data = write(tmp_path, "crm.csv", "Id,Company\nA1,Acme\n")
    mapping = write(
        tmp_path,
        "crm.yaml",
        "kind: accounts\ncolumns:\n  account_id: Id\n  company_size: Company\n",
    )
    message = refused(sqlite_cli, ["accounts", str(data), "--mapping", str(mapping)])
    assert f"{mapping}:4:" in message
    assert "company_size" in message
    nothing_written(sqlite_cli)


def test_gzip_file_named_csv_is_refused(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(gzip.compress(ACCOUNTS.encode(), mtime=0))
    message = refused(sqlite_cli, ["accounts", str(path)])
    assert "not a text file" in message
    assert "compressed" in message
    nothing_written(sqlite_cli)


def test_gzip_suffix_is_refused_naming_the_formats(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv.gz"
    path.write_bytes(gzip.compress(ACCOUNTS.encode(), mtime=0))
    message = refused(sqlite_cli, ["accounts", str(path)])
    assert "'.gz'" in message
    assert ".csv" in message and ".parquet" in message
    nothing_written(sqlite_cli)


def test_binary_file_named_parquet_is_refused(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "accounts.parquet"
    path.write_bytes(gzip.compress(ACCOUNTS.encode(), mtime=0))
    message = refused(sqlite_cli, ["accounts", str(path)])
    assert "not a readable Parquet file" in message
    nothing_written(sqlite_cli)


def test_gzip_file_named_jsonl_is_refused(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "accounts.jsonl"
    path.write_bytes(gzip.compress(b'{"account_id": "A1"}\n', mtime=0))
    message = refused(sqlite_cli, ["accounts", str(path)])
    assert "not a text file" in message
    nothing_written(sqlite_cli)


# --- columns and values ---------------------------------------------------------------------


def test_extra_columns_are_kept_as_attributes(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = "account_id,name,health_note,csm_region\nA1,Acme,watch renewal,EMEA\nA2,Globex,,APAC\n"
    report = import_json(sqlite_cli, "accounts", write(tmp_path, "accounts.csv", text))
    assert report["accepted"] == 2
    rows = {r["account_id"]: r for r in stored(sqlite_cli, "accounts")}
    assert rows["A1"]["attributes"] == {"health_note": "watch renewal", "csm_region": "EMEA"}
    assert rows["A2"]["attributes"] == {"csm_region": "APAC"}


def test_extra_event_columns_are_kept_as_properties(sqlite_cli: Cli, tmp_path: Path) -> None:
    seed_accounts(sqlite_cli, tmp_path)
    text = "account_id,event,timestamp,browser,plan\nA1,login,2024-03-05T10:00:00Z,Firefox,pro\n"
    report = import_json(sqlite_cli, "events", write(tmp_path, "events.csv", text))
    assert report["accepted"] == 1
    (row,) = stored(sqlite_cli, "events")
    assert row["properties"] == {"browser": "Firefox", "plan": "pro"}


def test_wrong_types_are_rejected_naming_row_and_field(cli: Cli, tmp_path: Path) -> None:
    seed_accounts(cli, tmp_path)
    text = (
        "subscription_id,account_id,seats,mrr,start_date\n"
        "S1,A1,10,100,2024-01-01\n"
        "S2,A1,many,100,2024-01-01\n"
        "S3,A1,5,lots,2024-01-01\n"
    )
    report = import_json(cli, "subscriptions", write(tmp_path, "subs.csv", text))
    assert (report["rows"], report["accepted"], report["rejected"]) == (3, 1, 2)
    adds_up(report)
    assert error_fields(report) == {(2, "seats"), (3, "mrr")}
    seats = next(e for e in report["errors"] if e["field"] == "seats")
    assert "'many'" in seats["reason"]
    assert [r["subscription_id"] for r in stored(cli, "subscriptions")] == ["S1"]


def test_negative_seats_are_rejected(sqlite_cli: Cli, tmp_path: Path) -> None:
    seed_accounts(sqlite_cli, tmp_path)
    text = "subscription_id,account_id,seats,mrr,start_date\nS1,A1,-3,100,2024-01-01\n"
    report = import_json(sqlite_cli, "subscriptions", write(tmp_path, "subs.csv", text))
    assert (report["accepted"], report["rejected"]) == (0, 1)
    (error,) = report["errors"]
    assert (error["row"], error["field"]) == (1, "seats")
    assert "at least 0" in error["reason"]
    assert stored(sqlite_cli, "subscriptions") == []


def test_money_with_thousands_separator(sqlite_cli: Cli, tmp_path: Path) -> None:
    seed_accounts(sqlite_cli, tmp_path)
    text = 'subscription_id,account_id,mrr,start_date\nS1,A1,"1,234.50",2024-01-01\n'
    report = import_json(sqlite_cli, "subscriptions", write(tmp_path, "subs.csv", text))
    assert report["accepted"] == 1
    (row,) = stored(sqlite_cli, "subscriptions")
    assert row["mrr"] == 1234.5
    assert row["arr"] == 14814.0


def test_dates_in_five_formats_are_the_same_date(sqlite_cli: Cli, tmp_path: Path) -> None:
    seed_accounts(sqlite_cli, tmp_path)
    formats = ["2024-03-05", "2024/03/05", "20240305", "5 Mar 2024", "Mar 5, 2024"]
    lines = [f'S{i},A1,100,"{raw}"' for i, raw in enumerate(formats, start=1)]
    text = "subscription_id,account_id,mrr,start_date\n" + "\n".join(lines) + "\n"
    report = import_json(sqlite_cli, "subscriptions", write(tmp_path, "subs.csv", text))
    assert (report["accepted"], report["rejected"]) == (5, 0)
    assert {r["start_date"] for r in stored(sqlite_cli, "subscriptions")} == {date(2024, 3, 5)}


def test_ambiguous_date_is_rejected_unless_the_mapping_says_the_order(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    seed_accounts(sqlite_cli, tmp_path)
    text = "subscription_id,account_id,mrr,start_date\nS1,A1,100,03/04/2024\n"
    path = write(tmp_path, "subs.csv", text)
    report = import_json(sqlite_cli, "subscriptions", path)
    assert (report["accepted"], report["rejected"]) == (0, 1)
    (error,) = report["errors"]
    assert error["field"] == "start_date"
    assert "ambiguous" in error["reason"] and "date_order" in error["reason"]

    mapping = write(tmp_path, "dmy.yaml", "kind: subscriptions\ndate_order: DMY\n")
    report = import_json(sqlite_cli, "subscriptions", path, "--mapping", str(mapping))
    assert (report["accepted"], report["rejected"]) == (1, 0)
    assert stored(sqlite_cli, "subscriptions")[0]["start_date"] == date(2024, 4, 3)


EVENTS_WITH_ZONES = """event_id,account_id,event,timestamp
E1,A1,login,2024-03-05T10:00:00+02:00
E2,A1,login,2024-03-05T10:00:00
E3,A1,login,2024-03-05T10:00:00Z
E4,A1,login,2024-03-05 10:00
"""


def test_timestamps_are_stored_in_utc(sqlite_cli: Cli, tmp_path: Path) -> None:
    seed_accounts(sqlite_cli, tmp_path)
    path = write(tmp_path, "events.csv", EVENTS_WITH_ZONES)
    report = import_json(sqlite_cli, "events", path)
    assert (report["accepted"], report["rejected"]) == (4, 0)
    times = {r["event_id"]: r["timestamp"] for r in stored(sqlite_cli, "events")}
    assert times == {
        "E1": datetime(2024, 3, 5, 8, 0),
        "E2": datetime(2024, 3, 5, 10, 0),
        "E3": datetime(2024, 3, 5, 10, 0),
        "E4": datetime(2024, 3, 5, 10, 0),
    }


def test_mapping_timezone_shifts_times_without_a_zone(sqlite_cli: Cli, tmp_path: Path) -> None:
    seed_accounts(sqlite_cli, tmp_path)
    path = write(tmp_path, "events.csv", EVENTS_WITH_ZONES)
    mapping = write(tmp_path, "paris.yaml", "kind: events\ntimezone: Europe/Paris\n")
    report = import_json(sqlite_cli, "events", path, "--mapping", str(mapping))
    assert (report["accepted"], report["rejected"]) == (4, 0)
    times = {r["event_id"]: r["timestamp"] for r in stored(sqlite_cli, "events")}
    assert times == {
        "E1": datetime(2024, 3, 5, 8, 0),  # its own offset wins
        "E2": datetime(2024, 3, 5, 9, 0),  # Paris is UTC+1 in March
        "E3": datetime(2024, 3, 5, 10, 0),
        "E4": datetime(2024, 3, 5, 9, 0),
    }


# --- rows seen before -----------------------------------------------------------------------


def test_duplicate_rows_within_a_file(cli: Cli, tmp_path: Path) -> None:
    text = ACCOUNTS + "A1,Acme Robotics,acme-robotics.com,enterprise,adoption,2024-01-15\n"
    report = import_json(cli, "accounts", write(tmp_path, "accounts.csv", text))
    assert (report["rows"], report["accepted"], report["duplicates"]) == (3, 2, 1)
    adds_up(report)
    assert [r["account_id"] for r in stored(cli, "accounts")] == ["A1", "A2"]

    events = "account_id,event,timestamp\n" + "A1,login,2024-03-05T10:00:00Z\n" * 3
    events += "A1,logout,2024-03-05T11:00:00Z\n"
    report = import_json(cli, "events", write(tmp_path, "events.csv", events))
    assert (report["rows"], report["accepted"], report["duplicates"]) == (4, 2, 2)
    adds_up(report)
    assert len(stored(cli, "events")) == 2


def test_conflicting_rows_within_a_file_keep_the_first(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = ACCOUNTS + "A1,Acme Renamed,acme-robotics.com,enterprise,adoption,2024-01-15\n"
    report = import_json(sqlite_cli, "accounts", write(tmp_path, "accounts.csv", text))
    assert (report["rows"], report["accepted"], report["rejected"]) == (3, 2, 1)
    adds_up(report)
    (error,) = report["errors"]
    assert (error["row"], error["field"]) == (3, "account_id")
    assert "first at row 1" in error["reason"]
    assert stored(sqlite_cli, "accounts")[0]["name"] == "Acme Robotics"


def test_same_file_twice_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    seed_accounts(cli, tmp_path)
    events = (
        "account_id,event,timestamp,browser\n"
        "A1,login,2024-03-05T10:00:00Z,Firefox\n"
        "A2,login,2024-03-05T10:05:00Z,Safari\n"
        "A2,export,2024-03-05T10:06:00Z,\n"
    )
    for kind, path in (
        ("accounts", write(tmp_path, "accounts.csv", ACCOUNTS)),
        ("events", write(tmp_path, "events.csv", events)),
    ):
        import_json(cli, kind, path)
        before = stored(cli, kind)
        again = import_json(cli, kind, path)
        assert again["accepted"] == 0
        assert again["rejected"] == 0
        assert again["duplicates"] == again["rows"] > 0
        assert stored(cli, kind) == before


def test_unknown_account_ids_are_rejected_naming_the_id(cli: Cli, tmp_path: Path) -> None:
    seed_accounts(cli, tmp_path)
    text = (
        "subscription_id,account_id,mrr,start_date\n"
        "S1,A1,100,2024-01-01\n"
        "S2,ACME-404,100,2024-01-01\n"
    )
    report = import_json(cli, "subscriptions", write(tmp_path, "subs.csv", text))
    assert (report["accepted"], report["rejected"]) == (1, 1)
    (error,) = report["errors"]
    assert (error["row"], error["field"]) == (2, "account_id")
    assert "'ACME-404'" in error["reason"]
    assert [r["subscription_id"] for r in stored(cli, "subscriptions")] == ["S1"]


# --- text at the edges ----------------------------------------------------------------------


def _ticket_file(tmp_path: Path, body: str) -> Path:
    return write(
        tmp_path, "tickets.csv", f"ticket_id,account_id,opened_at,body\nT1,A1,2024-03-05,{body}\n"
    )


def test_ten_megabyte_text_is_stored_intact(sqlite_cli: Cli, tmp_path: Path) -> None:
    seed_accounts(sqlite_cli, tmp_path)
    body = ("Lorem ipsum dolor sit amet; " * 400_000)[:10_000_000]
    assert len(body) == 10_000_000 <= MAX_TEXT
    report = import_json(sqlite_cli, "tickets", _ticket_file(tmp_path, body))
    assert (report["accepted"], report["rejected"]) == (1, 0)
    (row,) = stored(sqlite_cli, "tickets")
    assert row["body"] == body


def test_text_over_the_limit_is_rejected_naming_the_limit(sqlite_cli: Cli, tmp_path: Path) -> None:
    seed_accounts(sqlite_cli, tmp_path)
    body = "x" * (11 * 1024 * 1024)
    assert len(body) > MAX_TEXT
    report = import_json(sqlite_cli, "tickets", _ticket_file(tmp_path, body))
    assert (report["accepted"], report["rejected"]) == (0, 1)
    (error,) = report["errors"]
    assert (error["row"], error["field"]) == (1, "body")
    assert f"{MAX_TEXT:,}" in error["reason"]
    assert stored(sqlite_cli, "tickets") == []


NON_LATIN = {
    "J1": "株式会社テスト商事",
    "G1": "Ελληνική Εταιρεία Λογισμικού Α.Ε.",
    "R1": "شركة الاختبار للبرمجيات",
    "M1": "Ünïcödé ✓ 🚀 Ltd",
}


def test_non_latin_names_round_trip(cli: Cli, tmp_path: Path) -> None:
    lines = [f"{key},{name},2024-01-15" for key, name in NON_LATIN.items()]
    text = "account_id,name,created_at\n" + "\n".join(lines) + "\n"
    report = import_json(cli, "accounts", write(tmp_path, "accounts.csv", text))
    assert (report["accepted"], report["rejected"], report["warnings"]) == (4, 0, [])
    assert {r["account_id"]: r["name"] for r in stored(cli, "accounts")} == NON_LATIN


def test_text_starting_with_equals_is_plain_data(cli: Cli, tmp_path: Path) -> None:
    seed_accounts(cli, tmp_path)
    formula = '=HYPERLINK("x")'
    tricky = "=cmd|' /C calc'!A0"
    text = (
        "account_id,name,created_at\n"
        'F1,"=HYPERLINK(""x"")",2024-01-15\n'  # CSV doubles the quotes inside a quoted cell
        "F2,=cmd|' /C calc'!A0,2024-01-15\n"
    )
    report = import_json(cli, "accounts", write(tmp_path, "formula.csv", text))
    assert (report["accepted"], report["rejected"]) == (2, 0)
    names = {r["account_id"]: r["name"] for r in stored(cli, "accounts")}
    assert (names["F1"], names["F2"]) == (formula, tricky)

    tickets = "ticket_id,account_id,opened_at,subject\nT1,A1,2024-03-05,=1+2\n"
    assert import_json(cli, "tickets", write(tmp_path, "t.csv", tickets))["accepted"] == 1
    assert stored(cli, "tickets")[0]["subject"] == "=1+2"


# --- other formats --------------------------------------------------------------------------


def test_jsonl_with_one_broken_line(sqlite_cli: Cli, tmp_path: Path) -> None:
    lines = [
        json.dumps({"account_id": "A1", "name": "Acme"}),
        '{"account_id": "A2", "name": ',
        json.dumps({"account_id": "A3", "name": "Initech"}),
        json.dumps(["not", "an", "object"]),
    ]
    path = write(tmp_path, "accounts.jsonl", "\n".join(lines) + "\n")
    report = import_json(sqlite_cli, "accounts", path)
    assert (report["rows"], report["accepted"], report["rejected"]) == (4, 2, 2)
    adds_up(report)
    assert error_fields(report) == {(2, "_row"), (4, "_row")}
    assert "not valid JSON" in report["errors"][0]["reason"]
    assert [r["account_id"] for r in stored(sqlite_cli, "accounts")] == ["A1", "A3"]


def test_parquet_imports_the_same_records_as_csv(tmp_path: Path) -> None:
    csv_text = (
        "account_id,name,domains,segment,lifecycle_stage,created_at,seats_note\n"
        "A1,Acme Robotics,acme.com;acme.io,enterprise,Active,2024-01-15,big\n"
        "A2,Globex,globex.com,smb,onboarding,2024-02-01,\n"
        "A3,株式会社テスト,,,,,\n"
    )
    table = pa.table(
        {
            "account_id": ["A1", "A2", "A3"],
            "name": ["Acme Robotics", "Globex", "株式会社テスト"],
            "domains": ["acme.com;acme.io", "globex.com", None],
            "segment": ["enterprise", "smb", None],
            "lifecycle_stage": ["Active", "onboarding", None],
            "created_at": pa.array([date(2024, 1, 15), date(2024, 2, 1), None], pa.date32()),
            "seats_note": ["big", None, None],
        }
    )
    parquet_path = tmp_path / "accounts.parquet"
    pq.write_table(table, parquet_path)

    from_csv = Cli(f"sqlite:///{tmp_path / 'csv.db'}")
    from_parquet = Cli(f"sqlite:///{tmp_path / 'parquet.db'}")
    csv_report = import_json(from_csv, "accounts", write(tmp_path, "accounts.csv", csv_text))
    parquet_report = import_json(from_parquet, "accounts", parquet_path)
    assert parquet_report["format"] == "parquet"
    for report in (csv_report, parquet_report):
        assert (report["rows"], report["accepted"], report["rejected"]) == (3, 3, 0)
    assert stored(from_parquet, "accounts") == stored(from_csv, "accounts")
    first = stored(from_parquet, "accounts")[0]
    assert first["domains"] == ["acme.com", "acme.io"]
    assert first["lifecycle_stage"] == "adoption"
    assert first["attributes"] == {"seats_note": "big"}

    # The same records again, from the other format, are duplicates of what is stored.
    again = import_json(from_csv, "accounts", parquet_path)
    assert (again["accepted"], again["duplicates"]) == (0, 3)


# --- refused files are closed ---------------------------------------------------------------


def _refusal_leaks(store: Store, kind: str, path: Path) -> list[str]:
    """Import ``path`` expecting a refusal; return the ResourceWarnings for files left open."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            import_file(store, kind, path)
        except ImportRefused:
            pass
        else:
            pytest.fail(f"{path.name} was not refused")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_file_refused_for_a_missing_column_is_closed(sqlite_store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "subs.csv", "subscription_id,account_id,mrr\nS1,A1,100\n")
    assert _refusal_leaks(sqlite_store, "subscriptions", path) == []


def test_binary_file_named_jsonl_is_closed(sqlite_store: Store, tmp_path: Path) -> None:
    path = tmp_path / "accounts.jsonl"
    path.write_bytes(gzip.compress(b'{"account_id": "A1"}\n', mtime=0))
    assert _refusal_leaks(sqlite_store, "accounts", path) == []


def test_jsonl_keys_first_seen_late_are_kept(sqlite_cli: Cli, tmp_path: Path) -> None:
    sqlite_cli.json("import", "accounts", write(tmp_path, "a.csv", "account_id,name\nA1,Acme\n"))
    lines = [
        json.dumps(
            {
                "account_id": "A1",
                "event": "login",
                "timestamp": f"2024-03-01T10:{i % 60:02d}:00Z",
                "user_id": f"u{i}",
            }
        )
        for i in range(3000)
    ]
    lines.append(
        json.dumps(
            {
                "account_id": "A1",
                "event": "login",
                "timestamp": "2024-03-02T10:00:00Z",
                "user_id": "late",
                "plan": "gold",
            }
        )
    )
    path = write(tmp_path, "events.jsonl", "\n".join(lines) + "\n")
    report = sqlite_cli.json("import", "events", path)
    assert report["accepted"] == 3001
    with sqlite3.connect(sqlite_cli.url.removeprefix("sqlite:///")) as db:
        stored = db.execute("select properties from events where user_id = 'late'").fetchone()[0]
    assert json.loads(stored) == {"plan": "gold"}


def test_negative_money_with_a_currency_mark(sqlite_cli: Cli, tmp_path: Path) -> None:
    sqlite_cli.json("import", "accounts", write(tmp_path, "a.csv", "account_id,name\nA1,Acme\n"))
    invoices = "invoice_id,account_id,amount,issued_at\nI1,A1,-$1,234.50,2024-03-01\nI2,A1,--5,2024-03-01\n"
    report = sqlite_cli.json(
        "import",
        "invoices",
        write(tmp_path, "i.csv", invoices.replace("-$1,234.50", '"-$1,234.50"')),
    )
    assert (report["accepted"], report["rejected"]) == (1, 1)
    assert report["errors"][0]["field"] == "amount"


def test_whole_numbers_beyond_64_bits_are_rejected_not_rounded(cli: Cli, tmp_path: Path) -> None:
    cli.json("import", "accounts", write(tmp_path, "a.csv", "account_id,name\nA1,Acme\n"))
    events = (
        "account_id,event,timestamp,count\n"
        "A1,login,2024-03-01T10:00:00Z,99999999999999999999\n"
        "A1,login,2024-03-01T11:00:00Z,9007199254740993\n"
    )
    report = cli.json("import", "events", write(tmp_path, "e.csv", events))
    assert (report["accepted"], report["rejected"]) == (1, 1)
    assert report["errors"][0]["field"] == "count" and "too large" in report["errors"][0]["reason"]
    store = Store(cli.url)
    with store.engine.connect() as connection:
        counts = connection.execute(select(KIND_TABLES["events"].c.count)).scalars().all()
    store.close()
    assert counts == [9007199254740993]  # exact, not rounded through a float


def test_nul_characters_are_rejected_on_every_backend(cli: Cli, tmp_path: Path) -> None:
    cli.json("import", "accounts", write(tmp_path, "a.csv", "account_id,name\nA1,Acme\n"))
    lines = [
        {"account_id": "A1", "event": "a\u0000b", "timestamp": "2024-03-01T10:00:00Z"},
        {"account_id": "A1", "event": "ok", "timestamp": "2024-03-01T10:00:00Z"},
    ]
    path = write(tmp_path, "e.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    report = cli.json("import", "events", path)
    assert (report["accepted"], report["rejected"]) == (1, 1)
    assert "NUL" in report["errors"][0]["reason"]


def test_parquet_categories_and_nested_properties(sqlite_cli: Cli, tmp_path: Path) -> None:
    sqlite_cli.json("import", "accounts", write(tmp_path, "a.csv", "account_id,name\nA1,Acme\n"))
    table = pa.table(
        {
            "account_id": pa.array(["A1", "A1"]).dictionary_encode(),
            "event": pa.array(["login", "export"]).dictionary_encode(),
            "timestamp": pa.array([datetime(2024, 3, 1, 10), datetime(2024, 3, 1, 11)]),
            "properties": pa.array([{"plan": "pro"}, {"plan": "free"}]),
        }
    )
    path = tmp_path / "e.parquet"
    pq.write_table(table, path)
    report = sqlite_cli.json("import", "events", path)
    assert (report["accepted"], report["rejected"]) == (2, 0)


def test_parquet_naming_a_column_twice_is_refused(sqlite_cli: Cli, tmp_path: Path) -> None:
    table = pa.Table.from_arrays(
        [pa.array(["A1"]), pa.array(["A2"])], names=["account_id", "account_id"]
    )
    path = tmp_path / "a.parquet"
    pq.write_table(table, path)
    data = sqlite_cli.json("import", "accounts", path, code=1)
    assert "twice" in data["error"]


def test_a_mapping_value_must_be_a_single_value(sqlite_cli: Cli, tmp_path: Path) -> None:
    mapping = write(tmp_path, "m.yaml", "kind: events\nvalues:\n  count:\n    many: [1, 2]\n")
    events = write(tmp_path, "e.csv", "account_id,event,timestamp,count\nA1,x,2024-03-01,many\n")
    data = sqlite_cli.json("import", "events", events, "--mapping", mapping, code=1)
    assert "m.yaml:4" in data["error"] and "single value" in data["error"]
