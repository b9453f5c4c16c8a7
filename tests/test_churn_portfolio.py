"""Churn models end to end on a small generated portfolio, the way a user runs them."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from conftest import Cli, copy_database
from conftest import portfolio_url as _url
from tenure.churn.training import prepare
from tenure.health import load_model
from tenure.ingest import import_file
from tenure.store import Store
from tenure.store.tables import KIND_TABLES

CONTENDERS = {"health score", "baseline", "logistic", "boosting", "time-to-churn"}


@pytest.fixture(scope="module")
def trained_root(portfolio: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the portfolio with the churn models trained (the shared one stays untrained)."""
    root = tmp_path_factory.mktemp("trained")
    copy_database(portfolio, root)
    (root / "train.json").write_text(json.dumps(Cli(_url(root)).json("train", "--folds", "4")))
    return root


@pytest.fixture(scope="module")
def trained(trained_root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((trained_root / "train.json").read_text())
    return data


@pytest.fixture
def copy(portfolio: Path, tmp_path: Path) -> Iterator[Store]:
    """A private copy of the portfolio's database, for tests that add records."""
    copy_database(portfolio, tmp_path)
    store = Store(_url(tmp_path))
    yield store
    store.close()


def _churned(store: Store) -> dict[str, date]:
    table = KIND_TABLES["outcomes"]
    query = select(table.c.account_id, table.c.date).where(table.c.type == "churned")
    with store.engine.connect() as connection:
        return {a: (d if isinstance(d, date) else date.fromisoformat(str(d)[:10]))
                for a, d in connection.execute(query)}  # fmt: skip


def test_backtest_compares_every_contender_out_of_time(portfolio: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    data = Cli(_url(portfolio)).json("backtest", "--folds", "4", "--report", report)
    assert data["horizon_days"] == 90
    results = {r["name"]: r for r in data["results"]}
    assert set(results) == CONTENDERS
    for r in results.values():
        for key in ("auc", "pr_auc", "brier", "ece", "lift_top_decile", "median_lead_days"):
            assert key in r
        assert 0 <= r["brier"] <= 1 and 0 <= r["ece"] <= 1
    # the generated churners decline for months first: the models see it, a segment rate cannot
    assert results["logistic"]["auc"] > 0.75
    assert results["logistic"]["auc"] > results["baseline"]["auc"] + 0.1
    assert results["health score"]["auc"] > results["baseline"]["auc"]
    assert results["logistic"]["median_lead_days"] > 0
    assert len(data["test_snapshots"]) == 4
    flagged = {f["input"]: f for f in data["leakage_guard"]}
    assert flagged["account.lifecycle_stage=churned"]["kept"] is False
    html = report.read_text()
    assert html.count("<svg") == 5 and "time-to-churn" in html


def test_backtest_other_horizons_and_outcomes(portfolio: Path) -> None:
    cli = Cli(_url(portfolio))
    long = cli.json("backtest", "--horizon", "180", "--folds", "2", "--report", "/dev/null")
    assert long["horizon_days"] == 180 and 1 <= len(long["test_snapshots"]) <= 2
    end = date.fromisoformat(long["data_end"])
    assert all(date.fromisoformat(d) + timedelta(days=180) <= end for d in long["test_snapshots"])
    shrink = cli.json("backtest", "--outcome", "contraction", "--folds", "2",
                      "--report", "/dev/null")  # fmt: skip
    assert shrink["outcome"] == "contraction"
    churn = cli.json("backtest", "--folds", "2", "--report", "/dev/null")
    assert shrink["results"][0]["positives"] >= churn["results"][0]["positives"]
    wrong = cli.json("backtest", "--outcome", "upsell", "--report", "/dev/null", code=1)
    assert "unknown outcome 'upsell'" in wrong["error"]


def test_train_registers_three_models_with_cards(
    trained: dict[str, Any], trained_root: Path
) -> None:
    cli = Cli(_url(trained_root))
    names = [m["name"] for m in trained["models"]]
    assert names == ["logistic", "boosting", "time-to-churn"]
    listed = cli.json("models")["models"]
    assert {m["name"] for m in listed} >= set(names)
    first = trained["models"][0]
    assert first["train_from"] < first["train_to"] <= first["data_end"]
    assert "account.lifecycle_stage=churned" in {f["input"] for f in first["left_out"]}
    assert not any(i.startswith("account.") for i in first["inputs"])
    card = cli.run("models", "--card", "logistic").stdout
    assert "# Churn model logistic v" in card and "| logistic |" in card
    assert "Left out by the leakage guard" in card and "Strongest inputs" in card
    assert cli.json("models", "--card", "nosuch", code=1)["error"].startswith("no churn model")


def test_a_column_known_only_after_the_outcome_is_kept_out(copy: Store, tmp_path: Path) -> None:
    churned = _churned(copy)
    before, _ = prepare(copy, 90)
    # plant an exit-interview score on every churned account (only known once it churned) ...
    planted = tmp_path / "exit.csv"
    with planted.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["account_id", "exit_interview_score"])
        writer.writerows([a, 9] for a in churned)
    assert import_file(copy, "accounts", planted).accepted == len(churned)
    # ... and usage dated after each churn that would give churners away if it were counted
    late = tmp_path / "late.jsonl"
    with late.open("w") as f:
        for account, day in churned.items():
            for k in range(5):
                when = (day + timedelta(days=k + 1)).isoformat()
                f.write(json.dumps({"event_id": f"late-{account}-{k}", "account_id": account,
                                    "user_id": "exit", "event": "cancellation_flow",
                                    "timestamp": f"{when}T10:00:00Z", "count": 500}) + "\n")  # fmt: skip
    assert import_file(copy, "events", late).accepted == 5 * len(churned)
    after, guarded = prepare(copy, 90)
    name = "account.exit_interview_score"
    assert name in after.current_only and name not in guarded.inputs
    flag = next(f for f in guarded.flags if f.input == name)
    assert flag.reason == "current only" and not flag.kept
    # the late rows move the end of the data (more snapshot days), but not one value on the days
    # there were before
    columns = ["account_id", "day", *before.inputs]
    same_days = after.frame[after.frame["day"].isin(before.frame["day"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(before.frame[columns], same_days[columns])
    _, insisted = prepare(copy, 90, allow=[name])
    assert name in insisted.inputs


def test_whatif_moves_score_and_churn_with_an_interval(trained_root: Path, portfolio: Path) -> None:
    cli = Cli(_url(trained_root))
    account = _customer(portfolio)
    data = cli.json("whatif", account, "--set", "usage_trend_14d=-0.6",
                    "--set", "active_users_per_seat=-50%")  # fmt: skip
    assert data["score_after"] < data["score_before"]
    assert data["changes"][1]["now"] == pytest.approx(data["changes"][1]["was"] * 0.5)
    assert data["replicates"] == 100 and data["level"] == 0.95
    for key in ("churn_before", "churn_after", "churn_change"):
        interval = data[key]
        assert interval["low"] <= interval["high"]
    assert 0 <= data["churn_after"]["estimate"] <= 1
    change = data["churn_after"]["estimate"] - data["churn_before"]["estimate"]
    assert data["churn_change"]["estimate"] == pytest.approx(change, abs=1e-3)
    wrong = cli.json("whatif", account, "--set", "usage_trnd=1", code=1)
    assert "did you mean 'usage_trend_14d'" in wrong["error"]
    assert "no account" in cli.json("whatif", "nobody", "--set", "seats=3", code=1)["error"]


def _customer(root: Path) -> str:
    """An account with a subscription in force at the end of the data."""
    store = Store(_url(root))
    snapshots, _ = prepare(store, 90)
    store.close()
    last = snapshots.frame[snapshots.frame["day"] == snapshots.frame["day"].max()]
    return str(last["account_id"].iloc[0])


def test_calibrate_proposes_a_model_version_backtested_beside_the_old(
    portfolio: Path, tmp_path: Path
) -> None:
    target = tmp_path / "proposed.yaml"
    data = Cli(_url(portfolio)).json("calibrate", "--folds", "3", "--out", target)
    proposed = load_model(target)
    assert proposed.version == "2" and data["proposed_model"] == "demo v2"
    assert [r["name"] for r in data["results"]] == ["demo v1", "demo v2"]
    assert all(w["proposed"] >= 1 for w in data["weights"])
    assert {c.name: c.weight for c in proposed.components} == {
        w["component"]: w["proposed"] for w in data["weights"]
    }
    assert "only the component weights changed" in target.read_text()


def test_diagnose_finds_lookalikes_in_the_same_segment(portfolio: Path) -> None:
    account = _customer(portfolio)
    data = Cli(_url(portfolio)).json("diagnose", account, "--count", "3")
    segments = _segments(portfolio)
    for group in ("renewed", "churned"):
        near = data[group]["neighbours"]
        assert 0 < len(near) <= 3
        assert all(segments[n["account_id"]] == data["segment"] for n in near)
        assert account not in {n["account_id"] for n in near}
        assert data[group]["differences"]


def _segments(root: Path) -> dict[str, str]:
    table = KIND_TABLES["accounts"]
    store = Store(_url(root))
    with store.engine.connect() as connection:
        found = dict(connection.execute(select(table.c.account_id, table.c.segment)).all())
    store.close()
    return found


def test_forecast_renewals_and_nrr_with_a_backtest(portfolio: Path) -> None:
    data = Cli(_url(portfolio)).json("forecast", "--horizon", "90")
    (h,) = data["horizons"]
    renewing = h["expected_renewing_arr"]
    assert renewing["low"] <= renewing["expected"] <= renewing["high"] <= h["arr_up_for_renewal"]
    per_account = sum(a["expected_renewing_arr"] for a in h["accounts"])
    assert per_account == pytest.approx(renewing["expected"], abs=1.0)
    assert all(0 <= a["renewal_probability"] <= 1 for a in h["accounts"])
    assert all(0 <= a["days_to_renewal"] <= 90 for a in h["accounts"])
    assert 0.5 < h["nrr"]["expected"] < 1.5
    checks = data["backtest"]
    assert checks and all(c["horizon_days"] == 90 for c in checks)
    assert all(c["actual_renewing_arr"] >= 0 and c["actual_nrr"] > 0 for c in checks)
    assert data["backtest_summary"]["90"]["folds"] == len(checks)


def test_without_history_or_models_the_commands_say_what_to_do(sqlite_cli: Cli) -> None:
    assert "no usage events" in sqlite_cli.json("train", code=1)["error"]
    assert sqlite_cli.json("models") == {"models": []}
    assert "no usage events" in sqlite_cli.json("forecast", code=1)["error"]
    assert "train one with `tenure train`" in sqlite_cli.json("whatif", "a", "--set", "seats=1",
                                                              code=1)["error"]  # fmt: skip


def test_forecast_backtests_month_starts_against_revenue_loaded_for_them(portfolio: Path) -> None:
    from tenure.churn.snapshots import data_span

    store = Store(_url(portfolio))
    first, last = data_span(store)
    store.close()
    mid = (last - timedelta(days=150)).replace(day=15)  # a mid-month day inside the data
    cli = Cli(_url(portfolio))
    for args in (["--horizon", "60"], ["--as-of", mid.isoformat(), "--horizon", "90"]):
        data = cli.json("forecast", *args)
        checks = data["backtest"]
        assert checks, args
        for c in checks:
            day = date.fromisoformat(c["as_of"])
            assert day.day == 1 and day <= date.fromisoformat(data["as_of"])  # month starts only
            assert c["actual_nrr"] > 0 and c["actual_renewing_arr"] >= 0
    assert data["as_of"] == mid.isoformat()
    after = cli.json("forecast", "--as-of", "2030-01-01", code=1)["error"]
    assert after == f"2030-01-01 is after the last day of the data ({last.isoformat()})"
    early = (first - timedelta(days=40)).isoformat()
    before = cli.json("forecast", "--as-of", early, code=1)["error"]
    assert before.startswith(f"too little history before {early} to fit a forecast")
