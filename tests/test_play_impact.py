"""Measured impact of playbooks: matching, the intervals, and effects known in advance."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert

from conftest import Cli, copy_database, portfolio_url
from tenure.churn.snapshots import account_attributes
from tenure.health.scoring import active_model, day_number, scores_on
from tenure.plays import impact as module
from tenure.plays.impact import (
    CALIPER,
    COVARIATES,
    HORIZONS,
    MIN_PAIRS,
    WINDOW_DAYS,
    History,
    ImpactReport,
    Play,
    PlaybookImpact,
    effect,
    exposed,
    impact_report,
    interval,
    load_plays,
    match,
    measure,
    needed_days,
    renewals,
    t_quantile,
)
from tenure.store import Store
from tenure.store.tables import plays

STARTS = (date(2025, 6, 2), date(2025, 8, 1), date(2025, 12, 1))  # 60 days apart: the washout bites
PER_START = 10


# Matching -------------------------------------------------------------------------------------


def _rows(rows: list[tuple[str, int, str, float, float]]) -> pd.DataFrame:
    """(account, day, segment, health, usage trend); the other covariates the same for all."""
    frame = pd.DataFrame(rows, columns=["account_id", "day", "segment", "health_score",
                                        "usage_trend_14d"])  # fmt: skip
    frame["health_change_30d"] = 0.0
    frame["days_to_renewal"] = 100.0
    return frame


@pytest.fixture
def candidates() -> pd.DataFrame:
    """Day 1: smb accounts at health 40, 42 ... 58, enterprise ones at 41, 43 ... 59; one smb
    account with no usage trend."""
    rows = [(f"s{h}", 1, "smb", float(h), 0.1) for h in range(40, 60, 2)]
    rows += [(f"e{h}", 1, "enterprise", float(h), 0.1) for h in range(41, 60, 2)]
    return _rows([*rows, ("s-missing", 1, "smb", 47.0, np.nan)])


def test_matching_keeps_to_the_segment_and_day_within_the_caliper(
    candidates: pd.DataFrame,
) -> None:
    treated = _rows([
        ("a", 1, "smb", 50.6, 0.1),  # enterprise 51 is nearer: smb 50 is the match
        ("b", 1, "smb", 50.6, 0.1),  # the same again: the same control (with replacement)
        ("c", 1, "smb", 140.0, 0.1),  # far beyond every smb account: unmatched
        ("d", 2, "smb", 50.0, 0.1),  # no candidates on day 2
        ("e", 1, "mid-market", 50.0, 0.1),  # no candidates of that segment
        ("f", 1, "smb", 47.0, np.nan),  # missing matches missing only
    ])  # fmt: skip
    chosen, distance = match(treated, candidates)
    names = [candidates["account_id"][c] if c >= 0 else None for c in chosen]
    assert names == ["s50", "s50", None, None, None, "s-missing"]
    assert distance[0] == distance[1] and 0 < distance[0] <= CALIPER
    assert distance[5] == 0 and np.isnan(distance[2:5]).all()


def test_a_missing_covariate_never_matches_a_present_one(candidates: pd.DataFrame) -> None:
    treated = _rows([("g", 1, "smb", 50.0, np.nan)])  # only s-missing lacks it, at health 47
    assert match(treated, candidates[candidates["account_id"] != "s-missing"])[0][0] == -1
    assert candidates["account_id"][match(treated, candidates)[0][0]] == "s-missing"


def test_a_wider_caliper_matches_more() -> None:
    pool = _rows([(f"p{h}", 1, "smb", float(h), 0.0) for h in range(40, 60)])
    treated = _rows([("t", 1, "smb", 75.0, 0.0)])
    assert match(treated, pool)[0][0] == -1
    assert pool["account_id"][match(treated, pool, caliper=2.0)[0][0]] == "p59"
    assert set(COVARIATES) <= set(pool.columns)


# Intervals ------------------------------------------------------------------------------------


def test_the_interval_covers_a_known_difference_and_narrows_with_more_pairs() -> None:
    rng = np.random.default_rng(3)
    widths = {}
    for n in (40, 640):
        treated, control = rng.normal(52.0, 3.0, n), rng.normal(50.0, 3.0, n)
        found = effect(treated, control)
        assert found.ci is not None and found.difference is not None
        assert found.ci[0] < 2.0 < found.ci[1]
        assert found.ci[0] < found.difference < found.ci[1]
        widths[n] = found.ci[1] - found.ci[0]
    assert widths[640] < widths[40] / 3  # about 1/sqrt(16)


def test_independent_pairs_get_about_the_usual_t_interval_covering_95_times_in_100() -> None:
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(200):
        differences = rng.normal(1.5, 4.0, 40)
        low, high = interval(differences)
        covered += low <= 1.5 <= high
        usual = t_quantile(39) * differences.std(ddof=1) / np.sqrt(40)
        assert usual < (high - low) / 2 <= usual * np.sqrt(40 / 39) + 1e-9
    assert 0.92 <= covered / 200 <= 0.99


def test_students_t_quantiles() -> None:
    table = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 10: 2.2281, 30: 2.0423}
    for dof, value in table.items():
        assert abs(t_quantile(dof) - value) < 0.004


def test_a_reused_control_widens_the_interval() -> None:
    differences = np.random.default_rng(5).normal(0.0, 1.0, 30)
    treated = [f"t{i}" for i in range(30)]
    apart = interval(differences, treated, [f"c{i}" for i in range(30)])
    shared = interval(differences, treated, [f"c{i % 6}" for i in range(30)])  # each used 5 times
    assert apart == interval(differences.copy(), treated, [f"c{i}" for i in range(30)])
    assert shared[1] - shared[0] > apart[1] - apart[0]
    assert effect(np.ones(6), np.zeros(6), rate=True).ci == (1.0, 1.0)
    assert effect(np.array([1.0, 0, 0, 0, 1, 0]), np.zeros(6), rate=True).ci[0] >= -1  # type: ignore[index]


def _reused(rng: np.random.Generator) -> tuple[np.ndarray, list[str], list[str]]:
    """Matched pairs where controls are reused: 25 treated accounts on two days each, shifted
    up against 60 candidate accounts, outcomes with an account effect that lasts across days
    (true effect 1.5). The differences, with each pair's treated and control account."""
    frames = []
    for prefix, size, shift, effect_ in (("t", 25, 1.0, 1.5), ("c", 60, 0.0, 0.0)):
        x, lasting = rng.normal(shift, 1.0, size), rng.normal(0.0, 3.0, size)
        for day in (1, 2):
            health = x + rng.normal(0.0, 0.2, size)
            outcome = effect_ + lasting + 2 * health + rng.normal(0.0, 3.0, size)
            frames.append(_rows([(f"{prefix}{i}", day, "smb", h, 0.0)
                                 for i, h in enumerate(health)]).assign(y=outcome))  # fmt: skip
    treated, candidates = pd.concat(frames[:2]), pd.concat(frames[2:])
    chosen, _ = match(treated.reset_index(drop=True), candidates.reset_index(drop=True))
    ok = chosen >= 0
    ours = treated["account_id"].to_numpy()[ok].tolist()
    theirs = candidates["account_id"].to_numpy()[chosen[ok]].tolist()
    return treated["y"].to_numpy()[ok] - candidates["y"].to_numpy()[chosen[ok]], ours, theirs


