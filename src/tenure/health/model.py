"""Health models as code: a versioned YAML file of components, scales, variants and bands.

A model is validated on load; every error names the file, the line and the field (a dotted path,
with ``[i]`` for list items) and stops the load at the first problem found::

    model: default
    version: 1
    missing_inputs: redistribute     # or neutral: a missing signal scores 50
    bands: {green: 70, yellow: 40}
    components:
      usage:
        weight: 35
        signals:
          usage_trend_14d: {weight: 2, curve: [[-0.5, 0], [-0.2, 40], [0, 75], [0.2, 100]]}
          open_tickets_p1: {thresholds: [[0, 100], [1, 40], [2, 0]]}
    variants:
      - name: onboarding
        when: {lifecycle_stage: [onboarding, trial]}
        weights: {usage: 20, milestones: 40}

``docs/health-models.md`` describes every key and the shipped default model.
"""

from __future__ import annotations

import hashlib
import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Protocol

from tenure.configfile import DOCUMENT, ConfigError, document, join, kind_of, locate, suggest
from tenure.record.fields import normalise_token
from tenure.record.schema import LIFECYCLE_STAGES
from tenure.signals import catalog

BASE = "base"
NEUTRAL_SCORE = 50.0
MISSING_INPUTS = ("redistribute", "neutral")
ATTRIBUTES = ("segment", "lifecycle_stage")
DEFAULT_BANDS = (70.0, 40.0)

_TOP_KEYS = (
    "model",
    "version",
    "description",
    "key_features",
    "missing_inputs",
    "bands",
    "components",
    "variants",
)
_COMPONENT_KEYS = ("label", "weight", "signals")
_INPUT_KEYS = ("weight", "curve", "thresholds")
_BAND_KEYS = ("green", "yellow")
_VARIANT_KEYS = ("name", "when", "weights")
_NAME = re.compile(r"[a-z0-9_-]+\Z")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


class ModelError(ConfigError):
    """A health model file is wrong; ``str()`` is ``file:line: field: message``."""


class Scale(Protocol):
    """How a signal's value becomes a score from 0 (worst) to 100 (best)."""

    def score(self, value: float) -> float: ...


@dataclass(frozen=True)
class Curve:
    """Piecewise-linear through ``(x, score)`` points; flat beyond the first and last point."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        _check_steps(self.points, "curve")

    def score(self, value: float) -> float:
        """The score of ``value``: interpolated between points, clamped beyond the ends."""
        _check_value(value)
        points = self.points
        if value <= points[0][0]:
            return points[0][1]
        if value >= points[-1][0]:
            return points[-1][1]
        i = bisect_right(points, value, key=_first)
        return _interpolate(points[i - 1], points[i], value)


@dataclass(frozen=True)
class Thresholds:
    """Steps ``(at_least, score)``: the score of the last step reached (the first one below it)."""

    steps: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        _check_steps(self.steps, "thresholds")

    def score(self, value: float) -> float:
        """The score of the last step whose ``at_least`` is at most ``value``."""
        _check_value(value)
        i = bisect_right(self.steps, value, key=_first)
        return self.steps[max(i - 1, 0)][1]


@dataclass(frozen=True)
class Input:
    """One signal in a component: its weight within the component and its scale."""

    signal: str
    weight: float
    scale: Curve | Thresholds


@dataclass(frozen=True)
class Component:
    """A weighted group of inputs; ``label`` is how a CSM reads its name."""

    name: str
    label: str
    weight: float
    inputs: tuple[Input, ...]


@dataclass(frozen=True)
class Variant:
    """Component weights for the accounts whose attributes match ``when`` (all of its attributes).

    ``when`` holds ``(attribute, allowed values)`` with values normalised as account vocabularies
    are (``"Trial"`` matches ``trial``); ``weights`` holds ``(component, weight)`` overrides.
    """

    name: str
    when: tuple[tuple[str, tuple[str, ...]], ...]
    weights: tuple[tuple[str, float], ...]

    def matches(self, attributes: Mapping[str, object]) -> bool:
        """Whether every attribute in ``when`` has one of its allowed values (None never does)."""
        return all(_attribute(attributes, name) in allowed for name, allowed in self.when)

    def apply(self, components: Iterable[Component]) -> tuple[Component, ...]:
        """``components`` with this variant's weights; a weight of 0 drops the component."""
        overrides = dict(self.weights)
        weighted = (replace(c, weight=overrides.get(c.name, c.weight)) for c in components)
        return tuple(c for c in weighted if c.weight > 0)


