"""Reading ahead on a second thread keeps order, hands errors over, and stops cleanly."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import Cli
from tenure.ingest import import_file
from tenure.ingest.readahead import ReadAhead
from tenure.store import KIND_TABLES, Store


def test_results_come_in_order() -> None:
    assert list(ReadAhead(iter(range(50)), lambda n: n * n)) == [(n, n * n) for n in range(50)]


def test_an_error_while_reading_reaches_the_consumer() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("disk on fire")

    with pytest.raises(ValueError, match="disk on fire"):
        list(ReadAhead(items(), str))


def test_stopping_early_ends_the_worker() -> None:
    before = threading.active_count()
    for item, _ in ReadAhead(iter(range(10_000)), str, depth=1):
        if item == 3:
            break
    assert threading.active_count() == before


def test_an_undecodable_byte_deep_in_a_file_refuses_it_whole(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("account_id,name\nA1,Acme\n")
    cli.json("import", "accounts", tmp_path / "a.csv")
    good = "".join(f"A1,login,2024-03-01T10:00:{i % 60:02d}Z,e{i}\n" for i in range(30_000))
    path = tmp_path / "events.csv"
    path.write_bytes(
        b"account_id,event,timestamp,event_id\n" + good.encode() + b"A1,caf\xe9,2024-03-02,x\n"
    )
    data = cli.json("import", "events", path, code=1)
    assert "decode" in data["error"]
    assert cli.json("summary")["records"]["events"] == 0


def test_a_ragged_row_deep_in_a_csv_is_rejected_with_its_number(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("account_id,name\nA1,Acme\n")
    cli.json("import", "accounts", tmp_path / "a.csv")
    rows = [f"A1,login,2024-03-01T10:00:{i % 60:02d}Z,e{i}" for i in range(25_000)]
    rows[20_000] += ",surplus"
    rows[20_001] = 'A1,"a ""quoted"", multi\nline event",2024-03-01T11:00:00Z,q1'
    path = tmp_path / "events.csv"
    path.write_text("account_id,event,timestamp,event_id\r\n" + "\r\n".join(rows) + "\r\n")
    report = cli.json("import", "events", path)
    assert (report["rows"], report["accepted"], report["rejected"]) == (25_000, 24_999, 1)
    assert report["errors"] == [
        {"row": 20_001, "field": "_row", "reason": "has 5 cells but the header has 4 columns"}
    ]


def stored_values(url: str, kind: str, column: str) -> list[Any]:
    store = Store(url)
    table = KIND_TABLES[kind]
    with store.engine.connect() as connection:
        values = connection.execute(select(table.c[column]).order_by(table.c[column])).scalars()
        found = list(values)
    store.close()
    return found


def store_with_acme(database: Path) -> Store:
    """A migrated SQLite store holding one account, A1."""
    store = Store(f"sqlite:///{database}")
    store.upgrade()
    accounts = database.parent / "acme.csv"
    accounts.write_text("account_id,name\nA1,Acme\n")
    import_file(store, "accounts", accounts)
    return store


def write_logins(path: Path, count: int) -> Path:
    """An events CSV of ``count`` logins of account A1, each with its own id."""
    rows = "".join(f"A1,login,2024-03-01T10:00:{i % 60:02d}Z,e{i}\n" for i in range(count))
    path.write_text("account_id,event,timestamp,event_id\n" + rows)
    return path


def both_readers(
    tmp_path: Path, kind: str, path: Path, mapping: Path | None = None
) -> tuple[Any, Any]:
    """Import with Arrow's reader (auto) and with Python's (rows); return both reports."""
    reports = []
    for engine in ("auto", "rows"):
        store = store_with_acme(tmp_path / f"{engine}.db")
        reports.append(import_file(store, kind, path, mapping, engine=engine))  # type: ignore[arg-type]
        store.close()
    return reports[0], reports[1]


def test_a_quoted_crlf_at_a_block_boundary_keeps_its_line_feed(tmp_path: Path) -> None:
    header = b"touchpoint_id,account_id,type,occurred_at,summary\r\n"
    filler = b"".join(b"t%06d,A1,call,2024-03-01,note\r\n" % i for i in range(40_000))
    note = b'tx,A1,email,2024-03-02,"first line\r\nsecond line"\r\n'
    pad = (1 << 20) - 1 - len(header) - len(filler) - note.index(b"\r")
    body = header + filler + b"tpad,A1,call,2024-03-01," + b"x" * (pad - 24 - 2) + b"\r\n" + note
    path = tmp_path / "touchpoints.csv"
    path.write_bytes(body)
    auto, rows = both_readers(tmp_path, "touchpoints", path)
    assert (auto.accepted, auto.rejected) == (rows.accepted, rows.rejected) == (40_002, 0)
    for engine in ("auto", "rows"):
        summaries = stored_values(
            f"sqlite:///{tmp_path / f'{engine}.db'}", "touchpoints", "summary"
        )
        assert "first line\r\nsecond line" in summaries, engine


def test_a_header_after_a_blank_looking_line_is_not_data(tmp_path: Path) -> None:
    path = tmp_path / "accounts_in.csv"
    path.write_text("\u00a0\naccount_id,name\nA2,Beta\nA3,Gamma\n", encoding="utf-8")
    auto, rows = both_readers(tmp_path, "accounts", path)
    assert (auto.accepted, auto.rejected) == (rows.accepted, rows.rejected) == (2, 0)


def test_a_non_ascii_delimiter_from_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("account_id§event§timestamp\nA1§login§2024-03-01T10:00:00Z\n", encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text('kind: events\ndelimiter: "§"\n', encoding="utf-8")
    auto, rows = both_readers(tmp_path, "events", path, mapping)
    assert (auto.accepted, auto.rejected) == (rows.accepted, rows.rejected) == (1, 0)


def test_blank_lines_of_a_one_column_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts_in.csv"
    path.write_text('account_id\nA2\n""\n   \nA3\n', encoding="utf-8")
    auto, rows = both_readers(tmp_path, "accounts", path)
    assert (auto.rows, auto.accepted, auto.rejected) == (rows.rows, rows.accepted, rows.rejected)


def test_an_interrupted_import_leaves_the_file_unlocked(tmp_path: Path) -> None:
    database = tmp_path / "tenure.db"
    store = store_with_acme(database)
    events = write_logins(tmp_path / "e.csv", 30_000)

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_file(store, "events", events, progress=interrupt)
    other = sqlite3.connect(database, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # raises 'database is locked' if the import kept its lock
    other.rollback()
    other.close()
    store.close()
    assert store.counts()["events"] == 0


def test_an_error_while_writing_stops_the_read_ahead_at_once(tmp_path: Path) -> None:
    store = store_with_acme(tmp_path / "tenure.db")
    events = write_logins(tmp_path / "e.csv", 50_000)
    before = threading.active_count()

    def fail(done: int, total: int) -> None:
        raise RuntimeError("the progress display broke")

    with pytest.raises(RuntimeError):
        import_file(store, "events", events, progress=fail)
    assert threading.active_count() == before
    store.close()
