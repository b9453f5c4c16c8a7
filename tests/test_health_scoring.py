"""Health scores: every hundredth accounted for, explanations that add up, history and live scores.

The pure properties drive ``score()`` and ``explain()`` with random signals (missing, NaN, infinite,
extreme, on and between scale points) under the default model, a ``neutral`` copy, and copies with
a variant that switches a component off. The store tests import a tiny portfolio from files and
check what ``tenure score`` writes, that explanations match the stored history, and that live
(incremental) scores equal batch scores through the store, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tenure.health import HealthModel, Input, default_model, parse_model
from tenure.health.explain import explain
from tenure.health.score import HealthScore, score
from tenure.health.scoring import (
    LiveScores,
    account_scores_many,
    day_number,
    explain_account,
    register,
    score_portfolio,
    today,
)
from tenure.ingest import ImportReport, import_file
from tenure.signals import catalog
from tenure.store import Store
from tenure.store.tables import health_current, health_scores, imports

DEFAULT = default_model()
SIGNALS = DEFAULT.signals()
SPECS = {i.signal: i for c in DEFAULT.components for i in c.inputs}
DAY = date(2025, 3, 31)
CATALOG = catalog()

# A variant that switches a whole component off (so explanations meet a component on one side only).
DROP_VOICE = """
  - name: enterprise
    when: {segment: [enterprise]}
    weights: {voice: 0, usage: 40}
