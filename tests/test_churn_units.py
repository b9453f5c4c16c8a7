"""Unit tests of the churn modelling pieces that need no database: the estimators, the metrics,
the leakage guard, the rolling backtest split and what-if change parsing."""

from __future__ import annotations

import functools
import math
import pickle
import re
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from tenure.churn import backtest
from tenure.churn.backtest import MIN_TRAIN_DAYS, Contender
from tenure.churn.estimators import (
    ChurnBoosting,
    ChurnLogistic,
    HealthScoreRisk,
    SegmentRate,
    TimeToChurn,
)
from tenure.churn.guard import SEPARATION, Guarded, guard, separation
from tenure.churn.metrics import (
    expected_calibration_error,
    flags,
    lead_times,
    lift_by_decile,
    quality,
    reliability,
)
from tenure.churn.snapshots import Snapshots
from tenure.churn.whatif import Change, parse_change
from tenure.health.scoring import day_number, from_day_number

SETTINGS = settings(max_examples=40, deadline=None)
START = day_number(date(2023, 1, 2))
HORIZON = 90


# --------------------------------------------------------------------------------------------
# Synthetic data for the estimators
# --------------------------------------------------------------------------------------------

NUMERIC = ["usage", "seats", "tickets", "noise"]
SEGMENTS = ["segment=a", "segment=b"]


@functools.cache
def _cached_data() -> tuple[pd.DataFrame, np.ndarray]:
    """300 accounts: churn falls steeply with ``usage`` (and is a little higher in segment b)."""
    rng = np.random.default_rng(7)
    n = 300
    usage = rng.normal(size=n)
    in_b = rng.random(n) < 0.4
    logit = -0.8 - 2.5 * usage + 1.2 * in_b
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({
        "usage": usage,
        "seats": rng.normal(size=n),
        "tickets": rng.poisson(2.0, n).astype(float),
        "noise": rng.normal(size=n),
        "segment=a": (~in_b).astype(float),
        "segment=b": in_b.astype(float),
        "health_score": np.clip(50 + 20 * usage + rng.normal(0, 10, n), 0, 100),
    })  # fmt: skip
    for column, share in (("usage", 0.05), ("seats", 0.1), ("health_score", 0.05)):
        frame.loc[rng.random(n) < share, column] = np.nan
    return frame, label


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    frame, label = _cached_data()
    return frame.copy(), label.copy()


SPECS: dict[str, tuple[Callable[[], Any], list[str]]] = {
    "logistic": (ChurnLogistic, NUMERIC),
    "boosting": (lambda: ChurnBoosting(max_iter=40), NUMERIC),
    "health score": (HealthScoreRisk, ["health_score"]),
    "segment rate": (SegmentRate, SEGMENTS),
}
ESTIMATORS = list(SPECS)


@functools.cache
def _fitted(name: str) -> Any:
    make, columns = SPECS[name]
    frame, label = _data()
    return make().fit(frame[columns], label)


def _check_probabilities(proba: np.ndarray, rows: int) -> None:
    assert proba.shape == (rows, 2)
    assert np.all((proba >= 0.0) & (proba <= 1.0))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# 1. The scikit-learn contract
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ESTIMATORS)
def test_clone_and_params_round_trip(name: str) -> None:
    make, _ = SPECS[name]
    estimator = make()
    params = estimator.get_params()
    copy = clone(estimator)
    assert copy is not estimator and type(copy) is type(estimator)
    assert copy.get_params() == params
    assert estimator.set_params(**params) is estimator
    assert estimator.get_params() == params


def test_set_params_changes_what_is_fitted() -> None:
    model = ChurnLogistic().set_params(C=3.0)
    assert model.get_params() == {"C": 3.0}
    boosting = clone(ChurnBoosting(max_iter=7, learning_rate=0.2))
    assert boosting.get_params() == {"max_iter": 7, "learning_rate": 0.2, "max_leaf_nodes": 15}
    assert HealthScoreRisk().set_params(column="score").column == "score"
    assert clone(TimeToChurn(horizon=30, penalizer=0.5)).get_params() == {
        "horizon": 30,
        "penalizer": 0.5,
    }


