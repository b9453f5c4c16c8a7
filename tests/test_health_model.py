"""Health models as code: the shipped default, scales, variants, and every kind of bad file.

Each bad file is written to disk and loaded; the test checks the exact ``file:line: field`` a user
reads, and a fragment of the reason.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenure.health import (
    BASE,
    Bands,
    Curve,
    HealthModel,
    ModelError,
    Thresholds,
    default_model,
    load_model,
    parse_model,
)
from tenure.signals import catalog

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "src" / "tenure" / "health" / "models" / "default.yaml"
DOC = ROOT / "docs" / "health-models.md"

# The component -> signals layout of the default model, as issue 3 asks for it.
DEFAULT_LAYOUT = {
    "usage": ["usage_trend_14d", "active_users_per_seat", "events_per_active_user"],
    "engagement": [
        "feature_breadth",
        "seat_utilisation",
        "key_feature_depth",
        "people_engaged_90d",
        "touchpoints_90d",
    ],
    "milestones": ["onboarding_progress", "days_behind_plan"],
    "recency": ["days_since_activity", "days_since_touchpoint"],
    "support": [
        "open_tickets_p1",
        "oldest_open_p1_days",
        "ticket_spike",
        "csat_90d",
        "sentiment_90d",
    ],
    "voice": ["nps_latest", "nps_trend"],
    "commercial": ["failed_payments_90d", "mrr_change_90d"],
}


def model_text(body: str) -> str:
    return dedent(body).lstrip("\n")


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(body, encoding="utf-8")
    return path


# The shipped default --------------------------------------------------------------------------


def test_default_model_loads_and_uses_only_catalog_signals() -> None:
    model = default_model()
    assert model.label == "default v1"
    assert set(model.signals()) <= set(catalog().names())
    assert len(set(model.signals())) == len(model.signals())
    assert model.key_features == ()
    assert model.missing_inputs == "redistribute"
    assert model.bands == Bands(green=70, yellow=40)


def test_default_model_has_the_components_the_issue_names() -> None:
    layout = {c.name: [i.signal for i in c.inputs] for c in default_model().components}
    assert layout == DEFAULT_LAYOUT
    assert all(c.weight > 0 and c.label for c in default_model().components)


def test_default_model_is_the_shipped_file_exactly() -> None:
    text = DEFAULT_FILE.read_text(encoding="utf-8")
    model = default_model()
    assert model.text == text
    assert model.digest == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert load_model(DEFAULT_FILE) == model


def test_default_onboarding_variant_weighs_milestones_up_and_usage_down() -> None:
    model = default_model()
    base = {c.name: c.weight for c in model.components}
    name, components = model.variant_for({"lifecycle_stage": "onboarding", "segment": "smb"})
    weights = {c.name: c.weight for c in components}
    assert name == "onboarding"
    assert weights["milestones"] > base["milestones"]
    assert weights["usage"] < base["usage"]
    share = weights["milestones"] / sum(weights.values())
    assert share > base["milestones"] / sum(base.values())


def test_the_doc_explains_every_key_component_and_signal_of_the_default() -> None:
    text = DOC.read_text(encoding="utf-8")
    keys = ["model", "version", "description", "key_features", "missing_inputs", "bands"]
    keys += ["components", "label", "weight", "signals", "curve", "thresholds"]
    keys += ["variants", "name", "when", "weights", "redistribute", "neutral"]
    model = default_model()
    names = [c.name for c in model.components] + list(model.signals())
    missing = [n for n in keys + names if f"`{n}`" not in text]
    assert not missing, f"docs/health-models.md never mentions {missing}"


# Scales ---------------------------------------------------------------------------------------


def test_curve_scores_at_between_and_beyond_its_points() -> None:
    curve = Curve(((-0.5, 0.0), (-0.2, 40.0), (0.0, 75.0), (0.2, 100.0)))
    assert curve.score(-0.2) == 40
    assert curve.score(0.0) == 75
    assert curve.score(-0.35) == pytest.approx(20)
    assert curve.score(0.1) == pytest.approx(87.5)
    assert curve.score(-3) == 0
    assert curve.score(0.2) == 100
    assert curve.score(5) == 100
    assert curve.score(math.inf) == 100
    assert curve.score(-math.inf) == 0


def test_decreasing_curve() -> None:
    curve = Curve(((0.0, 100.0), (7.0, 75.0), (14.0, 50.0)))
    assert curve.score(3.5) == pytest.approx(87.5)
    assert curve.score(-1) == 100
    assert curve.score(30) == 50


def test_a_curve_spanning_more_than_a_float_can_hold() -> None:
    curve = Curve(((-1e308, 0.0), (1e308, 100.0)))  # x1 - x0 overflows to infinity
    assert curve.score(0) == pytest.approx(50)
    assert curve.score(9e307) == pytest.approx(95)
    assert curve.score(-1e308) == 0


def test_thresholds_score_the_last_step_reached() -> None:
    steps = Thresholds(((0.0, 100.0), (1.0, 40.0), (2.0, 0.0)))
    assert steps.score(0) == 100
    assert steps.score(0.99) == 100
    assert steps.score(1) == 40
    assert steps.score(1.5) == 40
    assert steps.score(2) == 0
    assert steps.score(50) == 0
    assert steps.score(-1) == 100  # below the first step: the first step's score


def test_scales_refuse_nan_and_bad_points() -> None:
    with pytest.raises(ValueError, match="NaN"):
        Curve(((0.0, 0.0), (1.0, 100.0))).score(math.nan)
    with pytest.raises(ValueError, match="at least 2"):
        Curve(((0.0, 0.0),))
    with pytest.raises(ValueError, match="increase"):
        Thresholds(((1.0, 0.0), (1.0, 100.0)))
    with pytest.raises(ValueError, match=r"0\.\.100"):
        Curve(((0.0, 0.0), (1.0, 101.0)))
    with pytest.raises(ValueError, match="yellow"):
        Bands(green=40, yellow=70)


def test_bands() -> None:
    bands = Bands(green=70, yellow=40)
    assert [bands.band(s) for s in (100, 70, 69.99, 40, 39.99, 0)] == [
        "green",
        "green",
        "yellow",
        "yellow",
        "red",
        "red",
    ]


xs = st.lists(
    st.floats(allow_nan=False, allow_infinity=False), min_size=2, max_size=8, unique=True
).map(sorted)
scores = st.floats(min_value=0, max_value=100)
values = st.floats(allow_nan=False)


@st.composite
def scales(draw: st.DrawFn, kind: type[Curve] | type[Thresholds], order: str = "any") -> object:
    at = draw(xs)
    got = draw(st.lists(scores, min_size=len(at), max_size=len(at)))
    if order != "any":
        got.sort(reverse=order == "down")
    return kind(tuple(zip(at, got, strict=True)))


@given(scale=st.one_of(scales(Curve), scales(Thresholds)), value=values)
def test_scores_are_always_within_0_and_100(scale: Curve | Thresholds, value: float) -> None:
    assert 0 <= scale.score(value) <= 100


@given(curve=scales(Curve))
def test_a_curve_passes_through_its_points(curve: Curve) -> None:
    assert [curve.score(x) for x, _ in curve.points] == [y for _, y in curve.points]


@given(
    scale=st.one_of(
        scales(Curve, "up"),
        scales(Curve, "down"),
        scales(Thresholds, "up"),
        scales(Thresholds, "down"),
    ),
    a=values,
    b=values,
)
def test_monotone_points_give_a_monotone_scale(
    scale: Curve | Thresholds, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    points = scale.points if isinstance(scale, Curve) else scale.steps
    rising = points[0][1] <= points[-1][1]
    if rising:
        assert scale.score(low) <= scale.score(high)
    else:
        assert scale.score(low) >= scale.score(high)


# Variants -------------------------------------------------------------------------------------

VARIANTS = """
    model: tiny
    version: 1
    components:
      usage: {weight: 3, signals: {usage_trend_14d: {curve: [[-0.5, 0], [0, 100]]}}}
      voice: {weight: 1, signals: {nps_latest: {thresholds: [[0, 0], [7, 100]]}}}
    variants:
      - name: enterprise-trial
        when: {segment: [Enterprise], lifecycle_stage: [trial]}
        weights: {voice: 0}
      - name: trial
        when: {lifecycle_stage: [trial, onboarding]}
        weights: {usage: 1, voice: 3}
