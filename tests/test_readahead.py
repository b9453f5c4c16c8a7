"""Reading ahead on a second thread keeps order, hands errors over, and stops cleanly."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Cli
from tenure.ingest.readahead import ReadAhead


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