def test_clone_of_a_fitted_estimator_is_unfitted() -> None:
    copy = clone(_fitted("logistic"))
    assert not hasattr(copy, "pipeline_")
    assert copy.get_params() == _fitted("logistic").get_params()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fit_returns_self(name: str) -> None:
    make, columns = SPECS[name]
    frame, label = _data()
    estimator = make()
    assert estimator.fit(frame[columns], label) is estimator
    assert list(estimator.classes_) == [0, 1]


@pytest.mark.parametrize("name", ESTIMATORS)
def test_predict_proba_and_predict(name: str) -> None:
    _, columns = SPECS[name]
    frame, _ = _data()
    model = _fitted(name)
    proba = model.predict_proba(frame[columns])
    _check_probabilities(proba, len(frame))
    predicted = model.predict(frame[columns])
    assert set(np.unique(predicted)) <= {0, 1}
    np.testing.assert_array_equal(predicted, (proba[:, 1] >= 0.5).astype(int))
    assert proba[:, 1].std() > 0  # it tells accounts apart


@pytest.mark.parametrize("name", ESTIMATORS)
def test_the_informative_input_earns_a_real_ranking(name: str) -> None:
    """Every contender beats chance in-sample (the segment baseline only a little)."""
    _, columns = SPECS[name]
    frame, label = _data()
    auc = roc_auc_score(label, _fitted(name).predict_proba(frame[columns])[:, 1])
    assert auc > (0.53 if name == "segment rate" else 0.75)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_columns_are_matched_by_name(name: str) -> None:
    """A frame with the columns in another order, and with extra ones, gives the same answer."""
    _, columns = SPECS[name]
    frame, _ = _data()
    model = _fitted(name)
    shuffled = frame[list(reversed(frame.columns))].assign(extra=1.0)
    np.testing.assert_array_equal(
        model.predict_proba(frame[columns]), model.predict_proba(shuffled)
    )