@dataclass(frozen=True)
class Bands:
    """Score bands: ``green`` and above is green, ``yellow`` and above is yellow, else red."""

    green: float
    yellow: float

    def __post_init__(self) -> None:
        if not 0 < self.yellow < self.green <= 100:
            raise ValueError(f"bands need 0 < yellow < green <= 100, got {self}")

    def band(self, score: float) -> str:
        """``"green"``, ``"yellow"`` or ``"red"``."""
        if score >= self.green:
            return "green"
        return "yellow" if score >= self.yellow else "red"


@dataclass(frozen=True)
class HealthModel:
    """A validated health model; ``name`` and ``version`` identify it, ``digest`` its exact text."""

    name: str
    version: str
    description: str
    key_features: tuple[str, ...]
    missing_inputs: str
    bands: Bands
    components: tuple[Component, ...]
    variants: tuple[Variant, ...]
    text: str = field(repr=False)
    digest: str

    @property
    def label(self) -> str:
        """``default v1``: how scores and reports name the model."""
        return f"{self.name} v{self.version}"

    def variant_for(self, attributes: Mapping[str, object]) -> tuple[str, tuple[Component, ...]]:
        """The first variant matching an account's attributes, or ``"base"``, with its components."""
        for variant in self.variants:
            if variant.matches(attributes):
                return variant.name, self._weighted[variant.name]
        return BASE, self.components

    def signals(self) -> tuple[str, ...]:
        """Every signal the model uses, in file order."""
        return tuple(i.signal for c in self.components for i in c.inputs)

    @cached_property
    def _weighted(self) -> dict[str, tuple[Component, ...]]:
        return {v.name: v.apply(self.components) for v in self.variants}


def load_model(path: Path) -> HealthModel:
    """Read and validate a health model file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ModelError(str(path), 1, DOCUMENT, f"cannot read the model file ({err})") from None
    return parse_model(text, str(path))


def parse_model(text: str, origin: str = "<model>") -> HealthModel:
    """Validate a health model's text; ``origin`` names it in errors."""
    data, lines = _document(text, origin)
    return _Reader(origin, lines).model(data, text)


@cache
def default_model() -> HealthModel:
    """The model Tenure ships (``tenure/health/models/default.yaml``)."""
    resource = resources.files("tenure.health").joinpath("models/default.yaml")
    return parse_model(resource.read_text(encoding="utf-8"), "tenure/health/models/default.yaml")


def _first(point: tuple[float, float]) -> float:
    return point[0]


def _check_value(value: float) -> None:
    if math.isnan(value):
        raise ValueError("cannot score NaN; a missing signal is left to the model's missing_inputs")


def _interpolate(low: tuple[float, float], high: tuple[float, float], value: float) -> float:
    """The score at ``value`` on the segment ``low``-``high``, never outside its two scores."""
    (x0, y0), (x1, y1) = low, high
    y = y0 + (y1 - y0) * _fraction(value, x0, x1)
    return min(max(y, min(y0, y1)), max(y0, y1))


def _fraction(value: float, x0: float, x1: float) -> float:
    """Where ``value`` lies from ``x0`` (0) to ``x1`` (1)."""
    span = x1 - x0
    if not math.isfinite(span):  # too far apart for a float: halve everything first
        return _fraction(value / 2, x0 / 2, x1 / 2)
    return min(max((value - x0) / span, 0.0), 1.0)