"""


def _model(neutral: bool = False, drop_voice: bool = False) -> HealthModel:
    text = DEFAULT.text
    if neutral:
        text = text.replace("missing_inputs: redistribute", "missing_inputs: neutral")
    if drop_voice:
        text = text.rstrip("\n") + "\n" + DROP_VOICE.lstrip("\n")
    model = parse_model(text, "test model")
    assert model.missing_inputs == ("neutral" if neutral else "redistribute")
    assert len(model.variants) == (2 if drop_voice else 1)
    return model


NEUTRAL = _model(neutral=True)
MODELS = (DEFAULT, NEUTRAL, _model(drop_voice=True), _model(neutral=True, drop_voice=True))


def _knots(spec: Input) -> list[float]:
    steps = spec.scale.points if hasattr(spec.scale, "points") else spec.scale.steps
    return [x for x, _ in steps]


def _values(signal: str) -> st.SearchStrategy[Any]:
    xs = _knots(SPECS[signal])
    low, high = xs[0], xs[-1]
    span = high - low
    return st.one_of(
        st.none(),
        st.floats(low - span, high + span, allow_nan=False),
        st.sampled_from(xs),  # exactly on a curve point or threshold
        st.integers(math.floor(low) - 3, math.ceil(high) + 3),
        st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 0.0, -0.0, 5e-324]),
    )


signal_dicts = st.fixed_dictionaries(
    {s: _values(s) for s in SIGNALS},
    optional={"seats": st.integers(0, 50), "account_id": st.just("a1")},  # not model inputs
)
attribute_dicts = st.fixed_dictionaries(
    {
        "segment": st.sampled_from([None, "enterprise", "smb", "Enterprise"]),
        "lifecycle_stage": st.sampled_from([None, "onboarding", "Trial", "adoption", "renewal"]),
    }
)
models = st.sampled_from(MODELS)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _check_score(model: HealthModel, s: HealthScore, signals: dict[str, Any], attrs: Any) -> None:
    """Everything a score promises, checked against the model and the signals it was given."""
    variant, components = model.variant_for(attrs)
    assert s.variant == variant
    assert [c.name for c in s.components] == [c.name for c in components]
    inputs = [i.signal for c in components for i in c.inputs]
    assert [i.signal for c in s.components for i in c.inputs] == inputs
    assert s.missing == tuple(n for n in inputs if _missing(signals[n]))
    present = len(s.missing) < len(inputs)
    neutral = model.missing_inputs == "neutral"
    for component, scored in zip(components, s.components, strict=True):
        assert scored.points == sum(i.points for i in scored.inputs)
        assert scored.share == pytest.approx(sum(i.share for i in scored.inputs), abs=1e-12)
        for spec, i in zip(component.inputs, scored.inputs, strict=True):
            assert i.points >= 0 and i.share >= 0
            if _missing(signals[spec.signal]):
                assert i.value is None
                assert i.score == (50.0 if neutral else None)
                if not neutral:
                    assert i.share == 0 and i.points == 0
            else:
                assert i.value == float(signals[spec.signal])
                assert i.score == spec.scale.score(i.value)
                assert 0 <= i.score <= 100
            # largest remainder: each input gets its exact hundredths rounded down or up
            exact = i.share * (i.score or 0.0) * 100
            assert exact - 1 - 1e-6 <= i.points <= exact + 1 + 1e-6
    total = sum(c.points for c in s.components)
    if s.points is None:
        assert not present and not neutral
        assert s.band is None and s.score is None and total == 0
        return
    assert present or neutral
    assert 0 <= s.points <= 10_000
    assert total == s.points
    assert s.band == model.bands.band(s.points / 100)
    assert s.score == s.points / 100
    assert sum(i.share for c in s.components for i in c.inputs) == pytest.approx(1.0, abs=1e-9)
    exact = sum(i.share * (i.score or 0.0) for c in s.components for i in c.inputs) * 100
    assert abs(s.points - exact) <= 0.5 + 1e-6


@settings(max_examples=150, deadline=None)
@given(model=models, signals=signal_dicts, attrs=attribute_dicts)
def test_score_points_add_up(
    model: HealthModel, signals: dict[str, Any], attrs: dict[str, Any]
) -> None:
    s = score(model, "a1", DAY, signals, attrs)
    _check_score(model, s, signals, attrs)
    assert (s.account_id, s.as_of, s.model, s.model_digest) == (
        "a1",
        DAY,
        model.label,
        model.digest,
    )
    data = s.to_dict()
    assert data["score"] == s.score and data["as_of"] == DAY.isoformat()
    assert [c["points"] for c in data["components"]] == [c.points for c in s.components]


@settings(max_examples=100, deadline=None)
@given(model=models, signals=signal_dicts, attrs=attribute_dicts)
def test_nan_and_infinity_count_as_missing(
    model: HealthModel, signals: dict[str, Any], attrs: dict[str, Any]
) -> None:
    cleaned = {k: (None if _missing(v) else v) for k, v in signals.items()}
    assert score(model, "a1", DAY, signals, attrs) == score(model, "a1", DAY, cleaned, attrs)


@settings(max_examples=150, deadline=None)
@given(
    model=models,
    before_signals=signal_dicts,
    after_signals=signal_dicts,
    before_attrs=attribute_dicts,
    after_attrs=attribute_dicts,
)
def test_explanations_add_up_exactly(
    model: HealthModel,
    before_signals: dict[str, Any],
    after_signals: dict[str, Any],
    before_attrs: dict[str, Any],
    after_attrs: dict[str, Any],
) -> None:
    before = score(model, "a1", DAY - timedelta(days=30), before_signals, before_attrs)
    after = score(model, "a1", DAY, after_signals, after_attrs)
    e = explain(before, after, CATALOG)
    assert e.change == (after.points or 0) - (before.points or 0)
    assert sum(c.change for c in e.contributions) == e.change
    names = {c.name for c in before.components} | {c.name for c in after.components}
    assert sorted(c.component for c in e.contributions) == sorted(names)
    changes = [abs(c.change) for c in e.contributions]
    assert changes == sorted(changes, reverse=True)
    for c in e.contributions:
        old, new = before.component(c.component), after.component(c.component)
        assert c.change == (new.points if new else 0) - (old.points if old else 0)
        assert sum(s.change for s in c.signals) == c.change
        olds = {i.signal: i for i in (old.inputs if old else ())}
        news = {i.signal: i for i in (new.inputs if new else ())}
        assert {s.signal for s in c.signals} == set(olds) | set(news)
        for s in c.signals:
            was, now = olds.get(s.signal), news.get(s.signal)
            assert s.change == (now.points if now else 0) - (was.points if was else 0)
            assert (s.before, s.after) == (was and was.value, now and now.value)
        assert c.text
    assert e.text
    data = e.to_dict()
    assert data["change"] == e.change / 100
    assert (data["from"]["variant"], data["to"]["variant"]) == (before.variant, after.variant)


def _full() -> dict[str, float]:
    """Every signal present, each at the middle of its scale."""
    return {s: (_knots(SPECS[s])[0] + _knots(SPECS[s])[-1]) / 2 for s in SIGNALS}


def test_a_variant_switch_that_drops_a_component_is_explained_exactly() -> None:
    model = MODELS[2]
    signals = _full() | {"nps_latest": 10.0, "usage_trend_14d": -0.5}
    before = score(model, "a1", DAY - timedelta(days=7), signals, {"segment": "smb"})
    after = score(model, "a1", DAY, signals, {"segment": "enterprise"})
    assert (before.variant, after.variant) == ("base", "enterprise")
    assert after.component("voice") is None
    voice = before.component("voice")
    assert voice is not None and voice.points > 0
    e = explain(before, after, CATALOG)
    assert e.change == after.points - before.points != 0  # type: ignore[operator]
    assert sum(c.change for c in e.contributions) == e.change
    dropped = next(c for c in e.contributions if c.component == "voice")
    assert dropped.change == -voice.points
    assert {s.signal: s.change for s in dropped.signals} == {
        i.signal: -i.points for i in voice.inputs
    }
    assert {s.after for s in dropped.signals} == {None}


# Missing inputs --------------------------------------------------------------------------------


def _shares(s: HealthScore) -> dict[str, float]:
    return {c.name: c.share for c in s.components}


def test_a_lone_input_carries_its_whole_component() -> None:
    full = score(DEFAULT, "a1", DAY, _full(), {})
    signals = _full() | {"active_users_per_seat": None, "events_per_active_user": math.nan}
    s = score(DEFAULT, "a1", DAY, signals, {})
    _check_score(DEFAULT, s, signals, {})
    assert s.missing == ("active_users_per_seat", "events_per_active_user")
    usage = s.component("usage")
    assert usage is not None
    trend, per_seat, per_user = usage.inputs
    assert trend.signal == "usage_trend_14d"
    assert trend.share == pytest.approx(25 / 100, abs=1e-12)  # usage's whole weight
    assert usage.share == pytest.approx(25 / 100, abs=1e-12)
    assert (per_seat.share, per_seat.points, per_seat.score) == (0, 0, None)
    assert (per_user.share, per_user.points, per_user.score) == (0, 0, None)
    assert usage.score == pytest.approx(trend.score, abs=1e-12)
    assert usage.points == trend.points
    assert abs(usage.points - 25 * trend.score) <= 1  # type: ignore[operator]
    assert _shares(s) == pytest.approx(_shares(full), abs=1e-12)  # nothing else moved


@pytest.mark.parametrize("stage", ["adoption", "onboarding"])
def test_a_missing_component_hands_its_weight_to_the_others(stage: str) -> None:
    attrs = {"lifecycle_stage": stage}
    variant, components = DEFAULT.variant_for(attrs)
    weights = {c.name: c.weight for c in components}
    full = score(DEFAULT, "a1", DAY, _full(), attrs)
    signals = _full() | {"nps_latest": None, "nps_trend": None}
    s = score(DEFAULT, "a1", DAY, signals, attrs)
    _check_score(DEFAULT, s, signals, attrs)
    assert s.variant == variant
    assert set(s.missing) == {"nps_latest", "nps_trend"}
    voice = s.component("voice")
    assert voice is not None
    assert (voice.share, voice.points, voice.score) == (0, 0, None)
    rest = sum(w for n, w in weights.items() if n != "voice")
    for c in s.components:
        if c.name != "voice":
            assert c.share == pytest.approx(weights[c.name] / rest, abs=1e-12)
            assert c.score == pytest.approx(full.component(c.name).score, abs=1e-9)  # type: ignore[union-attr]
    assert sum(i.share for c in s.components for i in c.inputs) == pytest.approx(1.0, abs=1e-12)
    assert sum(c.share for c in s.components) == pytest.approx(1.0, abs=1e-12)


def test_neutral_scores_a_missing_input_50_and_moves_no_weight() -> None:
    full = score(NEUTRAL, "a1", DAY, _full(), {})
    signals = _full() | {"nps_latest": None, "nps_trend": None, "events_per_active_user": None}
    s = score(NEUTRAL, "a1", DAY, signals, {})
    _check_score(NEUTRAL, s, signals, {})
    assert s.missing == ("events_per_active_user", "nps_latest", "nps_trend")
    assert _shares(s) == pytest.approx(_shares(full), abs=1e-12)
    voice = s.component("voice")
    assert voice is not None
    assert voice.share == pytest.approx(0.10, abs=1e-12)
    assert voice.score == pytest.approx(50.0, abs=1e-12)
    assert abs(voice.points - 500) <= 1
    usage = s.component("usage")
    assert usage is not None
    assert usage.inputs[2].score == 50.0
    assert usage.inputs[2].share == pytest.approx(25 / 100 / 5, abs=1e-12)  # weight 1 of 5


def test_no_input_at_all() -> None:
    nothing = dict.fromkeys(SIGNALS)
    s = score(DEFAULT, "a1", DAY, nothing, {})
    assert (s.points, s.band, s.score) == (None, None, None)
    assert s.missing == SIGNALS
    assert all(c.points == 0 and c.share == 0 and c.score is None for c in s.components)
    # neutral: everything scores 50 and the weights do not move
    s = score(NEUTRAL, "a1", DAY, nothing, {})
    assert (s.points, s.band) == (5000, NEUTRAL.bands.band(50.0))
    assert s.missing == SIGNALS


# Through the store -----------------------------------------------------------------------------


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _portfolio(folder: Path, base: date) -> dict[str, Path]:
    """Two accounts a year old: seats, 30 usage events over 60 days, a P1 ticket, an NPS answer."""

    def day(back: int) -> str:
        return (base - timedelta(days=back)).isoformat()

    events = ["account_id,user_id,event,feature,timestamp"]
    for i in range(30):
        account = "A2" if i % 3 == 0 else "A1"
        feature = ("reports", "export", "admin")[i % 3]
        events.append(f"{account},u{i % 5},click,{feature},{day(59 - 2 * i)}T10:00:00Z")
    return {
        "accounts": _write(
            folder / "accounts.csv",
            [
                "account_id,name,segment,lifecycle_stage,created_at",
                f"A1,Acme,enterprise,adoption,{day(400)}",
                f"A2,Globex,smb,onboarding,{day(400)}",
            ],
        ),
        "subscriptions": _write(
            folder / "subscriptions.csv",
            [
                "subscription_id,account_id,plan,seats,mrr,start_date,renewal_date",
                f"S1,A1,Pro,8,2000,{day(400)},{day(-200)}",
                f"S2,A2,Basic,4,300,{day(400)},{day(-100)}",
            ],
        ),
        "events": _write(folder / "events.csv", events),
        "tickets": _write(
            folder / "tickets.csv",
            [
                "ticket_id,account_id,priority,opened_at,resolved_at,csat,subject",
                f"T1,A1,P1,{day(20)}T09:00:00Z,{day(12)}T09:00:00Z,4,Export is broken",
            ],
        ),
        "responses": _write(
            folder / "responses.jsonl",
            [
                '{"response_id": "R1", "account_id": "A1", "survey": "nps", "score": 9, '
                f'"comment": "Great product, love it", "responded_at": "{day(15)}T09:00:00Z"}}'
            ],
        ),
    }


def _import(store: Store, kind: str, path: Path) -> ImportReport:
    report = import_file(store, kind, path)
    assert report.rejected == 0 and report.accepted == report.rows > 0, report.as_dict()
    assert report.import_id is not None
    return report


def _load(store: Store, folder: Path, base: date) -> None:
    for kind, path in _portfolio(folder, base).items():
        _import(store, kind, path)


def _history(store: Store, model_id: int) -> dict[str, dict[date, Any]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(health_scores).where(health_scores.c.model_id == model_id)
        ).all()
    found: dict[str, dict[date, Any]] = {}
    for row in rows:
        assert row.day not in found.get(row.account_id, {})
        found.setdefault(row.account_id, {})[row.day] = row
    return found


def _current(store: Store) -> dict[str, Any]:
    with store.engine.connect() as connection:
        return {r.account_id: r for r in connection.execute(select(health_current)).all()}


def _hundredths(value: float) -> int:
    return round(value * 100)


def test_score_portfolio_writes_history_that_explanations_match(
    store: Store, tmp_path: Path
) -> None:
    _load(store, tmp_path, DAY)
    registered = register(store, default_model())
    run = score_portfolio(store, registered, as_of=DAY, history_days=30)
    first = DAY - timedelta(days=29)
    assert (run.first_day, run.last_day, run.accounts, run.scores) == (first, DAY, 2, 60)

    history = _history(store, registered.model_id)
    days = {first + timedelta(days=n) for n in range(30)}
    assert set(history) == {"A1", "A2"}
    for account, rows in history.items():
        assert set(rows) == days, account
        for row in rows.values():
            assert row.score is not None and 0 <= row.score <= 100
            assert row.band == DEFAULT.bands.band(row.score)
    assert {r.variant for r in history["A1"].values()} == {"base"}
    assert {r.variant for r in history["A2"].values()} == {"onboarding"}
    assert len({r.score for r in history["A1"].values()}) > 5  # the history moves

    current = _current(store)
    assert set(current) == {"A1", "A2"}
    for account, row in current.items():
        assert (row.model_id, row.as_of) == (registered.model_id, DAY)
        assert row.score == history[account][DAY].score
        assert row.band == history[account][DAY].band
        breakdown = row.breakdown
        assert breakdown["score"] == row.score and breakdown["as_of"] == DAY.isoformat()
        points = [c["points"] for c in breakdown["components"]]
        assert sum(points) == breakdown["points"] == _hundredths(row.score)
    assert {s.account_id: s.score for s in run.current} == {a: r.score for a, r in current.items()}

    # Explanations recompute both days; the change is exactly the stored scores' difference.
    for account, start in (("A1", DAY - timedelta(days=20)), ("A2", first), ("A1", DAY)):
        e = explain_account(store, account, start, DAY, registered)
        stored = history[account]
        assert e.before.points == _hundredths(stored[start].score)
        assert e.after.points == _hundredths(stored[DAY].score)
        assert e.change == _hundredths(stored[DAY].score) - _hundredths(stored[start].score)
        assert sum(c.change for c in e.contributions) == e.change
    assert explain_account(store, "A1", DAY - timedelta(days=20), DAY, registered).change != 0

    # Scoring the same days again replaces the history rather than adding to it.
    again = score_portfolio(store, registered, as_of=DAY, history_days=30)
    assert again.scores == 60
    assert {a: {d: r.score for d, r in rows.items()} for a, rows in history.items()} == {
        a: {d: r.score for d, r in rows.items()}
        for a, rows in _history(store, registered.model_id).items()
    }


def test_live_scores_follow_imports_and_equal_batch_scores(store: Store, tmp_path: Path) -> None:
    base = today()
    _load(store, tmp_path, base)
    registered = register(store, default_model())
    score_portfolio(store, registered, as_of=base, history_days=1)
    before = _current(store)
    live = LiveScores(store)
    assert live.registered.model_id == registered.model_id

    # One more event for A1 today: A1 is new to the engine (its records are read whole).
    path = _write(
        tmp_path / "more.csv",
        ["account_id,user_id,event,feature,timestamp", f"A1,u9,click,reports,{base}T00:00:01Z"],
    )
    report = _import(store, "events", path)
    with store.engine.connect() as connection:
        assert connection.execute(select(imports.c.kind).where(
            imports.c.import_id == report.import_id
        )).scalar() == "events"  # fmt: skip
    scores = live.after_import("events", report.import_id)  # type: ignore[arg-type]
    assert [s.account_id for s in scores] == ["A1"]
    assert scores[0].as_of == base
    (batch,) = account_scores_many(store, registered, ["A1"], base)
    assert scores[0] == batch
    after = _current(store)
    assert after["A1"].updated_at > before["A1"].updated_at
    assert (after["A1"].as_of, after["A1"].score) == (base, batch.score)
    assert after["A2"].updated_at == before["A2"].updated_at  # untouched

    # Two more, one three days ahead: A1 is now updated incrementally, as of that later day.
    ahead = base + timedelta(days=3)
    path = _write(
        tmp_path / "later.csv",
        [
            "account_id,user_id,event,feature,timestamp",
            f"A1,u7,click,export,{base}T08:00:00Z",
            f"A1,u8,click,admin,{ahead}T08:00:00Z",
        ],
    )
    report = _import(store, "events", path)
    scores = live.after_import("events", report.import_id)  # type: ignore[arg-type]
    assert [(s.account_id, s.as_of) for s in scores] == [("A1", max(today(), ahead))]
    (batch,) = account_scores_many(store, registered, ["A1"], ahead)
    assert scores[0] == batch
    assert scores[0].points != after["A1"].breakdown["points"]  # the new users moved it
    latest = _current(store)
    assert latest["A1"].updated_at > after["A1"].updated_at
    assert (latest["A1"].as_of, latest["A1"].score) == (ahead, batch.score)
    assert latest["A1"].breakdown == json.loads(json.dumps(batch.to_dict()))
    assert latest["A2"].updated_at == before["A2"].updated_at
    # live updates keep the current score; the daily history is the end-of-day batch's record
    assert ahead not in _history(store, registered.model_id)["A1"]


def test_a_ticket_moving_to_another_account_rescores_both(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """The account a record leaves changes too: the import names both, live scores follow."""
    base = today()
    _load(sqlite_store, tmp_path, base)
    registered = register(sqlite_store, default_model())
    score_portfolio(sqlite_store, registered, as_of=base, history_days=1)
    opened = f"{base - timedelta(days=3)}T09:00:00Z"
    live = LiveScores(sqlite_store, registered)

    def ticket(account: str) -> ImportReport:
        path = _write(tmp_path / f"t2-{account}.csv",
                      ["ticket_id,account_id,priority,opened_at", f"T2,{account},P1,{opened}"])  # fmt: skip
        report = _import(sqlite_store, "tickets", path)
        live.after_import("tickets", report.import_id or 0, report.accounts)
        return report

    assert ticket("A1").accounts == {"A1"}
    assert live.engine.evaluate("A1", day_number(base))["open_tickets_p1"] == 1
    assert ticket("A2").accounts == {"A1", "A2"}  # the account it left, and the one it joined
    assert live.engine.evaluate("A1", day_number(base))["open_tickets_p1"] == 0
    assert live.engine.evaluate("A2", day_number(base))["open_tickets_p1"] == 1
    for account in ("A1", "A2"):
        (batch,) = account_scores_many(sqlite_store, registered, [account], base)
        assert _current(sqlite_store)[account].score == batch.score