@pytest.mark.parametrize(
    "name",
    [
        "logistic",
        "boosting",
        "health score",
        "segment rate",
    ],
)  # fmt: skip
def test_a_missing_column_raises_value_error_naming_it(name: str) -> None:
    _, columns = SPECS[name]
    frame, _ = _data()
    missing = columns[-1]
    with pytest.raises(ValueError, match=re.escape(missing)):
        _fitted(name).predict_proba(frame.drop(columns=[missing]))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_pickle_round_trips(name: str) -> None:
    _, columns = SPECS[name]
    frame, _ = _data()
    model = _fitted(name)
    again = pickle.loads(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    np.testing.assert_array_equal(
        again.predict_proba(frame[columns]), model.predict_proba(frame[columns])
    )


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("only", [0, 1])
def test_fitting_on_one_class_raises(name: str, only: int) -> None:
    make, columns = SPECS[name]
    frame, _ = _data()
    with pytest.raises(ValueError, match="only one outcome"):
        make().fit(frame[columns], np.full(len(frame), only))


@SETTINGS
@given(
    name=st.sampled_from(ESTIMATORS),
    rows=st.lists(
        st.lists(
            st.one_of(st.floats(-1e4, 1e4), st.just(float("nan"))),
            min_size=len(NUMERIC) + 3,
            max_size=len(NUMERIC) + 3,
        ),
        min_size=1,
        max_size=20,
    ),
)  # fmt: skip
def test_any_rows_get_valid_probabilities(name: str, rows: list[list[float]]) -> None:
    """Whatever the values (missing, far out of range), each row gets a probability pair."""
    frame = pd.DataFrame(rows, columns=[*NUMERIC, *SEGMENTS, "health_score"])
    _check_probabilities(_fitted(name).predict_proba(frame), len(frame))


def test_logistic_ranks_the_informative_input_first() -> None:
    coefficients = _fitted("logistic").coefficients()
    assert {*NUMERIC, "missingindicator_usage", "missingindicator_seats"} <= set(coefficients)
    strongest = max(coefficients, key=lambda k: abs(coefficients[k]))
    assert strongest == "usage"
    assert coefficients["usage"] < 0  # more usage, less churn


def test_health_score_risk_falls_as_health_rises_and_reads_missing_as_fifty() -> None:
    model = _fitted("health score")
    risk = model.predict_proba(pd.DataFrame({"health_score": [10.0, 50.0, 90.0, np.nan]}))[:, 1]
    assert risk[0] > risk[1] > risk[2]
    assert risk[3] == risk[1]


def test_segment_rate_is_each_segments_shrunk_rate() -> None:
    frame, label = _data()
    model = _fitted("segment rate")
    overall = label.mean()
    probe = pd.DataFrame({"segment=a": [1.0, 0.0, 0.0], "segment=b": [0.0, 1.0, 0.0]})
    p = model.predict_proba(probe)[:, 1]
    for i, column in enumerate(SEGMENTS):
        inside = frame[column].to_numpy() > 0
        expected = (label[inside].sum() + 10 * overall) / (inside.sum() + 10)
        assert p[i] == pytest.approx(expected)
    assert p[2] == pytest.approx(overall)  # in neither segment: the overall rate
    assert p[1] > p[0]  # the planted segment effect


# --------------------------------------------------------------------------------------------
# 2. Time to churn
# --------------------------------------------------------------------------------------------

SURVIVAL_INPUTS = ["risk", "other"]


@functools.cache
def _survival() -> tuple[pd.DataFrame, np.ndarray, TimeToChurn]:
    """Churn hazard rises with ``risk`` (log-hazard +1 per unit); censored at 180 days."""
    rng = np.random.default_rng(11)
    n = 300
    frame = pd.DataFrame({"risk": rng.normal(size=n), "other": rng.normal(size=n)})
    frame.loc[rng.random(n) < 0.1, "other"] = np.nan
    time = rng.exponential(150.0 * np.exp(-frame["risk"].to_numpy()))
    days = np.maximum(np.ceil(np.minimum(time, 180.0)), 1.0)
    target = np.column_stack([days, (time < 180.0).astype(float)])
    model = TimeToChurn(horizon=HORIZON).fit(frame, target)
    return frame, target, model


def test_time_to_churn_fit_and_predict_proba() -> None:
    frame, target, model = _survival()
    fresh = TimeToChurn(horizon=HORIZON)
    assert fresh.fit(frame, target) is fresh
    proba = model.predict_proba(frame)
    _check_probabilities(proba, len(frame))
    np.testing.assert_allclose(proba[:, 1], model.churn_by(frame, HORIZON))
    assert roc_auc_score(target[:, 1], proba[:, 1]) > 0.65


def test_time_to_churn_is_nothing_on_day_zero() -> None:
    frame, _, model = _survival()
    assert np.all(model.churn_by(frame, 0) == 0.0)
    assert np.all(model.churn_by(frame, -5) == 0.0)


@SETTINGS
@given(days=st.lists(st.integers(0, 500), min_size=2, max_size=6))
def test_time_to_churn_never_falls_with_more_days(days: list[int]) -> None:
    frame, _, model = _survival()
    rows = frame.head(40)
    curves = np.array([model.churn_by(rows, d) for d in sorted(days)])
    assert np.all(np.diff(curves, axis=0) >= 0.0)
    assert np.all((curves >= 0.0) & (curves <= 1.0))
    per_row = np.resize(np.array(days, dtype=float), len(rows))
    np.testing.assert_allclose(
        model.churn_by(rows, per_row),
        np.array([model.churn_by(rows.iloc[[i]], d)[0] for i, d in enumerate(per_row)]),
        rtol=1e-12,
    )


@SETTINGS
@given(
    low=st.floats(-3.0, 3.0),
    step=st.floats(0.1, 3.0),
    other=st.one_of(st.floats(-3.0, 3.0), st.just(float("nan"))),
)
def test_time_to_churn_higher_risk_churns_sooner(low: float, step: float, other: float) -> None:
    _, _, model = _survival()
    rows = pd.DataFrame({"other": [other, other], "risk": [low, low + step]})
    p = model.predict_proba(rows)[:, 1]
    assert p[1] > p[0]


def test_time_to_churn_recovers_the_planted_effect_and_pickles() -> None:
    frame, _, model = _survival()
    coefficients = model.coefficients()
    assert coefficients["risk"] > 0.5
    assert abs(coefficients["other"]) < coefficients["risk"]
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(frame), model.predict_proba(frame))
    with pytest.raises(ValueError, match="risk"):
        model.predict_proba(frame.drop(columns=["risk"]))