"""


def test_variant_selection_first_match_wins() -> None:
    model = parse_model(model_text(VARIANTS))

    def pick(**attributes: object) -> tuple[str, list[tuple[str, float]]]:
        name, components = model.variant_for(attributes)
        return name, [(c.name, c.weight) for c in components]

    assert pick(segment="enterprise", lifecycle_stage="trial") == (
        "enterprise-trial",
        [("usage", 3)],
    )
    assert pick(segment="SMB", lifecycle_stage="Trial") == ("trial", [("usage", 1), ("voice", 3)])
    assert pick(lifecycle_stage="onboarding") == ("trial", [("usage", 1), ("voice", 3)])
    assert pick(segment="enterprise", lifecycle_stage="mature") == (
        BASE,
        [("usage", 3), ("voice", 1)],
    )
    assert pick(segment="enterprise", lifecycle_stage=None) == (BASE, [("usage", 3), ("voice", 1)])
    assert pick() == (BASE, [("usage", 3), ("voice", 1)])


def test_parse_model_keeps_order_text_and_digest() -> None:
    text = model_text(VARIANTS)
    model = parse_model(text)
    assert isinstance(model, HealthModel)
    assert [c.name for c in model.components] == ["usage", "voice"]
    assert model.components[0].label == "usage"
    assert model.components[0].inputs[0].weight == 1
    assert model.signals() == ("usage_trend_14d", "nps_latest")
    assert model.variants[0].when == (("segment", ("enterprise",)), ("lifecycle_stage", ("trial",)))
    assert model.text == text
    assert model.digest == hashlib.sha256(text.encode()).hexdigest()


def test_parse_model_names_its_origin() -> None:
    with pytest.raises(ModelError) as caught:
        parse_model("model: x\n")
    assert str(caught.value).startswith("<model>:1: version: ")


# Bad files ------------------------------------------------------------------------------------

HEAD = """\
model: tiny
version: 1
components:
  usage:
    weight: 1
    signals:
