"""Batch equals incremental end to end: random streams imported through the real ingest path.

Events arrive in several files, out of order, repeated within and across files; a ticket arrives open
and later solved. The store drops the repeats, the live scorer takes each import's new rows, and at
the end its signals must equal the batch engine's over the store, exactly.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tenure.health.scoring import LiveScores, day_number, signal_rows, today
from tenure.ingest import import_file
from tenure.store import Store

EXAMPLE = itertools.count()
OFFSETS = st.one_of(
    st.sampled_from([0, 1, 6, 7, 8, 13, 14, 15, 29, 30, 31, 89, 90, 103, 104, 105]),
    st.integers(0, 130),
)
EVENT = st.tuples(
    st.sampled_from(["a", "b"]),  # account
    st.sampled_from(["u1", "u2", "u3"]),  # user
    st.sampled_from(["reports", "search"]),  # feature
    OFFSETS,  # days before today
    st.integers(1, 3),  # count
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('stream') / 'stream.db'}")
    store.upgrade()
    yield store
    store.close()


def _jsonl(folder: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _stamp(days_ago: int) -> str:
    moment = datetime.combine(today() - timedelta(days=days_ago), time(12, 0))
    return moment.isoformat() + "Z"


def _setup(store: Store, folder: Path, prefix: str) -> None:
    accounts = [{"account_id": f"{prefix}{a}", "name": f"{prefix}{a} Ltd",
                 "created_at": str(today() - timedelta(days=400))} for a in "ab"]  # fmt: skip
    subscriptions = [{"subscription_id": f"{prefix}{a}-s", "account_id": f"{prefix}{a}",
                      "seats": 5, "mrr": 100, "start_date": str(today() - timedelta(days=300))}
                     for a in "ab"]  # fmt: skip
    import_file(store, "accounts", _jsonl(folder, "accounts", accounts))
    import_file(store, "subscriptions", _jsonl(folder, "subscriptions", subscriptions))


@settings(
    max_examples=15,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=st.lists(EVENT, min_size=1, max_size=25),
    plan=st.data(),
)
def test_live_signals_equal_batch_signals_after_a_messy_stream(
    store: Store, tmp_path: Path, events: list[tuple[Any, ...]], plan: st.DataObject
) -> None:
    prefix = f"x{next(EXAMPLE)}-"
    folder = tmp_path / prefix
    folder.mkdir()
    _setup(store, folder, prefix)
    live = LiveScores(store)
    rows = [
        {"event_id": f"{prefix}e{n}", "account_id": f"{prefix}{a}", "user_id": u,
         "event": f"{f}_used", "feature": f, "timestamp": _stamp(d), "count": c}
        for n, (a, u, f, d, c) in enumerate(events)
    ]  # fmt: skip
    # three files: each a shuffled mix of new rows and repeats of rows already sent
    for number in range(3):
        batch = plan.draw(st.lists(st.sampled_from(rows), min_size=1, max_size=30))
        report = import_file(store, "events", _jsonl(folder, f"events{number}", batch))
        assert report.rejected == 0
        live.after_import("events", report.import_id or 0, report.accounts)
    ticket = {"ticket_id": f"{prefix}t1", "account_id": f"{prefix}a", "priority": "P1",
              "opened_at": _stamp(plan.draw(OFFSETS))}  # fmt: skip
    for version in (ticket, ticket | {"resolved_at": _stamp(0), "status": "solved"}):
        report = import_file(store, "tickets", _jsonl(folder, "ticket", [version]))
        live.after_import("tickets", report.import_id or 0, report.accounts)
    sponsor = {"contact_id": f"{prefix}c1", "account_id": f"{prefix}b", "email": "s@b.example",
               "persona": "executive_sponsor"}  # fmt: skip
    left = sponsor | {"left_at": _stamp(plan.draw(OFFSETS))[:10]}
    for version in (sponsor, left):  # a sponsor imported, then marked as left
        report = import_file(store, "contacts", _jsonl(folder, "contact", [version]))
        assert report.rejected == 0
        live.after_import("contacts", report.import_id or 0, report.accounts)
    accounts = sorted(a for a in live.engine.states if a.startswith(prefix))
    as_of = max(day_number(today()), *(live.engine.state(a).seen_until or 0 for a in accounts))
    batch = {
        r.pop("account_id"): {k: v for k, v in r.items() if k != "as_of"}
        for r in signal_rows(store, live.catalog, [as_of], accounts)
    }
    for account in accounts:
        assert live.engine.evaluate(account, as_of) == batch[account], account