# --------------------------------------------------------------------------------------------
# 3. Metrics
# --------------------------------------------------------------------------------------------

labels_and_risks = st.integers(1, 80).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n),
    )
)


@SETTINGS
@given(data=labels_and_risks)
def test_reliability_bins_account_for_every_row(data: tuple[list[int], list[float]]) -> None:
    y, p = np.array(data[0]), np.array(data[1])
    table = reliability(y, p)
    assert sum(b.accounts for b in table) == len(y)
    assert sum(b.accounts * b.observed for b in table) == pytest.approx(y.sum())
    for b in table:
        assert b.accounts > 0
        assert b.low - 1e-12 <= b.predicted <= b.high + 1e-12
        assert 0.0 <= b.observed <= 1.0
    assert [b.low for b in table] == sorted({b.low for b in table})
    assert 0.0 <= expected_calibration_error(table) <= 1.0


def test_reliability_bin_edges() -> None:
    table = reliability(np.array([0, 1, 1, 0]), np.array([0.0, 0.1, 0.95, 1.0]))
    assert [(b.low, b.accounts) for b in table] == [(0.0, 1), (0.1, 1), (0.9, 2)]
    assert table[-1].high == 1.0
    assert expected_calibration_error([]) == 0.0


@SETTINGS
@given(
    groups=st.lists(
        st.integers(1, 12).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
        min_size=1,
        max_size=8,
    )
)
def test_ece_is_zero_when_predictions_are_the_observed_rates(
    groups: list[tuple[int, int]],
) -> None:
    """Groups of ``n`` rows with ``k`` positives, each predicted at k/n: calibrated whatever
    bins the groups share."""
    y = np.concatenate([np.r_[np.ones(k), np.zeros(n - k)] for n, k in groups])
    p = np.concatenate([np.full(n, k / n) for n, k in groups])
    assert expected_calibration_error(reliability(y, p)) == pytest.approx(0.0, abs=1e-9)


def test_ece_is_large_for_a_constant_wrong_prediction() -> None:
    y = np.r_[np.ones(50), np.zeros(50)]
    assert expected_calibration_error(reliability(y, np.full(100, 0.95))) == pytest.approx(0.45)
    assert expected_calibration_error(reliability(np.zeros(40), np.full(40, 0.9))) == (
        pytest.approx(0.9)
    )
    assert expected_calibration_error(reliability(np.ones(40), np.full(40, 0.1))) == (
        pytest.approx(0.9)
    )


@SETTINGS
@given(
    data=st.integers(1, 12).flatmap(
        lambda tens: st.tuples(
            st.lists(st.integers(0, 1), min_size=10 * tens, max_size=10 * tens).filter(any),
            st.lists(st.sampled_from([0.1, 0.2, 0.5, 0.9]), min_size=10 * tens,
                     max_size=10 * tens),
        )
    )
)  # fmt: skip
def test_lift_averages_one_over_equal_deciles(data: tuple[list[int], list[float]]) -> None:
    y, p = np.array(data[0]), np.array(data[1])
    lift = lift_by_decile(y, p)
    assert len(lift) == 10
    assert abs(float(np.mean(lift)) - 1.0) <= 1e-9


def test_lift_of_a_perfect_ranking_and_of_no_outcomes() -> None:
    y = np.r_[np.ones(10), np.zeros(90)]
    lift = lift_by_decile(y, y.copy())
    assert lift[0] == pytest.approx(10.0)
    assert lift[1:] == [0.0] * 9
    assert lift_by_decile(np.zeros(30), np.linspace(0, 1, 30)) == []


@SETTINGS
@given(
    data=st.integers(1, 60).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 3), min_size=n, max_size=n),
            st.lists(st.sampled_from([0.0, 0.3, 0.3, 0.7, 1.0]), min_size=n, max_size=n),
        )
    ),
    share=st.sampled_from([0.05, 0.1, 0.2, 0.25, 1 / 3, 0.5, 1.0]),
)
def test_flags_mark_exactly_the_share_of_each_day(
    data: tuple[list[int], list[float]], share: float
) -> None:
    days, p = np.array(data[0], dtype=float), np.array(data[1])
    flagged = flags(days, p, share)
    for day in np.unique(days):
        rows = np.flatnonzero(days == day)
        chosen, rest = rows[flagged[rows]], rows[~flagged[rows]]
        assert len(chosen) == math.ceil(share * len(rows))
        if len(rest):
            assert p[chosen].min() >= p[rest].max()  # the riskiest are the ones flagged


