"""Properties of the import, checked on random files with Hypothesis (SQLite store, library calls).

(a) every row is counted exactly once and each valid key is accepted once; (b) importing the same
file again changes nothing; (c) CSV, JSON Lines and Parquet holding the same events store the same
rows; (d) the field parsers read every date format and money with thousands separators.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tenure.ingest import import_file
from tenure.record import KINDS
from tenure.record.fields import FieldError, ParseContext, is_blank, parse_date
from tenure.record.schema import LIFECYCLE_STAGES, MONEY, SIGNED_MONEY
from tenure.store import KIND_TABLES, Store

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
KEYS = tuple(f"K{i}" for i in range(6))
ACCOUNT_HEADER = ("account_id", "name", "lifecycle_stage", "created_at")

# Printable text of any script (no control characters, no surrogates): what company names hold.
names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


@contextmanager
def fresh_store() -> Iterator[tuple[Store, Path]]:
    """A new, migrated SQLite store in its own temporary folder (one per example)."""
    with tempfile.TemporaryDirectory() as folder:
        store = Store(f"sqlite:///{Path(folder) / 'tenure.db'}")
        store.upgrade()
        try:
            yield store, Path(folder)
        finally:
            store.close()


def table_rows(store: Store, kind: str) -> list[dict[str, Any]]:
    """Every stored row of ``kind`` (bookkeeping columns included), ordered by key."""
    table = KIND_TABLES[kind]
    with store.engine.connect() as connection:
        query = select(table).order_by(table.c[KINDS[kind].key])
        return [dict(row) for row in connection.execute(query).mappings()]


def write_csv(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def date_formats(day: date) -> list[str]:
    """The five ways exports write one calendar date."""
    y, m, d = f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}"
    month = MONTHS[day.month - 1]
    return [
        f"{y}-{m}-{d}",
        f"{y}/{m}/{d}",
        f"{y}{m}{d}",
        f"{day.day} {month} {y}",
        f"{month} {day.day}, {y}",
    ]


# --- (a) and (b): random account files ------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    cells: tuple[str, ...]
    valid: bool

    @property
    def key(self) -> str:
        return self.cells[0]


@st.composite
def valid_account(draw: st.DrawFn) -> AccountRow:
    key = draw(st.sampled_from(KEYS))
    stage = draw(st.sampled_from((*LIFECYCLE_STAGES, "Active", "LOST", "")))
    created = draw(st.dates(date(1990, 1, 1), date(2035, 12, 31)))
    when = draw(st.sampled_from(date_formats(created))) if draw(st.booleans()) else ""
    return AccountRow((key, draw(names), stage, when), valid=True)


@st.composite
def invalid_account(draw: st.DrawFn) -> AccountRow:
    key = draw(st.sampled_from(KEYS))
    name = draw(names)
    fault = draw(st.sampled_from(("no key", "bad date", "unreal date", "bad stage", "long name")))
    cells = {
        "no key": ("", name, "trial", "2024-01-01"),
        "bad date": (key, name, "trial", "sometime in spring"),
        "unreal date": (key, name, "trial", "2024-02-30"),
        "bad stage": (key, name, "thriving", "2024-01-01"),
        "long name": (key, "n" * 501, "trial", "2024-01-01"),
    }[fault]
    return AccountRow(cells, valid=False)


account_files = st.lists(st.one_of(valid_account(), invalid_account()), min_size=1, max_size=40)


@SETTINGS
@given(rows=account_files)
def test_every_row_counted_once_and_each_valid_key_accepted(rows: list[AccountRow]) -> None:
    with fresh_store() as (store, folder):
        path = write_csv(folder / "accounts.csv", ACCOUNT_HEADER, [r.cells for r in rows])
        report = import_file(store, "accounts", path)
        valid_keys = {r.key for r in rows if r.valid}
        assert report.rows == len(rows)
        assert report.rows == report.accepted + report.rejected + report.duplicates
        assert report.accepted == len(valid_keys)
        assert report.rejected >= sum(not r.valid for r in rows)
        assert {row["account_id"] for row in table_rows(store, "accounts")} == valid_keys
        first_valid: dict[str, AccountRow] = {}
        for row in rows:
            if row.valid:
                first_valid.setdefault(row.key, row)
        for stored in table_rows(store, "accounts"):
            raw = first_valid[stored["account_id"]].cells[1]
            assert stored["name"] == (None if is_blank(raw) else raw.strip())


@SETTINGS
@given(rows=account_files)
def test_importing_the_same_file_again_changes_nothing(rows: list[AccountRow]) -> None:
    with fresh_store() as (store, folder):
        path = write_csv(folder / "accounts.csv", ACCOUNT_HEADER, [r.cells for r in rows])
        first = import_file(store, "accounts", path)
        before = table_rows(store, "accounts")
        again = import_file(store, "accounts", path)
        assert again.accepted == 0
        assert again.rows == first.rows == again.rejected + again.duplicates
        assert again.duplicates == first.accepted + first.duplicates
        assert table_rows(store, "accounts") == before


# --- (c): the same events as CSV, JSON Lines and Parquet -------------------------------------


@dataclass(frozen=True)
class Event:
    account_id: str
    user_id: str | None
    event: str
    timestamp: datetime  # UTC
    count: int | None
    plan: str | None


words = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
events = st.builds(
    Event,
    account_id=st.sampled_from(("A1", "A2")),
    user_id=st.none() | st.sampled_from(("u1", "u2", "ü3", "用户4")),
    event=words,
    timestamp=st.datetimes(datetime(2000, 1, 1), datetime(2030, 12, 31)),
    count=st.none() | st.integers(0, 10_000),
    plan=st.none() | words,
)
EVENT_COLUMNS = ("account_id", "user_id", "event", "timestamp", "count", "plan")


def events_csv(path: Path, batch: list[Event]) -> Path:
    rows = [
        (
            e.account_id,
            e.user_id or "",
            e.event,
            e.timestamp.isoformat() + "Z",
            "" if e.count is None else str(e.count),
            e.plan or "",
        )
        for e in batch
    ]
    return write_csv(path, EVENT_COLUMNS, rows)


def events_jsonl(path: Path, batch: list[Event]) -> Path:
    lines = [
        json.dumps(
            {
                "account_id": e.account_id,
                "user_id": e.user_id,
                "event": e.event,
                "timestamp": e.timestamp.replace(tzinfo=UTC).isoformat(),
                "count": e.count,
                "plan": e.plan,
            },
            ensure_ascii=False,
        )
        for e in batch
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def events_parquet(path: Path, batch: list[Event]) -> Path:
    table = pa.table(
        {
            "account_id": pa.array([e.account_id for e in batch], pa.string()),
            "user_id": pa.array([e.user_id for e in batch], pa.string()),
            "event": pa.array([e.event for e in batch], pa.string()),
            "timestamp": pa.array(
                [e.timestamp.replace(tzinfo=UTC) for e in batch], pa.timestamp("us", tz="UTC")
            ),
            "count": pa.array([e.count for e in batch], pa.int64()),
            "plan": pa.array([e.plan for e in batch], pa.string()),
        }
    )
    pq.write_table(table, path)
    return path


@SETTINGS
@given(batch=st.lists(events, min_size=1, max_size=25))
def test_same_events_in_every_format_store_the_same_rows(batch: list[Event]) -> None:
    writers = {"csv": events_csv, "jsonl": events_jsonl, "parquet": events_parquet}
    stored: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, tuple[int, int, int, int]] = {}
    for suffix, writer in writers.items():
        with fresh_store() as (store, folder):
            accounts = write_csv(
                folder / "a.csv", ("account_id", "name"), [("A1", "a"), ("A2", "b")]
            )
            assert import_file(store, "accounts", accounts).accepted == 2
            report = import_file(store, "events", writer(folder / f"events.{suffix}", batch))
            assert report.format == suffix
            counts[suffix] = (report.rows, report.accepted, report.rejected, report.duplicates)
            stored[suffix] = table_rows(store, "events")
    assert counts["csv"][0] == len(batch)
    assert counts["jsonl"] == counts["csv"] == counts["parquet"]
    assert stored["jsonl"] == stored["csv"]
    assert stored["parquet"] == stored["csv"]


# --- (d): field parsing ---------------------------------------------------------------------


@SETTINGS
@given(day=st.dates())
def test_every_date_format_reads_the_same_date(day: date) -> None:
    for text in date_formats(day):
        assert parse_date(text) == day, text


@SETTINGS
@given(day=st.dates(date(1000, 1, 1)))
def test_slashed_dates_are_read_by_the_declared_order_and_never_guessed(day: date) -> None:
    mdy = f"{day.month:02d}/{day.day:02d}/{day.year:04d}"
    dmy = f"{day.day:02d}/{day.month:02d}/{day.year:04d}"
    assert parse_date(mdy, ParseContext(date_order="MDY")) == day
    assert parse_date(dmy, ParseContext(date_order="DMY")) == day
    for text in (mdy, dmy):
        try:
            guessed = parse_date(text)
        except FieldError as err:
            assert "ambiguous" in str(err)
        else:
            assert guessed == day, text


money = st.floats(min_value=0, max_value=9.9e11, allow_nan=False, allow_infinity=False)


@SETTINGS
@given(value=money, mark=st.sampled_from(("", "$", "€", "£")))
def test_money_with_thousands_separators_parses_to_the_rounded_value(
    value: float, mark: str
) -> None:
    assert MONEY.parse(f"{mark}{value:,.2f}") == round(value, 2)
    assert MONEY.parse(f"{value:,}") == round(value, 2)
    assert SIGNED_MONEY.parse(f"{-value:,.2f}") == round(-value, 2)
    european = f"{value:,.2f}".translate(str.maketrans(",.", ".,"))
    assert MONEY.parse(european, ParseContext(decimal_comma=True)) == round(value, 2)


@pytest.mark.parametrize("text", ["1,234.50", "$1,234.50", "1,234.5", "1234.50"])
def test_money_examples(text: str) -> None:
    assert MONEY.parse(text) == 1234.5
