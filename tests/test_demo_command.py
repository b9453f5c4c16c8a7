"""`tenure demo` end to end: generate a small portfolio and import every kind like a user."""

from __future__ import annotations

from pathlib import Path

from conftest import Cli


def test_demo_imports_every_kind_without_loss(sqlite_cli: Cli, tmp_path: Path) -> None:
    data = sqlite_cli.json("demo", "--accounts", "25", "--months", "14", "--out", tmp_path / "d")
    imports = data["imports"]
    assert {i["kind"] for i in imports} == set(data["summary"]["records"])
    for report in imports:
        assert report["rejected"] == 0, report
        assert report["rows"] == report["accepted"] + report["duplicates"]
    records = data["summary"]["records"]
    assert all(count > 0 for count in records.values()), records
    assert records["events"] == sum(i["accepted"] for i in imports if i["kind"] == "events")


def test_demo_twice_changes_nothing(sqlite_cli: Cli, tmp_path: Path) -> None:
    args = ("demo", "--accounts", "10", "--months", "6", "--out", tmp_path / "d")
    first = sqlite_cli.json(*args)
    second = sqlite_cli.json(*args)
    assert sum(i["accepted"] for i in second["imports"]) == 0
    assert second["summary"]["records"] == first["summary"]["records"]


def test_demo_backtests_the_health_score_or_says_why_not(sqlite_cli: Cli, tmp_path: Path) -> None:
    short = sqlite_cli.json("demo", "--accounts", "10", "--months", "6", "--out", tmp_path / "s")
    assert short["backtest"] is None and "too little history" in short["backtest_note"]
    long = sqlite_cli.run("demo", "--accounts", "60", "--months", "18", "--out", tmp_path / "l")
    assert "Does the health score predict churn?" in long.stdout
    assert "health score" in long.stdout and "logistic" in long.stdout
    assert (tmp_path / "l" / "backtest-90d.html").read_text().count("<svg") == 5
    assert "Alerts from " in long.stdout and "tenure alerts show ID" in long.stdout
