"""Health through the CLI, as a user drives it: signals, score, explain, rescore, detect, readiness.

A tiny portfolio is imported from files with ``tenure import``: a healthy account, one whose usage
collapses in the last 14 days with nobody in touch (silent churn), two that collapse the same way
but are in touch (a touchpoint, an open ticket), and one using 9 of its 10 paid seats (exactly the
seat-pressure threshold). Every command runs in-process through the ``cli`` fixture, on SQLite and
PostgreSQL where it is cheap.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import Cli
from tenure.health import default_model, load_model
from tenure.health.scoring import today
from tenure.readiness import OBJECTS
from tenure.signals import GROUPS, SOURCES
from tenure.store import Store
from tenure.store.tables import health_current
from test_health_scoring import _write

D = date(2025, 3, 31)
FEATURES = ("reports", "export", "admin")
ACCOUNTS = ("A1", "F", "O", "Q", "T")
# Q's usage: 44 events every other day 16 to 102 days back (its 90-day baseline), then one event
# 5 days back in the last 14 days.
BASELINE = range(16, 103, 2)
RECENT = (5,)
Q_TREND = (len(RECENT) / 14) / (len(BASELINE) / 90) - 1


def _portfolio(folder: Path, base: date) -> dict[str, Path]:
    """The five accounts' files, in import order, with ``base`` as "today"."""

    def day(back: int) -> str:
        return (base - timedelta(days=back)).isoformat()

    events = ["account_id,user_id,event,feature,timestamp"]
    for back in range(104):  # A1: 5 users on 8 seats; F: 9 users on 10 seats; steady, daily
        feature = FEATURES[back % 3]
        events.append(f"A1,a{back % 5},click,{feature},{day(back)}T10:00:00Z")
        events.append(f"F,f{back % 9},click,{feature},{day(back)}T11:00:00Z")
    for account in ("Q", "T", "O"):  # collapsing usage
        for i, back in enumerate((*RECENT, *BASELINE)):
            events.append(
                f"{account},{account}{i % 3},click,{FEATURES[i % 3]},{day(back)}T09:00:00Z"
            )
    return {
        "accounts": _write(
            folder / "accounts.csv",
            ["account_id,name,segment,lifecycle_stage,created_at"]
            + [f"{a},Company {a},smb,adoption,{day(400)}" for a in ACCOUNTS],
        ),
        "subscriptions": _write(
            folder / "subscriptions.csv",
            ["subscription_id,account_id,plan,seats,mrr,start_date,renewal_date"]
            + [
                f"S{a},{a},Pro,{8 if a == 'A1' else 10},1000,{day(400)},{day(-200)}"
                for a in ACCOUNTS
            ],
        ),
        "events": _write(folder / "events.csv", events),
        "tickets": _write(
            folder / "tickets.csv",
            [
                "ticket_id,account_id,priority,opened_at,resolved_at,csat,subject",
                f"T1,A1,P2,{day(20)}T09:00:00Z,{day(18)}T09:00:00Z,4,Export question",
                f"T2,O,P3,{day(7)}T09:00:00Z,,,Cannot log in",  # still open
            ],
        ),
        "responses": _write(
            folder / "responses.jsonl",
            [
                '{"response_id": "R1", "account_id": "A1", "survey": "nps", "score": 9, '
                f'"comment": "Great product", "responded_at": "{day(15)}T09:00:00Z"}}'
            ],
        ),
        "touchpoints": _write(
            folder / "touchpoints.csv",
            ["touchpoint_id,account_id,type,occurred_at", f"P1,T,call,{day(10)}T15:00:00Z"],
        ),
    }


def _import_all(cli: Cli, folder: Path, base: date) -> None:
    for kind, path in _portfolio(folder, base).items():
        report = cli.json("import", kind, str(path))
        assert report["rejected"] == 0 and report["accepted"] == report["rows"] > 0, report
        assert report["scores_updated"] == 0  # nothing is scored before `tenure score`


def _model_file(path: Path, name: str, version: int, **weights: int) -> Path:
    """A copy of the default model, renamed, with other component weights."""
    text = default_model().text.replace("model: default", f"model: {name}")
    text = text.replace("version: 1", f"version: {version}")
    for component, weight in weights.items():
        head = f"  {component}:\n"
        start = text.index(head)
        line = text.index("    weight: ", start)
        end = text.index("\n", line)
        text = text[:line] + f"    weight: {weight}" + text[end:]
    path.write_text(text, encoding="utf-8")
    return path