def test_the_interval_allows_for_reused_controls_covering_the_truth_95_times_in_100() -> None:
    rng = np.random.default_rng(3)
    robust = naive = 0
    reuse = []
    for _ in range(200):
        differences, ours, theirs = _reused(rng)
        reuse.append(len(theirs) / len(set(theirs)))
        low, high = interval(differences, ours, theirs)
        robust += low <= 1.5 <= high
        low, high = interval(differences)  # the pairs as if independent
        naive += low <= 1.5 <= high
    assert 1.7 < np.mean(reuse) < 2.5  # each control serves about two plays
    assert robust / 200 >= 0.93
    assert naive / 200 < 0.9


def test_too_few_pairs_give_no_difference() -> None:
    few = effect(np.array([1.0, 2.0, np.nan, 4.0, 5.0]), np.array([0.0, 0.0, 0.0, np.nan, 0.0]))
    assert (few.n, few.treated, few.control) == (3, 2.6667, 0.0)
    assert few.difference is None and few.ci is None and not few.enough
    assert effect(np.array([]), np.array([])).to_dict() == {
        "n": 0, "treated": None, "control": None, "difference": None, "ci": None,
    }  # fmt: skip


# Plays started on alerts: controls chosen with what was known on the start day -----------------


class Simulated(History):
    """Signals and health from a frame, no store: ``health`` is a column."""

    def health(self, keys: list[tuple[str, int]]) -> np.ndarray:  # type: ignore[override]
        return self.values("health", keys)