def test_flags_with_all_ties_flag_only_the_share() -> None:
    flagged = flags(np.zeros(30), np.full(30, 0.5))
    assert flagged.sum() == 3
    # ties split in a fixed random order, not by row order, and the same every time
    assert list(np.flatnonzero(flagged)) != [0, 1, 2]
    assert (flags(np.zeros(30), np.full(30, 0.5)) == flagged).all()


def test_lead_times_on_a_hand_made_example() -> None:
    event = 1000.0
    rows = [
        # account, day, event day, flagged
        ("caught", event - 60, event, True),
        ("caught", event - 30, event, True),
        ("caught", event - 10, event, False),
        ("missed", event - 80, event, False),
        ("missed", event - 20, event, False),
        ("too early", event - 120, event, True),  # outside the horizon: not counted at all
        ("renewed", event - 50, np.nan, True),  # no outcome: not counted
        ("after", event, event, True),  # the outcome on the snapshot day: not ahead of it
    ]
    accounts, days, events, flagged = (np.array(c) for c in zip(*rows, strict=True))
    lead = lead_times(accounts, days.astype(float), events.astype(float), flagged.astype(bool), 90)
    assert lead == {"caught": 0.5, "median": 60.0}
    # flagging the missed account too (later than the first) brings it in
    flagged[4] = True
    lead = lead_times(accounts, days.astype(float), events.astype(float), flagged.astype(bool), 90)
    assert lead == {"caught": 1.0, "median": 40.0}


def test_lead_times_with_no_outcomes_are_nan() -> None:
    lead = lead_times(np.array(["a"]), np.array([0.0]), np.array([np.nan]), np.array([True]), 90)
    assert math.isnan(lead["caught"]) and math.isnan(lead["median"])


def test_lead_times_count_each_outcome_of_an_account_apart() -> None:
    accounts = np.array(["a", "a"])
    lead = lead_times(accounts, np.array([0.0, 200.0]), np.array([50.0, 230.0]),
                      np.array([True, False]), 90)  # fmt: skip
    assert lead == {"caught": 0.5, "median": 50.0}