"""
CURVE = "      usage_trend_14d: {curve: [[-0.5, 0], [0, 100]]}\n"

BAD: list[tuple[str, str, int, str, str]] = [
    # (case, file body, line, field, fragment of the message)
    ("yaml syntax", "model: tiny\nversion: 1\n  bad: indent\n", 3, "(yaml)", "not valid YAML"),
    ("yaml unclosed", "model: tiny\ncomponents: {usage: [1, 2}\n", 2, "(yaml)", "not valid YAML"),
    ("not a mapping", "- model\n- tiny\n", 1, "(document)", "a YAML mapping"),
    ("empty file", "", 1, "(document)", "got nothing"),
    ("unknown key", HEAD + CURVE + "bandz: {green: 70, yellow: 40}\n", 8, "bandz", "'bands'?"),
    (
        "unknown input key",
        HEAD + "      usage_trend_14d: {curve: [[0, 0], [1, 100]], wieght: 2}\n",
        7,
        "components.usage.signals.usage_trend_14d.wieght",
        "did you mean 'weight'?",
    ),
    ("missing version", "model: tiny\ncomponents: {}\n", 1, "version", "required"),
    (
        "missing component weight",
        HEAD.replace("    weight: 1\n", "") + CURVE,
        4,
        "components.usage.weight",
        "required",
    ),
    ("version as decimal", HEAD.replace("1", "1.5", 1) + CURVE, 2, "version", "quote it"),
    ("model name", HEAD.replace("tiny", "Tiny Model") + CURVE, 1, "model", "lower-case"),
    ("duplicate key", HEAD + CURVE + CURVE, 8, "components.usage.signals.usage_trend_14d", "twice"),
    (
        "weight as text",
        HEAD.replace("weight: 1", "weight: heavy") + CURVE,
        5,
        "components.usage.weight",
        "expected a number, got str 'heavy'",
    ),
    (
        "number YAML reads as text",
        HEAD.replace("weight: 1", "weight: 1e3") + CURVE,
        5,
        "components.usage.weight",
        "write it as 1000.0",
    ),
    (
        "zero component weight",
        HEAD.replace("weight: 1", "weight: 0") + CURVE,
        5,
        "components.usage.weight",
        "above 0",
    ),
    (
        "negative input weight",
        HEAD + "      usage_trend_14d: {weight: -1, curve: [[0, 0], [1, 100]]}\n",
        7,
        "components.usage.signals.usage_trend_14d.weight",
        "above 0, got -1",
    ),
    (
        "boolean weight",
        HEAD + "      usage_trend_14d: {weight: yes, curve: [[0, 0], [1, 100]]}\n",
        7,
        "components.usage.signals.usage_trend_14d.weight",
        "got bool True",
    ),
    (
        "unknown signal",
        HEAD + CURVE.replace("14d", "14"),
        7,
        "components.usage.signals.usage_trend_14",
        "did you mean 'usage_trend_14d'?",
    ),
    (
        "signal in two components",
        HEAD + CURVE + "  voice:\n    weight: 1\n    signals:\n" + CURVE,
        11,
        "components.voice.signals.usage_trend_14d",
        "already in component 'usage'",
    ),
    ("no components", "model: tiny\nversion: 1\ncomponents: {}\n", 3, "components", "at least one"),
    (
        "no signals",
        "model: tiny\nversion: 1\ncomponents:\n  usage: {weight: 1, signals: {}}\n",
        4,
        "components.usage.signals",
        "at least one signal",
    ),
    (
        "curve of one point",
        HEAD + "      usage_trend_14d:\n        curve: [[0, 100]]\n",
        8,
        "components.usage.signals.usage_trend_14d.curve",
        "at least 2 points",
    ),
    (
        "curve x not increasing",
        HEAD + "      usage_trend_14d:\n        curve:\n          - [0, 0]\n          - [0, 100]\n",
        10,
        "components.usage.signals.usage_trend_14d.curve[1]",
        "x must increase: 0 comes after 0",
    ),
    (
        "thresholds not increasing",
        HEAD
        + "      open_tickets_p1:\n        thresholds:\n          - [1, 100]\n          - [0, 0]\n",
        10,
        "components.usage.signals.open_tickets_p1.thresholds[1]",
        "at_least must increase",
    ),
    (
        "score above 100",
        HEAD + "      usage_trend_14d:\n        curve:\n          - [0, 0]\n          - [1, 120]\n",
        10,
        "components.usage.signals.usage_trend_14d.curve[1]",
        "score 120 is outside 0..100",
    ),
    (
        "point of three values",
        HEAD
        + "      usage_trend_14d:\n        curve:\n          - [0, 0]\n          - [1, 2, 3]\n",
        10,
        "components.usage.signals.usage_trend_14d.curve[1]",
        "a point is [x, score]",
    ),
    (
        "infinite x",
        HEAD
        + "      usage_trend_14d:\n        curve:\n          - [0, 0]\n          - [.inf, 9]\n",
        10,
        "components.usage.signals.usage_trend_14d.curve[1]",
        "finite",
    ),
    (
        "curve and thresholds",
        HEAD + "      usage_trend_14d: {curve: [[0, 0], [1, 1]], thresholds: [[0, 0], [1, 1]]}\n",
        7,
        "components.usage.signals.usage_trend_14d",
        "exactly one of curve or thresholds",
    ),
    (
        "neither curve nor thresholds",
        HEAD + "      usage_trend_14d: {weight: 2}\n",
        7,
        "components.usage.signals.usage_trend_14d",
        "exactly one of curve or thresholds",
    ),
    (
        "bands out of order",
        HEAD + CURVE + "bands:\n  green: 40\n  yellow: 70\n",
        10,
        "bands.yellow",
        "below green (40)",
    ),
    (
        "green above 100",
        HEAD + CURVE + "bands: {green: 101, yellow: 40}\n",
        8,
        "bands.green",
        "100",
    ),
    ("bands missing yellow", HEAD + CURVE + "bands: {green: 70}\n", 8, "bands.yellow", "required"),
    (
        "missing-input policy",
        HEAD + CURVE + "missing_inputs: ignore\n",
        8,
        "missing_inputs",
        "redistribute, neutral",
    ),
    (
        "variant with an unknown component",
        HEAD + CURVE + "variants:\n  - name: trial\n    when: {lifecycle_stage: [trial]}\n"
        "    weights:\n      usgae: 2\n",
        12,
        "variants[0].weights.usgae",
        "unknown component; did you mean 'usage'?",
    ),
    (
        "variant with an unknown attribute",
        HEAD + CURVE + "variants:\n  - name: trial\n    when:\n      lifecycle: [trial]\n"
        "    weights: {usage: 2}\n",
        11,
        "variants[0].when.lifecycle",
        "did you mean 'lifecycle_stage'?",
    ),
    (
        "variant with an unknown lifecycle stage",
        HEAD + CURVE + "variants:\n  - name: trial\n    when:\n      lifecycle_stage:\n"
        "        - trial\n        - onbaording\n    weights: {usage: 2}\n",
        13,
        "variants[0].when.lifecycle_stage[1]",
        "did you mean 'onboarding'?",
    ),
    (
        "variant switching everything off",
        HEAD + CURVE + "variants:\n  - name: trial\n    when: {segment: [smb]}\n"
        "    weights: {usage: 0}\n",
        11,
        "variants[0].weights",
        "switches off every component",
    ),
    (
        "variant named base",
        HEAD + CURVE + "variants:\n  - name: base\n    when: {segment: [smb]}\n"
        "    weights: {usage: 2}\n",
        9,
        "variants[0].name",
        "without a variant",
    ),
    (
        "variant without when",
        HEAD + CURVE + "variants:\n  - name: smb\n    weights: {usage: 2}\n",
        9,
        "variants[0].when",
        "required",
    ),
    (
        "key feature listed twice",
        HEAD + CURVE + "key_features:\n  - reports\n  - reports\n",
        10,
        "key_features[1]",
        "listed twice",
    ),
]


@pytest.mark.parametrize(
    ("body", "line", "field", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_a_bad_model_names_file_line_and_field(
    tmp_path: Path, body: str, line: int, field: str, fragment: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ModelError) as caught:
        load_model(path)
    error = caught.value
    assert str(error).startswith(f"{path}:{line}: {field}: "), str(error)
    assert (error.file, error.line, error.field) == (str(path), line, field)
    assert fragment in error.message, str(error)
    assert isinstance(error, ValueError)


def test_an_unreadable_file_is_a_model_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ModelError, match=re.escape(f"{path}:1: (document): cannot read")):
        load_model(path)