def _check_steps(steps: tuple[tuple[float, float], ...], what: str) -> None:
    if len(steps) < 2:
        raise ValueError(f"a {what} needs at least 2 points, got {len(steps)}")
    for (x0, _), (x1, _) in pairwise(steps):
        if not x0 < x1:
            raise ValueError(f"a {what}'s x values must strictly increase: {steps}")
    if not all(math.isfinite(x) and 0 <= y <= 100 for x, y in steps):
        raise ValueError(f"a {what} has finite x values and scores in 0..100: {steps}")


def _attribute(attributes: Mapping[str, object], name: str) -> str | None:
    value = attributes.get(name)
    return None if value is None else normalise_token(value)


# Loading: the YAML document, with the line of every key and list item (tenure.configfile) ------


def _document(text: str, origin: str) -> tuple[object, dict[str, int]]:
    return document(text, origin, ModelError)


_suggest = suggest
_kind = kind_of


class _Reader:
    """Builds a model from a parsed document; each check fails with the field's file and line."""

    def __init__(self, origin: str, lines: dict[str, int]) -> None:
        self.origin = origin
        self.lines = lines
        self.signals = frozenset(catalog().names())

    def fail(self, path: str, message: str) -> ModelError:
        """The error for ``path``, at its line (or its closest enclosing key's)."""
        error = locate(self.lines, self.origin, path, message, ModelError)
        assert isinstance(error, ModelError)
        return error

    # The model and its parts ------------------------------------------------------------------

    def model(self, data: object, text: str) -> HealthModel:
        if not isinstance(data, dict):
            raise self.fail(
                "", f"a health model is a YAML mapping (key: value lines), got {_kind(data)}"
            )
        root = self.table(data, "", _TOP_KEYS, ("model", "version", "components"))
        name, version = self.name(root["model"], "model"), self.version(root["version"])
        description = self.text(root.get("description") or "", "description", empty=True)
        key_features = self.key_features(root.get("key_features"))
        missing_inputs = self.choice(root.get("missing_inputs"), "missing_inputs")
        bands = self.bands(root.get("bands"))
        components = self.components(root["components"])
        return HealthModel(
            name=name,
            version=version,
            description=description,
            key_features=key_features,
            missing_inputs=missing_inputs,
            bands=bands,
            components=components,
            variants=self.variants(root.get("variants"), components),
            text=text,
            digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )

    def version(self, value: object) -> str:
        if isinstance(value, float):
            raise self.fail("version", f"{value!r} reads as a decimal number; quote it: '{value}'")
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and _VERSION.match(value):
            return value
        raise self.fail(
            "version", f"expected a whole number or a version like '2.1', got {_kind(value)}"
        )

    def key_features(self, value: object) -> tuple[str, ...]:
        features = self.sequence(value if value is not None else [], "key_features")
        names = tuple(self.text(f, f"key_features[{i}]") for i, f in enumerate(features))
        for i, name in enumerate(names):
            if name in names[:i]:
                raise self.fail(f"key_features[{i}]", f"{name!r} is listed twice")
        return names

    def choice(self, value: object, path: str) -> str:
        if value is None:
            return MISSING_INPUTS[0]
        if value not in MISSING_INPUTS:
            raise self.fail(path, f"{value!r} is not one of: {', '.join(MISSING_INPUTS)}")
        return str(value)

    def bands(self, value: object) -> Bands:
        if value is None:
            return Bands(*DEFAULT_BANDS)
        table = self.table(value, "bands", _BAND_KEYS, _BAND_KEYS)
        green = self.number(table["green"], "bands.green")
        yellow = self.number(table["yellow"], "bands.yellow")
        if not 0 < green <= 100:
            raise self.fail("bands.green", f"must be above 0 and at most 100, got {green:g}")
        if not 0 < yellow < green:
            raise self.fail(
                "bands.yellow", f"must be above 0 and below green ({green:g}), got {yellow:g}"
            )
        return Bands(green=green, yellow=yellow)

    # Components and their inputs --------------------------------------------------------------

    def components(self, value: object) -> tuple[Component, ...]:
        table = self.mapping(value, "components")
        if not table:
            raise self.fail("components", "a model needs at least one component")
        used: dict[str, str] = {}
        return tuple(self.component(name, spec, used) for name, spec in table.items())

    def component(self, name: str, spec: object, used: dict[str, str]) -> Component:
        path = f"components.{name}"
        self.name(name, path)
        table = self.table(spec, path, _COMPONENT_KEYS, ("weight", "signals"))
        label = table.get("label")
        return Component(
            name=name,
            label=name if label is None else self.text(label, f"{path}.label"),
            weight=self.weight(table["weight"], f"{path}.weight"),
            inputs=self.inputs(table["signals"], f"{path}.signals", name, used),
        )

    def inputs(
        self, value: object, path: str, component: str, used: dict[str, str]
    ) -> tuple[Input, ...]:
        table = self.mapping(value, path)
        if not table:
            raise self.fail(path, "a component needs at least one signal")
        return tuple(
            self.input(signal, spec, f"{path}.{signal}", component, used)
            for signal, spec in table.items()
        )

    def input(
        self, signal: str, spec: object, path: str, component: str, used: dict[str, str]
    ) -> Input:
        if signal not in self.signals:
            hint = _suggest(signal, sorted(self.signals), listed=False)
            raise self.fail(
                path, f"unknown signal {signal!r}{hint or ' (tenure signals lists them)'}"
            )
        if signal in used:
            raise self.fail(path, f"already in component {used[signal]!r}; a signal counts once")
        used[signal] = component
        table = self.table(spec, path, _INPUT_KEYS, ())
        weight = table.get("weight")
        return Input(
            signal=signal,
            weight=1.0 if weight is None else self.weight(weight, f"{path}.weight"),
            scale=self.scale(table, path),
        )

    def scale(self, table: dict[str, object], path: str) -> Curve | Thresholds:
        if ("curve" in table) == ("thresholds" in table):
            raise self.fail(path, "give exactly one of curve or thresholds")
        if "curve" in table:
            return Curve(self.steps(table["curve"], f"{path}.curve", "x"))
        return Thresholds(self.steps(table["thresholds"], f"{path}.thresholds", "at_least"))

    def steps(self, value: object, path: str, x: str) -> tuple[tuple[float, float], ...]:
        items = self.sequence(value, path)
        if len(items) < 2:
            raise self.fail(path, f"needs at least 2 points [{x}, score], got {len(items)}")
        points = tuple(self.point(item, f"{path}[{i}]", x) for i, item in enumerate(items))
        for i in range(1, len(points)):
            if points[i][0] <= points[i - 1][0]:
                before, now = points[i - 1][0], points[i][0]
                raise self.fail(
                    f"{path}[{i}]", f"{x} must increase: {now:g} comes after {before:g}"
                )
        return points

    def point(self, value: object, path: str, x: str) -> tuple[float, float]:
        pair = self.sequence(value, path)
        if len(pair) != 2:
            raise self.fail(path, f"a point is [{x}, score], got {len(pair)} values")
        at, score = self.number(pair[0], path), self.number(pair[1], path)
        if not 0 <= score <= 100:
            raise self.fail(path, f"score {score:g} is outside 0..100")
        return at, score

    # Variants ---------------------------------------------------------------------------------

    def variants(self, value: object, components: tuple[Component, ...]) -> tuple[Variant, ...]:
        items = self.sequence(value if value is not None else [], "variants")
        variants: list[Variant] = []
        for i, item in enumerate(items):
            variant = self.variant(item, f"variants[{i}]", components)
            if variant.name in {v.name for v in variants}:
                raise self.fail(f"variants[{i}].name", f"a variant {variant.name!r} comes earlier")
            variants.append(variant)
        return tuple(variants)

    def variant(self, value: object, path: str, components: tuple[Component, ...]) -> Variant:
        table = self.table(value, path, _VARIANT_KEYS, _VARIANT_KEYS)
        name = self.name(table["name"], f"{path}.name")
        if name == BASE:
            raise self.fail(f"{path}.name", f"{BASE!r} names the model without a variant")
        when = self.mapping(table["when"], f"{path}.when")
        if not when:
            raise self.fail(
                f"{path}.when", "say which accounts it is for (segment, lifecycle_stage)"
            )
        return Variant(
            name=name,
            when=tuple(self.condition(a, v, f"{path}.when.{a}") for a, v in when.items()),
            weights=self.overrides(table["weights"], f"{path}.weights", components),
        )

    def condition(self, attribute: str, value: object, path: str) -> tuple[str, tuple[str, ...]]:
        if attribute not in ATTRIBUTES:
            raise self.fail(path, f"unknown account attribute{_suggest(attribute, ATTRIBUTES)}")
        items = self.sequence(value, path)
        if not items:
            raise self.fail(path, "list at least one value")
        values = tuple(normalise_token(self.text(v, f"{path}[{i}]")) for i, v in enumerate(items))
        for i, token in enumerate(values):
            if attribute == "lifecycle_stage" and token not in LIFECYCLE_STAGES:
                hint = _suggest(token, LIFECYCLE_STAGES)
                raise self.fail(f"{path}[{i}]", f"unknown lifecycle stage {token!r}{hint}")
        return attribute, values

    def overrides(
        self, value: object, path: str, components: tuple[Component, ...]
    ) -> tuple[tuple[str, float], ...]:
        table = self.mapping(value, path)
        names = [c.name for c in components]
        for name in table:
            if name not in names:
                raise self.fail(f"{path}.{name}", f"unknown component{_suggest(name, names)}")
        weights = {n: self.weight(w, f"{path}.{n}", zero=True) for n, w in table.items()}
        if not weights:
            raise self.fail(path, "give at least one component weight")
        if all(weights.get(c.name, c.weight) == 0 for c in components):
            raise self.fail(path, "switches off every component")
        return tuple(weights.items())

    # Values -----------------------------------------------------------------------------------

    def table(
        self, value: object, path: str, known: tuple[str, ...], required: tuple[str, ...]
    ) -> dict[str, object]:
        """A mapping with only ``known`` keys and every ``required`` one."""
        found = self.mapping(value, path)
        for key in found:
            if key not in known:
                raise self.fail(join(path, key), f"unknown key{_suggest(key, known)}")
        for key in required:
            if key not in found:
                raise self.fail(join(path, key), "required but missing")
        return found

    def mapping(self, value: object, path: str) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping (name: value), got {_kind(value)}")
        return {str(k): v for k, v in value.items()}

    def sequence(self, value: object, path: str) -> list[object]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_kind(value)}")
        return value

    def name(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            raise self.fail(
                path, f"a name is lower-case letters, digits, _ and -, got {_kind(value)}"
            )
        return value

    def text(self, value: object, path: str, empty: bool = False) -> str:
        if not isinstance(value, str) or not (empty or value.strip()):
            raise self.fail(path, f"expected text, got {_kind(value)}")
        return value.strip()

    def number(self, value: object, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number, got {_kind(value)}{_float_hint(value)}")
        if not math.isfinite(value):
            raise self.fail(path, f"expected a finite number, got {value!r}")
        return float(value)

    def weight(self, value: object, path: str, zero: bool = False) -> float:
        weight = self.number(value, path)
        if weight < 0 or (weight == 0 and not zero):
            bound = "at least 0 (0 switches it off)" if zero else "above 0"
            raise self.fail(path, f"a weight is {bound}, got {weight:g}")
        return weight


def _float_hint(value: object) -> str:
    """YAML 1.1 reads ``1e3`` as text: say how to write it as a number."""
    if isinstance(value, str):
        try:
            return f" (write it as {float(value)!r})"
        except ValueError:
            return ""
    return ""