def test_quality_matches_sklearn() -> None:
    rng = np.random.default_rng(5)
    n = 200
    y = (rng.random(n) < 0.3).astype(int)
    p = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    days = np.repeat([0.0, 30.0], n // 2)
    events = np.where(y == 1, days + 45.0, np.nan)
    accounts = np.array([f"a{i}" for i in range(n)])
    q = quality("m", y, p, accounts, days, events, HORIZON)
    assert q.name == "m" and q.rows == n and q.positives == int(y.sum())
    assert q.auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert q.pr_auc == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert q.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert q.ece == pytest.approx(expected_calibration_error(reliability(y, p)))
    assert q.lift_top_decile == q.lift[0]
    assert q.median_lead_days == 45.0
    assert q.caught is not None and 0 < q.caught <= 1


def test_quality_with_one_class_has_no_auc() -> None:
    n = 20
    q = quality("m", np.zeros(n, dtype=int), np.linspace(0, 1, n), np.array(["a"] * n),
                np.zeros(n), np.full(n, np.nan), HORIZON)  # fmt: skip
    assert q.auc is None and q.pr_auc is None and q.lift_top_decile is None
    assert q.caught is None and q.median_lead_days is None
    assert q.to_dict()["auc"] is None


# --------------------------------------------------------------------------------------------
# 4. The leakage guard
# --------------------------------------------------------------------------------------------

CURRENT = "account.lifecycle_stage=churned"


def _guard_snapshots() -> Snapshots:
    rng = np.random.default_rng(3)
    n = 240
    label = (rng.random(n) < 0.3).astype(float)
    frame = pd.DataFrame({
        "account_id": [f"a{i % 60}" for i in range(n)],
        "day": START + 30 * (np.arange(n) // 60),
        "label": label,
        "event_day": np.where(label == 1, START + 30 * (np.arange(n) // 60) + 40.0, np.nan),
        "leaky": label + rng.normal(0, 0.01, n),
        "honest": rng.normal(size=n) + 0.5 * label,
        CURRENT: (rng.random(n) < 0.2).astype(float),  # pure noise, still suspect
    })  # fmt: skip
    frame.loc[rng.random(n) < 0.1, "honest"] = np.nan
    return Snapshots(frame, ["leaky", "honest"], [CURRENT], HORIZON, "churn",
                     date(2030, 1, 1), "m")  # fmt: skip


def test_guard_leaves_out_an_input_that_separates() -> None:
    result = guard(_guard_snapshots())
    by_input = {f.input: f for f in result.flags}
    assert set(by_input) == {"leaky", CURRENT}
    assert by_input["leaky"].reason == "separates" and not by_input["leaky"].kept
    assert by_input["leaky"].separation >= SEPARATION
    assert result.inputs == ["honest"]
    assert set(result.left_out()) == {"leaky", CURRENT}


def test_guard_keeps_an_allowed_separating_input() -> None:
    result = guard(_guard_snapshots(), allow=["leaky"])
    flag = next(f for f in result.flags if f.input == "leaky")
    assert flag.kept and flag.reason == "separates"
    assert result.inputs == ["leaky", "honest"]
    assert result.left_out() == [CURRENT]


def test_guard_always_flags_current_only_columns() -> None:
    snapshots = _guard_snapshots()
    flag = next(f for f in guard(snapshots).flags if f.input == CURRENT)
    assert flag.reason == "current only" and not flag.kept
    assert flag.separation < SEPARATION  # flagged although it separates nothing
    allowed = guard(snapshots, allow=[CURRENT])
    assert CURRENT in allowed.inputs and "leaky" not in allowed.inputs
    assert next(f for f in allowed.flags if f.input == CURRENT).kept


def test_guard_rejects_allowing_an_unknown_input() -> None:
    with pytest.raises(KeyError, match="nonesuch"):
        guard(_guard_snapshots(), allow=["honest", "nonesuch"])


def test_guard_reads_only_labelled_rows() -> None:
    """Rows whose window has not closed (label unknown) do not count as evidence."""
    snapshots = _guard_snapshots()
    late = snapshots.frame.iloc[:60].copy()
    late["day"] = day_number(snapshots.data_end) - 10  # its window is still open
    late["label"] = 1.0
    late["leaky"] = -5.0  # were these read, "leaky" would separate nothing
    pending = snapshots.frame.iloc[60:90].copy()
    pending["label"] = np.nan  # closed day, but no label
    snapshots.frame = pd.concat([snapshots.frame, late, pending], ignore_index=True)
    result = guard(snapshots)
    assert result.inputs == ["honest"]
    assert next(f for f in result.flags if f.input == "leaky").separation > 0.99


@SETTINGS
@given(
    values=st.lists(st.floats(-1e3, 1e3), min_size=4, max_size=40),
    labels=st.lists(st.integers(0, 1), min_size=40, max_size=40),
)
def test_separation_is_folded_and_ignores_direction(values: list[float], labels: list[int]) -> None:
    series = pd.Series(values, dtype=float)
    y = np.array(labels[: len(values)])
    s = separation(series, y)
    assert 0.5 <= s <= 1.0
    assert separation(-series, y) == pytest.approx(s, abs=1e-12)
    assert separation(series * 2.0, y) == pytest.approx(s, abs=1e-12)  # exact in floats


# --------------------------------------------------------------------------------------------
# 5. The backtest never trains on labels not yet known
# --------------------------------------------------------------------------------------------


def _history(n_days: int = 12, accounts: int = 30, horizon: int = HORIZON, spacing: int = 30,
             closed: bool = True, seed: int = 3) -> Snapshots:  # fmt: skip
    """Monthly snapshots of accounts, each present until it churns; labels as the builder sets
    them (known once the outcome came or the window closed before the end of the data)."""
    rng = np.random.default_rng(seed)
    days = [START + spacing * i for i in range(n_days)]
    end = days[-1] + (horizon if closed else 20)
    rows = []
    for a in range(accounts):
        churn = START + int(rng.integers(40, spacing * n_days + 60)) if a % 3 else None
        for day in days:
            if churn is not None and day >= churn:
                break
            came = churn is not None and churn - day <= horizon
            known = came or day + horizon <= end
            rows.append({
                "account_id": f"acct-{a:02d}", "day": day, "segment": "ab"[a % 2],
                "event_day": np.nan if churn is None else float(churn),
                "label": float(came) if known else np.nan, "usage": rng.normal(),
            })  # fmt: skip
    return Snapshots(pd.DataFrame(rows), ["usage"], [], horizon, "churn", from_day_number(end),
                     "m", [from_day_number(d) for d in days])  # fmt: skip


class Recorder:
    """Predicts 0.5 for everyone and records what it was trained on and asked about."""

    def __init__(self, log: list[dict[str, Any]]) -> None:
        self.log = log

    def fit(self, X: pd.DataFrame, y: Any) -> Recorder:
        self.train_days = X["day"].to_numpy(dtype=float)
        self.y = np.asarray(y, dtype=float)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self.log.append({"train_days": self.train_days, "y": self.y,
                         "test_days": set(X["day"].astype(float))})  # fmt: skip
        return np.full((len(X), 2), 0.5)


def test_backtest_trains_only_on_labels_known_by_the_test_day() -> None:
    snapshots = _history()
    labels: list[dict[str, Any]] = []
    survival: list[dict[str, Any]] = []
    chosen = [
        Contender("recorder", lambda: Recorder(labels), ["day"]),
        Contender("survival recorder", lambda: Recorder(survival), ["day"], survival=True),
    ]
    steps: list[tuple[int, int]] = []
    result = backtest.run(snapshots, Guarded(["usage"], []), chosen,
                          progress=lambda i, n: steps.append((i, n)))  # fmt: skip
    folds = [day_number(d) for d in result.folds]
    assert result.folds == backtest.test_days(snapshots)
    assert len(labels) == len(survival) == len(folds) == 7  # days[5] to days[11]
    assert steps == [(i + 1, len(folds)) for i in range(len(folds))]
    closed = sorted(snapshots.labelled()["day"].unique())
    for t, record, timed in zip(folds, labels, survival, strict=True):
        assert record["test_days"] == {t}
        assert record["train_days"].max() + snapshots.horizon <= t
        # and it uses every snapshot that had closed: nothing known is wasted
        assert record["train_days"].max() == max(d for d in closed if d + snapshots.horizon <= t)
        # survival targets stop at the test day: no outcome from after it is seen
        days, came = timed["y"][:, 0], timed["y"][:, 1]
        assert np.all(timed["train_days"] + days <= t)
        rows = snapshots.frame[snapshots.frame["day"] < t]  # every snapshot before the test day
        assert np.array_equal(came.astype(bool), (rows["event_day"] <= t).to_numpy())
    predictions = result.predictions
    assert len(predictions) == snapshots.labelled()["day"].isin(folds).sum()
    assert set(predictions["recorder"]) == {0.5}
    assert [r.name for r in result.results] == ["recorder", "survival recorder"]


def test_test_days_respect_min_train_days_and_max_folds() -> None:
    snapshots = _history()
    days = [START + 30 * i for i in range(12)]
    # with a 90-day horizon and monthly snapshots, day k has k - 2 closed days before it
    assert backtest.test_days(snapshots) == [from_day_number(d) for d in days[MIN_TRAIN_DAYS + 2 :]]
    assert backtest.test_days(snapshots, max_folds=3) == [from_day_number(d) for d in days[-3:]]
    # the last snapshots, whose windows run past the end of the data, are never tested
    unclosed = _history(closed=False)
    assert backtest.test_days(unclosed)[-1] == from_day_number(days[-4])


@SETTINGS
@given(
    n_days=st.integers(1, 12),
    spacing=st.sampled_from([7, 30, 31]),
    horizon=st.sampled_from([30, 60, 90, 180]),
    max_folds=st.integers(1, 12),
)
def test_test_days_are_the_latest_days_with_enough_closed_history(
    n_days: int, spacing: int, horizon: int, max_folds: int
) -> None:
    snapshots = _history(n_days, accounts=3, horizon=horizon, spacing=spacing)
    labelled = sorted(int(d) for d in snapshots.labelled()["day"].unique())

    def closed_before(t: int) -> int:
        return sum(d + horizon <= t for d in labelled)

    folds = [day_number(d) for d in backtest.test_days(snapshots, max_folds)]
    assert len(folds) <= max_folds
    assert all(closed_before(t) >= MIN_TRAIN_DAYS for t in folds)
    assert folds == labelled[len(labelled) - len(folds) :]  # the latest ones, in order
    if len(folds) < max_folds:
        before = labelled[: len(labelled) - len(folds)]
        assert not before or closed_before(before[-1]) < MIN_TRAIN_DAYS


def test_backtest_with_too_little_history_says_so() -> None:
    snapshots = _history(n_days=4)
    assert backtest.test_days(snapshots) == []
    with pytest.raises(ValueError, match=r"too little history to backtest: need 3 snapshot days"):
        backtest.run(snapshots, Guarded(["usage"], []),
                     [Contender("recorder", lambda: Recorder([]), ["day"])])  # fmt: skip


# --------------------------------------------------------------------------------------------
# 6. What-if changes
# --------------------------------------------------------------------------------------------

SIGNALS = ["usage_trend_14d", "active_users_7d", "x"]


def test_parse_an_absolute_change() -> None:
    change = parse_change("x=3", SIGNALS)
    assert change == Change("x", 3.0, relative=False)
    assert change.apply(10.0) == 3.0 and change.apply(None) == 3.0
    assert parse_change(" usage_trend_14d = -0.3 ", SIGNALS) == Change(
        "usage_trend_14d", -0.3, False
    )


def test_parse_a_relative_change() -> None:
    change = parse_change("x=-20%", SIGNALS)
    assert change == Change("x", -20.0, relative=True)
    assert change.apply(50.0) == pytest.approx(40.0)
    assert str(change) == "x=-20%"
    up = parse_change("x=+10%", SIGNALS)
    assert up.relative and up.apply(None) is None
    assert up.apply(20.0) == pytest.approx(22.0)


@SETTINGS
@given(value=st.floats(-1e6, 1e6), percent=st.integers(-100, 500))
def test_relative_change_scales_the_value(value: float, percent: int) -> None:
    change = parse_change(f"active_users_7d={percent:+d}%", SIGNALS)
    assert change.apply(value) == pytest.approx(value * (1 + percent / 100))
    assert parse_change(str(change), SIGNALS) == change


def test_parse_an_unknown_signal_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match=r"unknown signal 'usage_trend_41d'.*did you mean "
                       r"'usage_trend_14d'"):  # fmt: skip
        parse_change("usage_trend_41d=1", SIGNALS)


@pytest.mark.parametrize("text", ["x", "x=abc", "=3", "x=3%%", "x==3", "x=1e3", ""])
def test_parse_malformed_text_names_it(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"cannot read {text!r}")):
        parse_change(text, SIGNALS)


def test_a_change_is_shown_as_written() -> None:
    assert str(parse_change("x=1234567", SIGNALS)) == "x=1234567"


# --------------------------------------------------------------------------------------------
# 7. Forecast probabilities: logistic when past renewals hold both outcomes, else Cox
# --------------------------------------------------------------------------------------------


def test_forecast_odds_come_from_logistic_models_or_fall_back_to_cox() -> None:
    from tenure.churn.forecast import churn_odds

    snapshots = _history(n_days=12, accounts=60)
    frame = snapshots.frame
    frame["arr"] = 12_000.0
    frame["days_to_renewal"] = 45.0  # a renewal always due within the window
    day = snapshots.days[-4]
    rows = snapshots.on(day)
    at_renewal, in_window, model = churn_odds(snapshots, ["usage"], rows, 90, day)
    assert model == "logistic"
    assert ((at_renewal >= 0) & (at_renewal <= 1) & (in_window >= 0) & (in_window <= 1)).all()
    frame["days_to_renewal"] = np.nan  # no renewal ever seen: the renewal model cannot be fitted
    at_renewal, in_window, model = churn_odds(snapshots, ["usage"], snapshots.on(day), 90, day)
    assert model == "time-to-churn"
    assert (at_renewal <= in_window + 1e-12).all()  # by the window's end at the latest