def _errors(result: Any) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


# tenure signals ---------------------------------------------------------------------------------


def test_signals_lists_the_signal_stack(sqlite_cli: Cli) -> None:
    listed = sqlite_cli.json("signals")["signals"]
    assert len(listed) == 43
    names = [s["name"] for s in listed]
    assert len(set(names)) == len(names)
    assert {s["group"] for s in listed} == set(GROUPS)
    sources = {s.name for s in SOURCES}
    for s in listed:
        assert {"name", "group", "description", "unit", "sources", "windows", "healthier"} <= set(s)
        assert s["group"] in GROUPS and s["description"] and s["unit"], s
        assert s["healthier"] in ("higher", "lower", "context"), s
        assert isinstance(s["windows"], list) and isinstance(s["sources"], list), s
        assert set(s["sources"]) <= sources, s
    by_name = {s["name"]: s for s in listed}
    assert by_name["usage_trend_14d"]["sources"] == ["usage"]
    assert by_name["usage_trend_14d"]["healthier"] == "higher"
    assert by_name["open_tickets"]["healthier"] == "lower"
    assert "subscriptions" in by_name["seat_utilisation"]["sources"]  # through seats
    plain = sqlite_cli.run("signals").stdout
    assert plain.startswith("43 signals")


# A bad model file -------------------------------------------------------------------------------

BREAKAGES = [
    # (what, replace, with, field in the error, the line it points at)
    ("negative weight", "    weight: 25\n", "    weight: -25\n", "components.usage.weight", "-25"),
    (
        "unknown signal",
        "      usage_trend_14d:",
        "      usage_trend_15d:",
        "components.usage.signals.usage_trend_15d",
        "usage_trend_15d",
    ),
    ("key given twice", "version: 1\n", "version: 1\nversion: 2\n", "version", "version: 2"),
    (
        "bands upside down",
        "bands: {green: 70, yellow: 40}",
        "bands: {green: 40, yellow: 70}",
        "bands.yellow",
        "yellow: 70",
    ),
    (
        "broken YAML",
        "bands: {green: 70, yellow: 40}",
        "bands: {green: 70, yellow: 40",
        "(yaml)",
        None,
    ),
]


@pytest.mark.parametrize(("old", "new", "field", "at"), [b[1:] for b in BREAKAGES],
                         ids=[b[0] for b in BREAKAGES])  # fmt: skip
def test_a_bad_model_file_is_one_line_and_no_traceback(
    sqlite_cli: Cli, tmp_path: Path, old: str, new: str, field: str, at: str | None
) -> None:
    text = default_model().text
    assert text.count(old) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(old, new), encoding="utf-8")
    lines = bad.read_text(encoding="utf-8").splitlines()

    result = sqlite_cli.run("score", "--model", str(bad), code=1)
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an error raised
    assert result.stdout == ""
    (line,) = _errors(result)
    found = re.fullmatch(rf"Error: {re.escape(str(bad))}:(\d+): (\S+): (.+)", line)
    assert found, line
    number, named, message = int(found[1]), found[2], found[3]
    assert named == field and message.strip()
    assert 1 <= number <= len(lines)
    if at is not None:
        assert at in lines[number - 1], (number, lines[number - 1])

    data = sqlite_cli.json("score", "--model", str(bad), code=1)
    assert data == {"error": line.removeprefix("Error: ")}


def test_explaining_an_unknown_account_is_one_clear_line(sqlite_cli: Cli) -> None:
    assert sqlite_cli.json("explain", "NOPE", code=1) == {"error": "no account 'NOPE'"}
    result = sqlite_cli.run("explain", "NOPE", "--from", "2025-01-01", "--to", "2025-02-01", code=1)
    assert isinstance(result.exception, SystemExit) and result.stdout == ""
    assert _errors(result) == ["Error: no account 'NOPE'"]


# tenure detect ----------------------------------------------------------------------------------