def _alerted(seed: int, accounts: int = 300, days: int = 540) -> tuple[Simulated, list[Play], int]:
    """Accounts whose health wanders, some dipping (24 points over 48 days, back over 120); a
    risk-save play starts on a health drop of 10 or more over 30 days, on 15% of such accounts a
    day, none within 90 days of the last. The play does nothing: its true effect is 0. The
    accounts it starts on later are the ones still dipping, whose health gets worse."""
    rng = np.random.default_rng(seed)
    wander = np.zeros((accounts, days))
    for day in range(1, days):
        wander[:, day] = 0.9 * wander[:, day - 1] + rng.normal(0.0, 1.2, accounts)
    dips = np.zeros((accounts, days))
    shape = np.concatenate([np.linspace(0, 24, 48), np.linspace(24, 0, 120)])
    for account in range(accounts):
        for start in np.flatnonzero(rng.random(days) < 1 / 250):
            dips[account, start : start + len(shape)] += shape[: days - start]
    health = np.clip(rng.uniform(45, 80, accounts)[:, None] + wander - dips, 0, 100)
    first, names = day_number(date(2024, 1, 1)), [f"a{i:03d}" for i in range(accounts)]
    found: list[Play] = []
    last_start = np.full(accounts, -1_000)
    for day in range(60, days):
        alert = (health[:, day] - health[:, day - 30] <= -10) & (day - last_start > WINDOW_DAYS)
        for account in np.flatnonzero(alert & (rng.random(accounts) < 0.15)):
            last_start[account] = day
            found.append(Play(len(found) + 1, "risk-save", names[account], first + day,
                              first + day + 30))  # fmt: skip
    read = np.array(needed_days(found, HORIZONS, first + days - 1))
    frame = pd.DataFrame({
        "account_id": np.repeat(names, len(read)), "day": np.tile(read, accounts),
        "health": health[:, read - first].ravel(), "usage_trend_14d": 0.0,
        "days_to_renewal": 100.0, "mrr": 0.0,
    })  # fmt: skip
    history = Simulated(frame, None, {a: {"segment": "smb"} for a in names})  # type: ignore[arg-type]
    return history, found, first + days - 1


def test_risk_set_matching_is_unbiased_where_excluding_later_plays_was_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history, found, last = _alerted(seed=1)
    now = measure("risk-save", found, history, {}, HORIZONS, last)
    later = [p for p in now.pairs if p.control_started is not None]
    assert later and all(p.control_started > p.day for p in later)  # type: ignore[operator]
    for horizon, e in now.health_change.items():
        assert e.enough and e.ci is not None and e.ci[0] <= 0 <= e.ci[1], (horizon, e)
    assert any("got the playbook themselves" in n for n in now.notes)
    # The controls that got the play later are the ones whose health got worse
    days = np.array([day_number(p.day) for p in now.pairs])
    change = history.health([(p.control_id, d + 60) for p, d in zip(now.pairs, days, strict=True)])
    change -= history.health([(p.control_id, int(d)) for p, d in zip(now.pairs, days, strict=True)])
    soon = np.array([p.control_started is not None and (p.control_started - p.day).days <= 60
                     for p in now.pairs])  # fmt: skip
    assert np.nanmean(change[soon]) < np.nanmean(change[~soon]) - 5
    # The old rule kept out any account with a play within 90 days after the start, too
    monkeypatch.setattr(module, "exposed", lambda play, day: abs(play.day - day) <= WINDOW_DAYS)
    before = measure("risk-save", found, history, {}, HORIZONS, last)
    for horizon, e in before.health_change.items():
        assert e.ci is not None and e.ci[1] < 0, (horizon, e)  # biased: "the play hurts"
        assert abs(now.health_change[horizon].difference or 0) < abs(e.difference or 0) / 4


def test_an_account_is_at_risk_unless_a_play_started_within_the_window_or_is_running() -> None:
    def play(start: int, ended: int | None) -> Play:
        return Play(1, "risk-save", "a", start, ended)

    assert exposed(play(100, 110), 100)  # the start day itself
    assert exposed(play(100, 110), 100 + WINDOW_DAYS)  # over, but started within the window
    assert not exposed(play(100, 110), 101 + WINDOW_DAYS)
    assert exposed(play(100, None), 500)  # still running
    assert exposed(play(100, 300), 300) and not exposed(play(100, 300), 301)
    assert not exposed(play(100, None), 99)  # a later play does not keep an account out


