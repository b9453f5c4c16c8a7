"""The demo portfolio: importable files, stable output, and behaviour that precedes outcomes."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tenure.demo import KIND_ORDER, PortfolioSpec, generate_portfolio
from tenure.record.schema import KINDS, LIFECYCLE_STAGES, OUTCOME_TYPES, PERSONAS

SPEC = PortfolioSpec(
    accounts=120,
    seed=11,
    start=date(2025, 1, 1),
    months=15,
    events_per_active_user_day=1.2,
    chunk_rows=40_000,
)

Rows = list[dict[str, str]]


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    return generate_portfolio(SPEC, tmp_path_factory.mktemp("portfolio"))


@pytest.fixture(scope="module")
def tables(portfolio: dict[str, list[Path]]) -> dict[str, Rows]:
    return {kind: _read(paths[0]) for kind, paths in portfolio.items() if kind != "events"}


@pytest.fixture(scope="module")
def events(portfolio: dict[str, list[Path]]) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in portfolio["events"]])


def _read(path: Path) -> Rows:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _day(text: str) -> date:
    return date.fromisoformat(text[:10])


def test_every_kind_is_written_in_import_order(portfolio: dict[str, list[Path]]) -> None:
    assert tuple(portfolio) == KIND_ORDER
    assert all(paths and all(p.exists() for p in paths) for paths in portfolio.values())
    assert all(p.suffix == ".parquet" for p in portfolio["events"])
    assert all(paths[0].suffix == ".csv" for kind, paths in portfolio.items() if kind != "events")


def test_csv_files_import_without_mapping(portfolio: dict[str, list[Path]]) -> None:
    for kind, paths in portfolio.items():
        if kind == "events":
            continue
        with paths[0].open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle))
        assert set(header) <= set(KINDS[kind].field_names), kind
        for row in _read(paths[0]):
            _, errors = KINDS[kind].validate(row)
            assert errors == [], (kind, row, errors)


def test_events_have_the_record_columns_and_valid_rows(events: pa.Table) -> None:
    assert set(events.column_names) <= set(KINDS["events"].field_names)
    for row in events.slice(0, 3000).to_pylist():
        assert KINDS["events"].validate(row)[1] == []
    stamps = events.column("timestamp").to_pylist()
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s) for s in stamps[:5000])
    assert min(stamps) >= "2025-01-01" and max(stamps) < "2026-04-01"


def test_events_are_chunked_to_bounded_files(portfolio: dict[str, list[Path]]) -> None:
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in portfolio["events"]]
    assert len(sizes) > 1
    assert all(size == SPEC.chunk_rows for size in sizes[:-1])
    assert 0 < sizes[-1] <= SPEC.chunk_rows


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    spec = PortfolioSpec(accounts=15, seed=3, months=3, chunk_rows=5_000)
    first = generate_portfolio(spec, tmp_path / "a")
    second = generate_portfolio(spec, tmp_path / "b")
    other = generate_portfolio(PortfolioSpec(accounts=15, seed=4, months=3), tmp_path / "c")
    for kind in KIND_ORDER:
        assert [p.name for p in first[kind]] == [p.name for p in second[kind]]
        for a, b in zip(first[kind], second[kind], strict=True):
            assert a.read_bytes() == b.read_bytes(), a.name
    assert first["accounts"][0].read_bytes() != other["accounts"][0].read_bytes()


def test_ids_are_unique(tables: dict[str, Rows], events: pa.Table) -> None:
    for kind, rows in tables.items():
        ids = [row[KINDS[kind].key] for row in rows]
        assert all(ids) and len(set(ids)) == len(ids), kind
    assert pc.count_distinct(events.column("event_id")).as_py() == events.num_rows


def test_every_reference_resolves(tables: dict[str, Rows], events: pa.Table) -> None:
    accounts = {row["account_id"] for row in tables["accounts"]}
    for kind, rows in tables.items():
        assert {row["account_id"] for row in rows} <= accounts, kind
    assert {r["parent_account_id"] for r in tables["accounts"]} - {""} <= accounts
    assert set(pc.unique(events.column("account_id")).to_pylist()) <= accounts
    subscriptions = {row["subscription_id"] for row in tables["subscriptions"]}
    assert {row["subscription_id"] for row in tables["invoices"]} <= subscriptions
    invoices = {row["invoice_id"] for row in tables["invoices"]}
    assert {row["invoice_id"] for row in tables["payments"]} <= invoices
    contacts = {row["contact_id"] for row in tables["contacts"]}
    for kind in ("tickets", "responses"):
        assert {row["contact_id"] for row in tables[kind]} - {""} <= contacts, kind
    touched = {c for row in tables["touchpoints"] for c in row["contact_ids"].split(";") if c}
    assert touched <= contacts


def test_vocabularies_and_ranges(tables: dict[str, Rows]) -> None:
    assert {r["priority"] for r in tables["tickets"]} == {"P1", "P2", "P3", "P4"}
    nps = [float(r["score"]) for r in tables["responses"] if r["survey"] == "nps"]
    csat = [float(r["score"]) for r in tables["responses"] if r["survey"] == "csat"]
    assert nps and csat and all(0 <= s <= 10 and s == int(s) for s in nps)
    assert all(1 <= s <= 5 for s in csat)
    assert min(nps) <= 4 and max(nps) == 10
    assert {r["persona"] for r in tables["contacts"]} <= set(PERSONAS)
    assert {r["lifecycle_stage"] for r in tables["accounts"]} <= set(LIFECYCLE_STAGES)
    assert {r["type"] for r in tables["outcomes"]} == set(OUTCOME_TYPES) - {"reactivated"}
    assert {r["segment"] for r in tables["accounts"]} == {"enterprise", "mid-market", "smb"}
    assert {r["type"] for r in tables["touchpoints"]} >= {"email", "call", "meeting", "qbr"}


def test_contacts_sit_on_their_account_domain(tables: dict[str, Rows]) -> None:
    domains = {r["account_id"]: r["domains"].split(";") for r in tables["accounts"]}
    for row in tables["contacts"]:
        assert row["email"].split("@")[1] in domains[row["account_id"]]
    names = " ".join(r["name"] for r in tables["contacts"])
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff\u0370-\u03ff\u0600-\u06ff]", names)
    assert sum(1 for r in tables["accounts"] if r["parent_account_id"]) >= 1


def _daily_users(events: pa.Table) -> dict[str, dict[date, int]]:
    days = pc.utf8_slice_codeunits(events.column("timestamp"), 0, 10)
    pairs = pa.table({"a": events.column("account_id"), "d": days, "u": events.column("user_id")})
    grouped = pairs.group_by(["a", "d"]).aggregate([("u", "count_distinct")]).to_pylist()
    result: dict[str, dict[date, int]] = defaultdict(dict)
    for row in grouped:
        result[row["a"]][date.fromisoformat(row["d"])] = row["u_count_distinct"]
    return result


def _mean_users(daily: dict[date, int], start: date, days: int) -> float:
    return sum(daily.get(start + timedelta(days=k), 0) for k in range(days)) / days


def _decline_ratios(tables: dict[str, Rows], events: pa.Table, kind: str) -> list[float]:
    """Active users over the last 60 days before the outcome, over days 180-120 before it."""
    daily = _daily_users(events)
    fates = defaultdict(set)
    for row in tables["outcomes"]:
        fates[row["account_id"]].add(row["type"])
    ratios = []
    for row in tables["outcomes"]:
        when = _day(row["date"])
        if row["type"] != kind or when - timedelta(days=180) < SPEC.start:
            continue
        if kind == "renewed" and fates[row["account_id"]] != {"renewed"}:
            continue
        baseline = _mean_users(daily[row["account_id"]], when - timedelta(days=180), 60)
        if baseline > 0:
            ratios.append(
                _mean_users(daily[row["account_id"]], when - timedelta(days=60), 60) / baseline
            )
    return ratios


def test_churners_go_quiet_before_they_churn(tables: dict[str, Rows], events: pa.Table) -> None:
    churned = _decline_ratios(tables, events, "churned")
    renewed = _decline_ratios(tables, events, "renewed")
    assert len(churned) >= 5 and len(renewed) >= 20
    assert sum(churned) / len(churned) < 0.75
    assert sum(renewed) / len(renewed) > 0.9
    assert sum(r < 1 for r in churned) / len(churned) > 0.8


def test_no_usage_after_churn(tables: dict[str, Rows], events: pa.Table) -> None:
    daily = _daily_users(events)
    for row in tables["outcomes"]:
        if row["type"] == "churned":
            churn = _day(row["date"])
            assert not [d for d in daily[row["account_id"]] if d > churn + timedelta(days=1)]


def test_champion_departures_precede_some_churns(tables: dict[str, Rows]) -> None:
    churns = {
        r["account_id"]: _day(r["date"]) for r in tables["outcomes"] if r["type"] == "churned"
    }
    left = defaultdict(list)
    for row in tables["contacts"]:
        if row["persona"] == "champion" and row["left_at"]:
            assert row["status"] == "left"
            left[row["account_id"]].append(_day(row["left_at"]))
    preceded = [
        a
        for a, when in churns.items()
        if any(timedelta(days=14) <= when - d <= timedelta(days=120) for d in left[a])
    ]
    survivors = {r["account_id"] for r in tables["accounts"]} - set(churns)
    assert len(preceded) >= 3
    assert len(preceded) / len(churns) > 2 * sum(1 for a in survivors if left[a]) / len(survivors)


def test_storms_and_payment_failures_precede_some_churns(tables: dict[str, Rows]) -> None:
    churns = {
        r["account_id"]: _day(r["date"]) for r in tables["outcomes"] if r["type"] == "churned"
    }

    def before_churn(row: dict[str, str], field: str) -> bool:
        when = churns.get(row["account_id"])
        return when is not None and 0 < (when - _day(row[field])).days <= 150

    storms = [
        t
        for t in tables["tickets"]
        if t["priority"] in ("P1", "P2")
        and before_churn(t, "opened_at")
        and t["subject"].startswith(("URGENT", "Unacc", "Escal"))
    ]
    failures = [
        p for p in tables["payments"] if p["status"] == "failed" and before_churn(p, "attempted_at")
    ]
    assert len({t["account_id"] for t in storms}) >= 2
    assert all(p["failure_reason"] for p in failures) and len(failures) >= 3


def test_expansions_follow_won_seat_opportunities(tables: dict[str, Rows]) -> None:
    won = defaultdict(list)
    for row in tables["opportunities"]:
        if row["type"] == "seat_expansion" and row["stage"] == "won":
            won[row["account_id"]].append(_day(row["created_at"]))
    expansions = [r for r in tables["outcomes"] if r["type"] == "expanded"]
    assert expansions
    for row in expansions:
        assert float(row["arr_change"]) > 0
        assert any(d < _day(row["date"]) for d in won[row["account_id"]])


def test_progress_is_reported_to_completion(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    generate_portfolio(
        PortfolioSpec(accounts=5, months=2),
        tmp_path,
        lambda done, total: calls.append((done, total)),
    )
    assert calls and calls[-1][0] == calls[-1][1]
    assert [done for done, _ in calls] == list(range(1, len(calls) + 1))