def test_detect_finds_silent_churn_and_seat_pressure(cli: Cli, tmp_path: Path) -> None:
    _import_all(cli, tmp_path, D)
    found = cli.json("detect", "--as-of", D.isoformat())["detections"]
    for d in found:
        assert set(d) == {"account_id", "kind", "direction", "reason"}, d
        assert d["reason"] and d["direction"] in ("risk", "expansion"), d
        assert d["account_id"] in ACCOUNTS
    by = {(d["account_id"], d["kind"]): d for d in found}
    assert len(by) == len(found)

    # Q's signals as of D: its own 90-day baseline against the last 14 days, nobody in touch.
    q = cli.json("signals", "--account", "Q", "--as-of", D.isoformat())["signals"]
    assert q["usage_trend_14d"] == pytest.approx(Q_TREND, abs=1e-12)
    assert (q["open_tickets"], q["touchpoints_30d"], q["ticket_spike"]) == (0, 0, 1)
    assert q["days_since_activity"] == RECENT[0]

    silent = by[("Q", "silent_churn")]
    assert silent["direction"] == "risk"
    assert Q_TREND < -0.8
    assert silent["reason"].startswith(f"usage {Q_TREND:+.0%} against its own 90-day baseline")
    assert "no open tickets" in silent["reason"] and "no touchpoints" in silent["reason"]
    assert silent["reason"].endswith(f"last activity {RECENT[0]} days ago")
    # The same collapse is not silent with a touchpoint or an open ticket; steady usage is fine.
    assert {a for a, kind in by if kind == "silent_churn"} == {"Q"}

    seats = by[("F", "seat_headroom")]
    assert seats["direction"] == "expansion"
    assert seats["reason"] == "9 people active in 30 days on 10 paid seats (90%)"
    assert {a for a, kind in by if kind == "seat_headroom"} == {"F"}  # A1: 5 of 8, Q: 3 of 10


# tenure score, explain, rescore, readiness ------------------------------------------------


def _health(report: dict[str, Any]) -> dict[str, Any]:
    objects = {o["object"]: o for o in report["objects"]}
    assert list(objects) == list(OBJECTS) and len(objects) == 6
    for o in report["objects"]:
        assert {"object", "level", "label", "evidence", "blocked", "next_step"} <= set(o)
        assert 0 <= o["level"] <= 5
    health: dict[str, Any] = objects["health_score"]
    return health


