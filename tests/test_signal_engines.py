"""One declaration, two engines: the batch (Ibis on DuckDB) and incremental engines agree exactly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tenure.signals import SOURCES, catalog
from tenure.signals.batch import BatchEngine
from tenure.signals.incremental import IncrementalEngine, StaleAsOf
from tenure.signals.sources import arrow_schema

CATALOG = catalog(key_features=["reports"])
AS_OF = 20_000
# Days right on and either side of every window edge the catalog uses.
EDGES = sorted(
    {AS_OF - e + d for e in (0, 7, 14, 30, 90, 104, 180, 365) for d in (-1, 0, 1)} - {AS_OF + 1}
)
ACCOUNTS = ("a1", "a2", "a3")

day = st.one_of(st.sampled_from(EDGES), st.integers(AS_OF - 420, AS_OF))
maybe_day = st.one_of(st.none(), day, st.integers(AS_OF + 1, AS_OF + 400))
account = st.sampled_from(ACCOUNTS)


def _row(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"account_id": account, **fields})


ROWS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "usage": _row(
        day=day,
        user=st.sampled_from(["u1", "u2", "u3", None]),
        feature=st.sampled_from(["reports", "search", "api"]),
        count=st.integers(0, 4),
    ),
    "tickets": _row(
        opened_day=day,
        resolved_day=maybe_day,
        priority=st.sampled_from(["P1", "P2", "P3", "P4", None]),
        csat=st.one_of(st.none(), st.integers(100, 500)),
        sentiment=st.one_of(st.none(), st.integers(-10_000, 10_000)),
    ),
    "surveys": _row(
        day=day,
        at=st.integers(0, 86_399),
        survey=st.sampled_from(["nps", "csat"]),
        score=st.integers(0, 10).map(lambda s: s * 100),
        sentiment=st.one_of(st.none(), st.integers(-10_000, 10_000)),
    ),
    "touchpoints": _row(day=day, type=st.sampled_from(["email", "call", "qbr"])),
    "touch_people": _row(day=day, person=st.sampled_from(["c1", "c2", "c3"])),
    "milestones": _row(
        planned_day=maybe_day,
        achieved_day=maybe_day,
        category=st.sampled_from(["onboarding", "value", "adoption"]),
    ),
    "subscriptions": _row(
        start_day=day,
        end_day=maybe_day,
        renews_day=maybe_day,
        seats=st.integers(0, 20),
        mrr=st.integers(0, 100_000),
        is_trial=st.booleans(),
    ),
    "payments": _row(day=day, status=st.sampled_from(["succeeded", "failed", "refunded"])),
    "contacts": _row(
        left_day=maybe_day,
        persona=st.sampled_from(["champion", "executive_sponsor", "end_user", None]),
    ),
}
KEYED = {s.name for s in SOURCES if s.keyed}


@st.composite
def histories(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    """Rows per source, keys unique; rows of changing sources may come again, changed."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, strategy in ROWS.items():
        rows = draw(st.lists(strategy, max_size=12))
        for number, row in enumerate(rows):
            if name in KEYED:
                row["key"] = f"{name}-{number}"
            if name == "surveys":
                row["at"] = row["day"] * 86_400 + row["at"]
        tables[name] = rows
    tables["accounts"] = account_rows(ACCOUNTS)
    return tables


def account_rows(accounts: Sequence[str]) -> list[dict[str, Any]]:
    """Accounts that started long before every window the tests look at."""
    return [
        {"account_id": a, "created_day": AS_OF - 500, "segment": "smb",
         "lifecycle_stage": "adoption", "owner": "ana"}
        for a in accounts
    ]  # fmt: skip


def _arrival(draw: st.DrawFn, tables: dict[str, list[dict[str, Any]]]) -> list[tuple[str, Any]]:
    """Every row tagged with its source, shuffled; changing rows sometimes arrive twice (an
    earlier, different version first, as when a ticket is imported open and later solved)."""
    arrivals = [(name, row) for name, rows in tables.items() for row in rows]
    for name, row in list(arrivals):
        source = next(s for s in SOURCES if s.name == name)
        if not source.append_only and name != "accounts" and draw(st.booleans()):
            arrivals.append((name, draw(ROWS[name]) | {"key": row["key"], "_old": True}))
    order = draw(st.permutations(range(len(arrivals))))
    shuffled = [arrivals[i] for i in order]
    # the final version of a changing row must arrive after its earlier version
    return sorted(shuffled, key=lambda item: 0 if item[1].get("_old") else 1)


@pytest.fixture(scope="module")
def batch() -> BatchEngine:
    return BatchEngine(CATALOG)


def _arrow(tables: dict[str, list[dict[str, Any]]]) -> dict[str, pa.Table]:
    """The rows as the prepared Arrow tables the batch engine reads."""
    arrow = {}
    for source in CATALOG.sources():
        schema = arrow_schema(source)
        arrow[source.name] = pa.Table.from_pylist(tables.get(source.name, []), schema=schema)
    return arrow


def _batch_values(batch: BatchEngine, tables: dict[str, list[dict[str, Any]]], days: list[int]):
    result = batch.compute(_arrow(tables), days).to_pylist()
    return {(r.pop("account_id"), r.pop("as_of")): r for r in result}


@settings(
    max_examples=60,
    # no shrinking: each example compiles a batch query, and a failure prints its example anyway
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_batch_equals_incremental(batch: BatchEngine, data: st.DataObject) -> None:
    tables = data.draw(histories())
    engine = IncrementalEngine(CATALOG)
    for name, row in _arrival(data.draw, tables):
        engine.apply(name, [{k: v for k, v in row.items() if k != "_old"}])
    later = AS_OF + data.draw(st.integers(0, 120))
    expected = _batch_values(batch, tables, [AS_OF, later])
    for account in ACCOUNTS:
        assert engine.evaluate(account, AS_OF) == expected[(account, AS_OF)]
    engine.prune(AS_OF)  # forgetting what no later day needs changes nothing
    for account in ACCOUNTS:
        assert engine.evaluate(account, AS_OF) == expected[(account, AS_OF)]
        assert engine.evaluate(account, later) == expected[(account, later)]


def test_an_earlier_day_than_the_state_has_seen_is_refused() -> None:
    engine = IncrementalEngine(CATALOG)
    engine.apply("usage", [{"account_id": "a1", "day": AS_OF, "user": "u", "feature": "f",
                            "count": 1}])  # fmt: skip
    with pytest.raises(StaleAsOf):
        engine.evaluate("a1", AS_OF - 1)


def test_every_signal_is_exercised_by_the_strategies() -> None:
    """The property test covers every source the catalog reads."""
    assert {s.name for s in CATALOG.sources()} <= set(ROWS) | {"accounts"}
