"""Scores: a health model applied to one account's signals, with every point accounted for.

Arithmetic is in hundredths of a point. Each input's share of the score is its component's weight
times its own weight (both renormalised over the inputs present, or a missing input scoring 50
under the ``neutral`` policy) times its 0-100 scale score. The total is rounded to hundredths and
handed out to the inputs by largest remainder, so inputs add up to components and components add
up to the score exactly, and any change between two scores splits exactly into its parts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from tenure.health.model import NEUTRAL_SCORE, Component, HealthModel


@dataclass(frozen=True)
class InputScore:
    """One signal's part in a score."""

    signal: str
    value: float | None
    score: float | None  # 0-100 on the input's scale; None when missing and left out
    share: float  # fraction of the whole score this input carries (0 when left out)
    points: int  # hundredths of a point it contributes

    @property
    def missing(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class ComponentScore:
    """One component's part in a score."""

    name: str
    label: str
    share: float
    points: int
    inputs: tuple[InputScore, ...]

    @property
    def score(self) -> float | None:
        """The component's own 0-100 score (None when all its inputs were missing)."""
        scored = [(i.share, i.score) for i in self.inputs if i.score is not None and i.share]
        weight = sum(s for s, _ in scored)
        return None if not weight else sum(s * v for s, v in scored) / weight


@dataclass(frozen=True)
class HealthScore:
    """An account's health as of a day: score, band, parts, model and what was missing."""

    account_id: str
    as_of: date
    points: int | None  # hundredths; None when no input was present at all
    band: str | None
    model: str
    model_digest: str
    variant: str
    components: tuple[ComponentScore, ...]
    missing: tuple[str, ...] = field(default=())
    missing_inputs: str = "redistribute"  # the model's policy for them
    not_scored: str | None = None  # why there is no score (not a customer that day)

    @property
    def missing_policy(self) -> str:
        """What happened to the missing inputs, in words."""
        if self.missing_inputs == "neutral":
            return "each scored a neutral 50"
        return "their weight went to the inputs present"

    @property
    def score(self) -> float | None:
        return None if self.points is None else self.points / 100

    def component(self, name: str) -> ComponentScore | None:
        return next((c for c in self.components if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = self.score
        data["as_of"] = self.as_of.isoformat()
        for component, raw in zip(self.components, data["components"], strict=True):
            raw["score"] = component.score
        return data


def is_customer(signals: Mapping[str, Any]) -> bool:
    """An account that has had subscriptions is a customer only while one is in force (accounts
    without any subscription data count as customers)."""
    return not (signals.get("subscriptions_started") and not signals.get("subscriptions_in_force"))


def score(
    model: HealthModel,
    account_id: str,
    as_of: date,
    signals: Mapping[str, Any],
    attributes: Mapping[str, object],
) -> HealthScore:
    """Score one account's signals (as of ``as_of``) under ``model``.

    An account that has had subscriptions but has none in force that day is not a customer then:
    it gets no score (``not_scored`` says why). Accounts without any subscription data are scored.
    """
    if not is_customer(signals):
        why = "not a customer that day: no subscription in force"
        return HealthScore(account_id, as_of, None, None, model.label, model.digest, "-", (),
                           not_scored=why)  # fmt: skip
    variant, components = model.variant_for(attributes)
    neutral = model.missing_inputs == "neutral"
    weighed = [_weigh(c, signals, neutral) for c in components]
    total_weight = sum(c.weight for c, inputs in zip(components, weighed, strict=True) if inputs)
    raw: list[list[tuple[str, float | None, float | None, float]]] = []
    for component, inputs in zip(components, weighed, strict=True):
        part = component.weight / total_weight if inputs and total_weight else 0.0
        raw.append([(s, v, sc, part * w) for s, v, sc, w in inputs] or _absent(component))
    points = _allocate([share * (sc or 0.0) for c in raw for _, _, sc, share in c])
    parts = _assemble(components, raw, points)
    missing = tuple(i.signal for c in parts for i in c.inputs if i.missing)
    total = sum(points) if total_weight else None
    band = None if total is None else model.bands.band(total / 100)
    return HealthScore(
        account_id, as_of, total, band, model.label, model.digest, variant, parts, missing,
        model.missing_inputs,
    )  # fmt: skip


def _weigh(
    component: Component, signals: Mapping[str, Any], neutral: bool
) -> list[tuple[str, float | None, float | None, float]]:
    """(signal, value, scale score, weight share within the component) for inputs that count."""
    present: list[tuple[str, float | None, float | None, float]] = []
    for spec in component.inputs:
        value = _number(signals.get(spec.signal))
        if value is not None:
            present.append((spec.signal, value, spec.scale.score(value), spec.weight))
        elif neutral:
            present.append((spec.signal, None, NEUTRAL_SCORE, spec.weight))
    weight = sum(w for *_, w in present)
    if not present:
        return []
    counted = {s: (v, sc, w / weight) for s, v, sc, w in present}
    # in the model's order, inputs left out included (with no score and no share)
    return [(i.signal, *counted.get(i.signal, (None, None, 0.0))) for i in component.inputs]


def _absent(component: Component) -> list[tuple[str, float | None, float | None, float]]:
    return [(i.signal, None, None, 0.0) for i in component.inputs]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def _allocate(exact: list[float]) -> list[int]:
    """Hundredths per input: floors, then the remaining hundredths to the largest remainders."""
    scaled = [e * 100 for e in exact]
    floors = [math.floor(s + 1e-9) for s in scaled]
    target = round(sum(scaled))
    order = sorted(range(len(scaled)), key=lambda i: floors[i] - scaled[i])
    for i in order[: max(target - sum(floors), 0)]:
        floors[i] += 1
    return floors


def _assemble(
    components: tuple[Component, ...],
    raw: list[list[tuple[str, float | None, float | None, float]]],
    points: list[int],
) -> tuple[ComponentScore, ...]:
    parts, at = [], 0
    for component, inputs in zip(components, raw, strict=True):
        scored = []
        for signal, value, scale_score, share in inputs:
            scored.append(InputScore(signal, value, scale_score, share, points[at]))
            at += 1
        share = sum(i.share for i in scored)
        total = sum(i.points for i in scored)
        parts.append(ComponentScore(component.name, component.label, share, total, tuple(scored)))
    return tuple(parts)