def test_score_explain_rescore_and_readiness(cli: Cli, tmp_path: Path) -> None:
    _import_all(cli, tmp_path, D)
    unscored = _health(cli.json("readiness"))
    assert unscored["level"] == 0

    # Score 14 days under the model in force (the shipped default).
    run = cli.json("score", "--as-of", D.isoformat(), "--days", "14")
    assert run["model"] == default_model().label
    assert (run["first_day"], run["last_day"]) == ((D - timedelta(days=13)).isoformat(), str(D))
    assert run["accounts"] == len(ACCOUNTS)
    assert run["scores"] == 14 * run["accounts"]
    assert sum(run["bands"].values()) == run["accounts"]
    assert set(run["bands"]) <= {"green", "yellow", "red"}
    assert sorted(r["account_id"] for r in run["lowest"]) == sorted(ACCOUNTS)
    scored = _health(cli.json("readiness"))
    assert scored["level"] > unscored["level"]
    evidence = {e["name"]: e["value"] for e in scored["evidence"]}
    assert evidence["health_model"] in (default_model().name, default_model().label)
    assert evidence["accounts_scored"] == 1.0

    # A second run with another model registers it and puts it in force.
    custom_file = _model_file(tmp_path / "custom.yaml", "custom", 2, usage=45, voice=5)
    custom = load_model(custom_file).label
    assert custom == "custom v2"
    again = cli.json("score", "--model", str(custom_file), "--as-of", D.isoformat(), "--days", "14")
    assert again["model"] == custom
    assert (again["accounts"], again["scores"]) == (run["accounts"], run["scores"])
    current = {r["account_id"]: r["score"] for r in again["lowest"]}
    assert current != {r["account_id"]: r["score"] for r in run["lowest"]}  # weights differ

    # A broken model file changes nothing.
    broken = tmp_path / "broken.yaml"
    broken.write_text(custom_file.read_text().replace("weight: 45", "weight: -45"))
    error = cli.json("score", "--model", str(broken), code=1)["error"]
    assert error.startswith(f"{broken}:") and "components.usage.weight" in error

    # Explain Q's fall over 20 days: under the model in force, adding up to the hundredth.
    start = D - timedelta(days=20)
    e = cli.json("explain", "Q", "--from", start.isoformat(), "--to", D.isoformat())
    assert e["model"] == custom and e["account_id"] == "Q"
    assert (e["from"]["date"], e["to"]["date"]) == (start.isoformat(), D.isoformat())
    assert e["to"]["score"] == current["Q"]
    assert e["change"] == pytest.approx(e["to"]["score"] - e["from"]["score"], abs=1e-9)
    assert e["change"] < 0
    contributions = e["contributions"]
    assert {c["component"] for c in contributions} >= {"usage", "engagement", "recency"}
    for c in contributions:
        assert {"component", "change", "text"} <= set(c) and c["text"]
    assert round(sum(c["change"] for c in contributions) * 100) == round(e["change"] * 100)
    usage = next(c for c in contributions if c["component"] == "usage")
    assert usage["change"] < 0 and f"{Q_TREND:+.0%}" in usage["text"]  # the drop, named

    # Rescore history under a trial model: compared beside the model in force, which stays.
    trial_file = _model_file(tmp_path / "trial.yaml", "trial", 1, usage=5, support=40)
    first = D - timedelta(days=6)
    c = cli.json("rescore", "--model", str(trial_file), "--from", first.isoformat())
    assert (c["current"], c["other"]) == (custom, "trial v1")
    assert (c["from"], c["to"]) == (first.isoformat(), D.isoformat())
    assert c["accounts"] == len(ACCOUNTS)
    assert 0 <= c["band_changes"] <= c["accounts"]
    biggest = c["biggest"]
    assert {b["account_id"] for b in biggest} == set(ACCOUNTS)
    for b in biggest:
        assert b["current"] == current[b["account_id"]]  # the model in force, same day
        assert b["difference"] == round(b["other"] - b["current"], 2)
    assert [abs(b["difference"]) for b in biggest] == sorted(
        (abs(b["difference"]) for b in biggest), reverse=True
    )
    assert c["mean_change"] == pytest.approx(
        sum(b["difference"] for b in biggest) / len(biggest), abs=0.006
    )
    assert any(b["difference"] for b in biggest)
    after = cli.json("explain", "Q", "--from", start.isoformat(), "--to", D.isoformat())
    assert after == e  # same model in force, same records: the same explanation


# Importing after scoring -----------------------------------------------------------------------


def _current_scores(url: str) -> dict[str, Any]:
    store = Store(url)
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(select(health_current)).all()
    finally:
        store.close()
    return {r.account_id: r for r in rows}


def test_an_import_after_scoring_updates_the_current_score(sqlite_cli: Cli, tmp_path: Path) -> None:
    # SQLite only: tests/test_health_scoring.py runs live against batch scores on both backends.
    cli, base = sqlite_cli, today()
    _import_all(cli, tmp_path, base)
    run = cli.json("score", "--days", "1")
    assert run["last_day"] == str(base)
    before = {r["account_id"]: r["score"] for r in run["lowest"]}
    assert _current_scores(cli.url)["Q"].score == before["Q"]

    # Q comes back today: two new people use it.
    more = _write(
        tmp_path / "more.csv",
        [
            "account_id,user_id,event,feature,timestamp",
            f"Q,q8,click,reports,{base}T00:00:01Z",
            f"Q,q9,click,admin,{base}T00:00:02Z",
        ],
    )
    report = cli.json("import", "events", str(more))
    assert report["accepted"] == 2
    assert report["scores_updated"] == 1  # Q only

    stored = _current_scores(cli.url)
    assert stored["Q"].score != before["Q"]
    assert stored["Q"].as_of == base
    assert {a: r.score for a, r in stored.items() if a != "Q"} == {
        a: s for a, s in before.items() if a != "Q"
    }
    e = cli.json("explain", "Q")  # by default from 30 days before the latest day scored, today
    assert (e["from"]["date"], e["to"]["date"]) == (str(base - timedelta(days=30)), str(base))
    assert e["to"]["score"] == stored["Q"].score
    assert e["to"]["score"] > before["Q"]  # usage came back

    # A full batch rescore gives the very score the import left.
    again = cli.json("score", "--days", "1")
    assert {r["account_id"]: r["score"] for r in again["lowest"]}["Q"] == stored["Q"].score