def test_renewal_is_the_first_renewal_or_churn_known_within_180_days() -> None:
    outcomes = {
        "a": [(110, "renewed"), (150, "churned")],
        "b": [(90, "renewed"), (200, "churned")],  # renewed before the start; churned within
        "c": [(300, "expanded")],  # too late
        "d": [(120, "reactivated"), (130, "contracted")],  # contracted counts as renewed
    }
    days = np.array([100, 100, 100, 100, 100])
    found = renewals(outcomes, ["a", "b", "c", "d", "e"], days, last=1_000)
    assert found[0] == 1.0 and found[1] == 0.0 and np.isnan(found[2]) and found[3] == 1.0
    assert np.isnan(found[4])
    assert np.isnan(renewals(outcomes, ["a"], np.array([100]), last=105)[0])  # not known yet


# Effects known in advance, on a generated portfolio ---------------------------------------------


@dataclass
class Measured:
    url: str
    report: ImpactReport
    started: dict[str, list[tuple[str, date]]]
    segments: dict[str, str]

    def playbook(self, name: str) -> PlaybookImpact:
        return next(p for p in self.report.playbooks if p.playbook == name)


def _plays(store: Store) -> dict[str, list[tuple[str, date]]]:
    """Three playbooks: "rise" on the accounts whose health rose most over the next 60 days,
    "random" on accounts drawn at random, "few" on three accounts."""
    registered = active_model(store)
    accounts = sorted(account_attributes(store).index)
    days = [d + timedelta(days=k) for d in STARTS for k in (0, 60)]
    health = {
        (s.account_id, s.as_of): s.score for s in scores_on(store, registered, accounts, days)
    }
    rng = np.random.default_rng(7)
    started: dict[str, list[tuple[str, date]]] = {"rise": [], "random": [], "few": []}
    for day in STARTS:
        later = day + timedelta(days=60)
        scored = [a for a in accounts if None not in (health.get((a, day)), health.get((a, later)))]
        rise = sorted(scored, key=lambda a: (-(health[(a, later)] - health[(a, day)]), a))
        started["rise"] += [(a, day) for a in rise[:PER_START]]
        started["random"] += [(str(a), day) for a in rng.choice(scored, PER_START, replace=False)]
    started["few"] = [(a, STARTS[0]) for a in rng.choice(accounts, 3, replace=False).tolist()]
    return started


def _insert(store: Store, started: dict[str, list[tuple[str, date]]]) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [{"playbook": name, "account_id": account, "started_day": day, "started_by": "test",
             "playbooks_digest": "0" * 64, "baseline": {}, "started_at": now,
             "status": "completed" if day < STARTS[-1] else "running",
             "ended_day": day + timedelta(days=30) if day < STARTS[-1] else None}
            for name, found in started.items() for account, day in found]  # fmt: skip
    with store.transaction() as connection:
        connection.execute(insert(plays), rows)


@pytest.fixture(scope="module")
def measured(portfolio: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Measured]:
    root = tmp_path_factory.mktemp("impact")
    copy_database(portfolio, root)
    store = Store(portfolio_url(root))
    started = _plays(store)
    _insert(store, started)
    segments = account_attributes(store)["segment"].to_dict()
    yield Measured(portfolio_url(root), impact_report(store), started, segments)
    store.close()


def test_plays_on_accounts_about_to_improve_show_a_positive_effect(measured: Measured) -> None:
    rise = measured.playbook("rise")
    at60 = rise.health_change[60]
    assert at60.enough and at60.difference is not None and at60.ci is not None
    assert at60.ci[0] > 0 < at60.difference  # the interval excludes no effect
    assert at60.treated is not None and at60.control is not None and at60.treated > at60.control
    assert all(e.difference is not None and e.difference > 0
               for e in rise.health_change.values())  # fmt: skip


def test_plays_on_random_accounts_show_none(measured: Measured) -> None:
    random = measured.playbook("random")
    assert random.matched >= MIN_PAIRS
    for found in random.health_change.values():
        assert found.ci is not None and found.ci[0] <= 0 <= found.ci[1]
    rise = measured.playbook("rise").health_change[60].difference
    assert rise is not None and abs(random.health_change[60].difference or 0) < rise / 2


