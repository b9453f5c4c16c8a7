"""One definition, two engines: the column-wise import stores exactly what the row path stores."""

from __future__ import annotations

import csv
import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tenure.ingest import import_file
from tenure.store import KIND_TABLES, Store
from tenure.store.tables import IMPORT_ID

ACCOUNTS = ["A1", "A2", "A3"]
stamps = st.datetimes(
    min_value=datetime(2001, 1, 1),
    max_value=datetime(2035, 12, 31),
)
any_stamp = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
timestamp_text = st.one_of(
    any_stamp.map(lambda d: d.isoformat() + "Z"),
    any_stamp.map(lambda d: d.date().isoformat()),
    stamps.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    stamps.map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    stamps.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f+02:00")),
    stamps.map(lambda d: d.strftime("%Y-%m-%d")),
    stamps.map(lambda d: d.strftime("%d/%m/%Y %H:%M")),
    stamps.map(lambda d: str(int(d.timestamp()))),
)
words = st.text(alphabet="abcdefgh _-é日", min_size=1, max_size=12)
event_rows = st.lists(
    st.fixed_dictionaries(
        {
            "account_id": st.sampled_from(ACCOUNTS),
            "user_id": st.one_of(st.just(""), words),
            "event": st.one_of(st.just(""), words),
            "feature": words,
            "timestamp": timestamp_text,
            "count": st.one_of(st.just(""), st.integers(0, 10**6).map(str)),
            "properties": st.one_of(
                st.just(""),
                st.dictionaries(words, st.integers() | words, max_size=3).map(json.dumps),
            ),
        }
    ),
    min_size=1,
    max_size=40,
)
touchpoint_rows = st.lists(
    st.fixed_dictionaries(
        {
            "account_id": st.sampled_from(ACCOUNTS),
            "type": st.sampled_from(["email", "Call", "QBR", "meeting"]),
            "direction": st.sampled_from(["", "inbound", "outbound"]),
            "occurred_at": timestamp_text,
            "contact_ids": st.lists(st.sampled_from(["c1", "c2", "c3"]), max_size=3).map(";".join),
            "summary": st.one_of(
                st.just(""),
                st.text(
                    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
                    max_size=30,
                ),
            ),
        }
    ),
    min_size=1,
    max_size=30,
)
payment_rows = st.lists(
    st.fixed_dictionaries(
        {
            "payment_id": st.uuids().map(str),
            "account_id": st.sampled_from(ACCOUNTS),
            "amount": st.decimals(min_value=-(10**6), max_value=10**6, places=3).map(str),
            "attempted_at": timestamp_text,
            "status": st.sampled_from(["paid", "failed", "succeeded"]),
        }
    ),
    min_size=1,
    max_size=30,
)
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def stored(
    folder: Path, kind: str, rows: list[dict[str, str]], engine: str, suffix: str
) -> list[tuple[Any, ...]]:
    store = Store(f"sqlite:///{folder / f'{engine}{suffix}.db'}")
    store.upgrade()
    accounts = folder / "accounts.csv"
    accounts.write_text("account_id,name\n" + "".join(f"{a},Co {a}\n" for a in ACCOUNTS))
    import_file(store, "accounts", accounts)
    path = folder / f"{kind}{suffix}"
    if suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(as_json(row)) + "\n" for row in rows), "utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    report = import_file(store, kind, path, engine=engine)  # type: ignore[arg-type]
    table = KIND_TABLES[kind]
    columns = [c for c in table.columns if c.name != IMPORT_ID]
    with store.engine.connect() as connection:
        found = connection.execute(select(*columns).order_by(columns[0])).all()
    store.close()
    return [tuple(row) for row in found] + [(report.accepted, report.rejected, report.duplicates)]


def as_json(row: dict[str, str]) -> dict[str, Any]:
    """A row as a JSON Lines export has it: nested objects, numbers as numbers, no empty keys."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if value == "":
            continue
        if name == "properties":
            out[name] = json.loads(value)
        elif name == "count":
            out[name] = int(value)
        else:
            out[name] = value
    return out


def same_by_both_engines(kind: str, rows: list[dict[str, str]]) -> None:
    for suffix in (".csv", ".parquet", ".jsonl"):
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            assert stored(folder, kind, rows, "auto", suffix) == stored(
                folder, kind, rows, "rows", suffix
            )


@SETTINGS
@given(event_rows)
def test_events_are_stored_alike_by_both_engines(rows: list[dict[str, str]]) -> None:
    same_by_both_engines("events", rows)


@SETTINGS
@given(touchpoint_rows)
def test_touchpoints_are_stored_alike_by_both_engines(rows: list[dict[str, str]]) -> None:
    same_by_both_engines("touchpoints", rows)


@SETTINGS
@given(payment_rows)
def test_payments_are_stored_alike_by_both_engines(rows: list[dict[str, str]]) -> None:
    same_by_both_engines("payments", rows)
