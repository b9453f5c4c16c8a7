"""Lookalikes: the nearest renewed and churned peers of an account, and where it differs."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert

from tenure.churn.lookalikes import Diagnosis, diagnose, diagnose_account, signal_columns
from tenure.churn.snapshots import Snapshots
from tenure.health.scoring import day_number, from_day_number
from tenure.store import Store
from tenure.store.tables import KIND_TABLES

SIGNALS = ["usage_trend_14d", "active_users_per_seat", "csat_90d", "days_since_activity"]
INPUTS = [*SIGNALS, "segment=enterprise", "segment=smb"]
DAYS = [day_number(date(2024, 1, 1)) + 30 * i for i in range(12)]
PLANTED = DAYS[6]  # each peer's planted look, 95 days before its outcome
OUTCOME_DAY = PLANTED + 95
TARGET = {"usage_trend_14d": -0.4, "active_users_per_seat": 0.5, "csat_90d": 4.0,
          "days_since_activity": 3.0}  # fmt: skip
FAR = {"usage_trend_14d": 5.0, "active_users_per_seat": 5.0, "csat_90d": 0.0,
       "days_since_activity": 300.0}  # fmt: skip


def _peer(j: int, usage: float, csat: float) -> dict[str, float]:
    """A peer ``j`` steps from the target: usage and CSAT set, the rest jittered either side."""
    sign = (-1) ** j
    return {
        "usage_trend_14d": usage + 0.01 * j,
        "active_users_per_seat": 0.5 + 0.01 * j * sign,
        "csat_90d": csat - 0.1 * j,
        "days_since_activity": 3.0 + j * sign,
    }


def _renewed(j: int) -> dict[str, float]:
    return _peer(j, usage=0.3, csat=4.0)  # usage far above the target's, all else alike


def _churned(j: int) -> dict[str, float]:
    return _peer(j, usage=-0.4, csat=2.0)  # usage like the target's, CSAT far below


# account -> (segment, {day: values}, [(outcome type, day)])
Plan = dict[str, tuple[str, dict[int, dict[str, float]], list[tuple[str, int]]]]


def _plan() -> Plan:
    plan: Plan = {
        # the target: renewed once before, looking just as it does now (never its own peer)
        "smb-00": ("smb", {DAYS[11]: TARGET, PLANTED: TARGET}, [("renewed", OUTCOME_DAY)]),
        # identical to the target, but only 10 days before its outcome (its one snapshot)
        "smb-x1": ("smb", {DAYS[11]: TARGET}, [("contracted", DAYS[11] + 10)]),
        # identical to the target and churned, but in the other segment
        "ent-twin": ("enterprise", {PLANTED: TARGET}, [("churned", OUTCOME_DAY)]),
        "ent-00": ("enterprise", {DAYS[11]: TARGET}, []),
    }
    for j in range(1, 7):
        renewed_type = "contracted" if j == 6 else "renewed"
        plan[f"smb-r{j}"] = ("smb", {PLANTED: _renewed(j)}, [(renewed_type, OUTCOME_DAY)])
        plan[f"smb-c{j}"] = ("smb", {PLANTED: _churned(j)}, [("churned", OUTCOME_DAY)])
        plan[f"ent-r{j}"] = ("enterprise", {PLANTED: _renewed(j)}, [("renewed", OUTCOME_DAY)])
    plan["smb-r2"][2].insert(0, ("renewed", OUTCOME_DAY - 365))
    plan["smb-r2"][2].append(("expanded", OUTCOME_DAY))
    for j in range(1, 4):
        plan[f"ent-c{j}"] = ("enterprise", {PLANTED: _churned(j)}, [("churned", OUTCOME_DAY)])
    for j in range(1, 6):
        plan[f"smb-n{j}"] = ("smb", {DAYS[11]: _renewed(j)}, [])
        plan[f"ent-n{j}"] = ("enterprise", {DAYS[11]: _churned(j)}, [])
    return plan


def _rows(account: str, segment: str, planted: dict[int, dict[str, float]]) -> list[dict[str, Any]]:
    """Monthly snapshots: far from everything except on the planted days."""
    rows = []
    for i, day in enumerate(DAYS):
        values = planted.get(day, FAR)
        rows.append({
            "account_id": account, "day": day, "segment": segment, "label": 0.0,
            "event_day": np.nan, "health_score": np.nan if i == 0 else 50.0 + i, **values,
            "segment=enterprise": float(segment == "enterprise"),
            "segment=smb": float(segment == "smb"),
        })  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def snapshots() -> Snapshots:
    rows = [r for a, (seg, planted, _) in _plan().items() for r in _rows(a, seg, planted)]
    frame = pd.DataFrame(rows)
    frame.loc[frame["account_id"] == "smb-c3", "days_since_activity"] = np.nan  # a gap
    frame = frame[(frame["account_id"] != "smb-x1") | (frame["day"] == DAYS[11])]
    end = from_day_number(DAYS[-1])
    return Snapshots(
        frame, INPUTS, [], 90, "churn", end, "test", [from_day_number(d) for d in DAYS]
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path}/t.db")
    store.ensure_schema()
    table = KIND_TABLES["outcomes"]
    rows = [
        {"outcome_id": f"{account}-{i}", "account_id": account, "type": kind,
         "date": from_day_number(day), "_row_hash": f"{account}-{i}".ljust(32, "0")[:32]}
        for account, (_, _, outcomes) in _plan().items()
        for i, (kind, day) in enumerate(outcomes)
    ]  # fmt: skip
    with store.transaction() as connection:
        connection.execute(insert(table), rows)
    return store


def _ids(diagnosis: Diagnosis, group: str) -> list[str]:
    return [n.account_id for n in getattr(diagnosis, group).neighbours]


def test_neighbours_are_the_nearest_peers_of_the_same_segment(
    store: Store, snapshots: Snapshots
) -> None:
    d = diagnose(store, "smb-00", snapshots, INPUTS)
    assert (d.segment, d.as_of) == ("smb", from_day_number(DAYS[11]))
    assert _ids(d, "renewed") == [f"smb-r{j}" for j in range(1, 6)]
    assert _ids(d, "churned") == [f"smb-c{j}" for j in range(1, 6)]
    for group in ("renewed", "churned"):
        distances = [n.distance for n in getattr(d, group).neighbours]
        assert distances == sorted(distances) and distances[0] > 0
        # each peer as it looked about 90 days before its outcome, not on other days
        assert {n.snapshot for n in getattr(d, group).neighbours} == {from_day_number(PLANTED)}
    assert d.churned.neighbours[0].outcome_day == from_day_number(OUTCOME_DAY)
    assert d.churned.neighbours[0].health_score == 56.0
    assert d.notes == []


def test_the_account_is_never_its_own_neighbour(store: Store, snapshots: Snapshots) -> None:
    d = diagnose(store, "smb-00", snapshots, INPUTS, k=50)
    everyone = _ids(d, "renewed") + _ids(d, "churned")
    assert "smb-00" not in everyone
    assert all(a.startswith("smb-") for a in everyone)
    assert "smb-x1" not in everyone  # its only snapshot is 10 days before its outcome


def test_contraction_and_expansion_count_as_renewed(store: Store, snapshots: Snapshots) -> None:
    d = diagnose(store, "smb-00", snapshots, INPUTS, k=6)
    outcomes = {n.account_id: n.outcome for n in d.renewed.neighbours}
    assert outcomes["smb-r6"] == "contracted"
    assert outcomes["smb-r2"] == "expanded"  # its latest renewal, not the one a year before


def test_the_biggest_difference_is_the_planted_one(store: Store, snapshots: Snapshots) -> None:
    d = diagnose(store, "smb-00", snapshots, INPUTS)
    top = d.renewed.differences[0]
    assert top.signal == "usage_trend_14d"
    assert top.account_value == -0.4 and top.group_median == pytest.approx(0.33)
    assert top.difference < -0.5 and top.healthier is False
    assert top.sentence.startswith("usage_trend_14d: -40% here against +33% for the 5 most")
    assert "that renewed" in top.sentence
    churned = d.churned.differences[0]
    assert churned.signal == "csat_90d" and churned.difference > 0.5 and churned.healthier
    for group in (d.renewed, d.churned):
        sizes = [abs(x.difference) for x in group.differences]
        assert sizes == sorted(sizes, reverse=True) and len(sizes) <= 5
        assert not {x.signal for x in group.differences} & {"segment=smb", "segment=enterprise"}


def test_dummies_are_not_distance_dimensions(store: Store, snapshots: Snapshots) -> None:
    assert signal_columns(snapshots.frame, INPUTS) == SIGNALS
    assert diagnose(store, "smb-00", snapshots, INPUTS).inputs == SIGNALS


def test_a_small_group_is_used_as_it_is_and_noted(store: Store, snapshots: Snapshots) -> None:
    d = diagnose(store, "ent-00", snapshots, INPUTS)
    assert _ids(d, "churned")[0] == "ent-twin" and d.churned.neighbours[0].distance == 0
    assert sorted(_ids(d, "churned")) == ["ent-c1", "ent-c2", "ent-c3", "ent-twin"]
    assert len(d.renewed.neighbours) == 5
    assert any("only 4 accounts in segment enterprise churned" in n for n in d.notes)


def test_as_of_takes_the_latest_snapshot_on_or_before(store: Store, snapshots: Snapshots) -> None:
    asked = from_day_number(DAYS[9]) + timedelta(days=3)
    d = diagnose(store, "smb-00", snapshots, INPUTS, as_of=asked)
    assert d.as_of == from_day_number(DAYS[9])
    assert any(asked.isoformat() in n for n in d.notes)
    with pytest.raises(KeyError, match="on or before 2023"):
        diagnose(store, "smb-00", snapshots, INPUTS, as_of=date(2023, 1, 1))


def test_an_unknown_account_raises_naming_it(store: Store, snapshots: Snapshots) -> None:
    with pytest.raises(KeyError, match="acct-nobody"):
        diagnose(store, "acct-nobody", snapshots, INPUTS)


def test_to_dict_is_json_ready(store: Store, snapshots: Snapshots) -> None:
    data = json.loads(json.dumps(diagnose(store, "smb-00", snapshots, INPUTS).to_dict()))
    assert set(data) >= {"account", "segment", "as_of", "renewed", "churned", "notes"}
    assert data["as_of"] == from_day_number(DAYS[11]).isoformat()
    first = data["renewed"]["neighbours"][0]
    assert set(first) >= {"account_id", "distance", "outcome_day", "health_score"}
    assert first["distance"] == round(first["distance"], 4)
    assert date.fromisoformat(first["outcome_day"]) == from_day_number(OUTCOME_DAY)
    assert {"signal", "account_value", "group_median", "difference", "sentence"} <= set(
        data["churned"]["differences"][0]
    )


def _add_outcome(store: Store, account: str, kind: str, day: int) -> None:
    key = f"{account}-extra-{day}"
    row = {"outcome_id": key, "account_id": account, "type": kind,
           "date": from_day_number(day), "_row_hash": key.ljust(32, "0")[:32]}  # fmt: skip
    with store.transaction() as connection:
        connection.execute(insert(KIND_TABLES["outcomes"]), [row])


OLDER = DAYS[3] + 95  # an older renewal, 95 days after the snapshot on DAYS[3]


def test_outcomes_after_the_as_of_day_are_not_used(store: Store, snapshots: Snapshots) -> None:
    # on DAYS[9] every planted outcome (OUTCOME_DAY, 5 days later) is still to come
    d = diagnose(store, "smb-00", snapshots, INPUTS, as_of=from_day_number(DAYS[9]), k=50)
    assert _ids(d, "renewed") == [] and _ids(d, "churned") == []
    assert any("only 0 accounts in segment smb renewed" in n for n in d.notes)
    _add_outcome(store, "smb-r1", "renewed", OLDER)  # an older renewal, known by then
    d = diagnose(store, "smb-00", snapshots, INPUTS, as_of=from_day_number(DAYS[9]), k=50)
    (peer,) = d.renewed.neighbours
    assert peer.account_id == "smb-r1" and peer.outcome_day == from_day_number(OLDER)
    assert peer.snapshot == from_day_number(DAYS[3])
    # later, the peer is taken at its latest outcome
    latest = diagnose(store, "smb-00", snapshots, INPUTS, k=50)
    peer = next(n for n in latest.renewed.neighbours if n.account_id == "smb-r1")
    assert peer.outcome_day == from_day_number(OUTCOME_DAY)
    assert peer.snapshot == from_day_number(PLANTED)


def test_a_peer_is_taken_at_its_latest_outcome_with_a_snapshot_before_it(
    store: Store, snapshots: Snapshots
) -> None:
    _add_outcome(store, "smb-r1", "renewed", OLDER)
    frame = snapshots.frame
    gap = (frame["account_id"] == "smb-r1") & frame["day"].between(DAYS[5], DAYS[8])
    holed = Snapshots(frame[~gap], INPUTS, [], 90, "churn", snapshots.data_end, "test",
                      snapshots.days)  # fmt: skip
    d = diagnose(store, "smb-00", holed, INPUTS, k=50)
    # no snapshot 30 to 150 days before its latest renewal: the one before is used, not none
    peer = next(n for n in d.renewed.neighbours if n.account_id == "smb-r1")
    assert peer.outcome_day == from_day_number(OLDER)
    assert peer.snapshot == from_day_number(DAYS[3])


def test_diagnose_account_checks_the_account_and_day_first(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_snapshots(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("snapshots built")

    monkeypatch.setattr("tenure.churn.lookalikes.prepare", no_snapshots)
    with pytest.raises(KeyError, match="no account 'acct-nobody'"):
        diagnose_account(store, "acct-nobody")
    with store.transaction() as connection:
        connection.execute(insert(KIND_TABLES["accounts"]),
                           [{"account_id": "smb-00", "_row_hash": "a" * 32}])  # fmt: skip
        connection.execute(insert(KIND_TABLES["events"]), [
            {"event_id": "e1", "account_id": "smb-00", "event": "login",
             "timestamp": datetime(2024, 1, 2, 10), "_row_hash": "e" * 32},
        ])  # fmt: skip
    last = from_day_number(DAYS[11] + 10).isoformat()  # smb-x1's outcome ends the data
    with pytest.raises(
        ValueError, match=rf"2030-01-01 is after the last day of the data \({last}\)"
    ):
        diagnose_account(store, "smb-00", as_of=date(2030, 1, 1))