def test_controls_share_the_segment_and_had_no_play_of_the_playbook_before(
    measured: Measured,
) -> None:
    treated_later = 0
    for found in measured.report.playbooks:
        assert (
            found.matched + found.unmatched == found.plays == len(measured.started[found.playbook])
        )
        assert len(found.pairs) == found.matched
        treated = measured.started[found.playbook]
        for pair in found.pairs:
            assert (pair.account_id, pair.day) in treated
            assert measured.segments[pair.control_id] == measured.segments[pair.account_id]
            assert pair.distance <= CALIPER
            own = sorted(day for account, day in treated if account == pair.control_id)
            assert not any(0 <= (pair.day - day).days <= WINDOW_DAYS for day in own)
            assert pair.control_started == min((d for d in own if d > pair.day), default=None)
            treated_later += pair.control_started is not None
    assert treated_later  # accounts that got the playbook later served as controls before
    washed_out = {a for a, d in measured.started["rise"] if d == STARTS[0]}
    assert not any(p.control_id in washed_out for p in measured.playbook("rise").pairs
                   if p.day == STARTS[1])  # fmt: skip


def test_a_playbook_with_few_plays_says_so(measured: Measured) -> None:
    few = measured.playbook("few")
    assert few.plays == 3
    assert all(e.difference is None and e.ci is None for _, e in few.outcomes())
    assert any(n.startswith("too few plays to say") for n in few.notes)
    assert [p.playbook for p in measured.report.playbooks] == ["few", "random", "rise"]


def test_the_report_shape(measured: Measured) -> None:
    data = measured.report.to_dict()
    assert data["as_of"] == "2026-04-30" and data["horizons"] == [30, 60, 90]
    for found in data["playbooks"]:
        assert set(found) == {"playbook", "plays", "matched", "unmatched", "health_change",
                              "renewal_rate", "expansion_rate", "notes"}  # fmt: skip
        assert list(found["health_change"]) == ["30", "60", "90"]
        for outcome in (*found["health_change"].values(), found["renewal_rate"],
                        found["expansion_rate"]):  # fmt: skip
            assert set(outcome) == {"n", "treated", "control", "difference", "ci"}
        for rate in ("renewal_rate", "expansion_rate"):
            treated = found[rate]["treated"]
            assert treated is None or 0 <= treated <= 1


def test_an_earlier_day_sees_less(measured: Measured) -> None:
    store = Store(measured.url)
    try:
        earlier = impact_report(store, as_of=STARTS[1] + timedelta(days=45), playbooks=["rise"])
        assert impact_report(store, playbooks=["no-such-playbook"]).playbooks == []
        ended = {(p.day, p.ended) for p in load_plays(store, date(2026, 4, 30), ["rise"])}
        then = {(p.day, p.ended) for p in load_plays(store, STARTS[1] + timedelta(days=10))}
    finally:
        store.close()
    first, second, third = (day_number(d) for d in STARTS)
    assert ended == {(first, first + 30), (second, second + 30), (third, None)}  # None: running
    assert then == {(first, first + 30), (second, None)}  # the second had not ended yet
    found = earlier.playbooks[0]
    assert found.plays == 2 * PER_START  # the third start is after the day asked
    assert found.health_change[60].n < found.matched  # the second start's 60 days are not over
    assert day_number(earlier.as_of) == day_number(STARTS[1]) + 45


def test_the_command_gives_the_same_report_again(
    measured: Measured, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tenure.cli.plays", reason="tenure plays is not there yet")
    from tenure.cli.impact import plays_impact, render_impact

    assert inspect.signature(plays_impact).parameters["caliper"].default == CALIPER
    cli = Cli(measured.url)
    data = cli.json("plays", "impact", "--playbook", "rise", "--playbook", "nope")
    expected = measured.report.to_dict()  # computed afresh: the same data, the same report
    assert data["as_of"] == expected["as_of"] and data["horizons"] == expected["horizons"]
    assert data["playbooks"] == [p for p in expected["playbooks"] if p["playbook"] == "rise"]
    assert "after the last day" in cli.json("plays", "impact", "--as-of", "2031-01-01",
                                            code=1)["error"]  # fmt: skip
    render_impact(measured.report)
    shown = capsys.readouterr().out
    assert "few: 3 plays" in shown and "too few plays to say" in shown
    assert "rise: 30 plays" in shown and "health change 60d" in shown
