"""Explanations: a change in score between two days, split exactly into components and signals.

Every score is a sum of input points (hundredths), so the change is the sum of each input's change
in points; a component's change is the sum of its inputs'. Nothing is estimated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenure.health.score import ComponentScore, HealthScore, InputScore
from tenure.signals import Catalog
from tenure.signals.catalog import phrase


@dataclass(frozen=True)
class SignalChange:
    signal: str
    change: int  # hundredths
    before: float | None
    after: float | None
    text: str


@dataclass(frozen=True)
class Contribution:
    component: str
    label: str
    change: int  # hundredths
    signals: tuple[SignalChange, ...]

    @property
    def text(self) -> str:
        movers = [s for s in self.signals if s.change][:2] or list(self.signals[:1])
        detail = ", ".join(s.text for s in movers)
        return f"{self.label} {_points(self.change)}" + (f" ({detail})" if detail else "")


@dataclass(frozen=True)
class Explanation:
    account_id: str
    before: HealthScore
    after: HealthScore
    contributions: tuple[Contribution, ...]

    @property
    def change(self) -> int:
        return (self.after.points or 0) - (self.before.points or 0)

    @property
    def text(self) -> str:
        moved = [c for c in self.contributions if c.change]
        if not moved:
            return f"{_points(self.change)}: no component moved"
        return f"{_points(self.change)}: " + ", ".join(c.text for c in moved)

    def to_dict(self) -> dict[str, Any]:
        def side(score: HealthScore) -> dict[str, Any]:
            return {
                "date": score.as_of.isoformat(),
                "score": score.score,
                "band": score.band,
                "variant": score.variant,
                "missing": list(score.missing),
            }

        return {
            "account_id": self.account_id,
            "model": self.after.model,
            "from": side(self.before),
            "to": side(self.after),
            "change": round(self.change / 100, 2),
            "change_hundredths": self.change,  # exact: the parts' hundredths add up to it
            "text": self.text,
            "contributions": [
                {
                    "component": c.component,
                    "label": c.label,
                    "change": round(c.change / 100, 2),
                    "change_hundredths": c.change,
                    "text": c.text,
                    "signals": [
                        {
                            "signal": s.signal,
                            "change": round(s.change / 100, 2),
                            "change_hundredths": s.change,
                            "from": s.before,
                            "to": s.after,
                            "text": s.text,
                        }
                        for s in c.signals
                    ],
                }
                for c in self.contributions
            ],
        }


def explain(before: HealthScore, after: HealthScore, catalog: Catalog) -> Explanation:
    """Attribute ``after - before`` to components and signals (largest movers first)."""
    names = [c.name for c in after.components]
    names += [c.name for c in before.components if c.name not in names]
    parts = [_component(before.component(n), after.component(n), catalog) for n in names]
    parts.sort(key=lambda c: -abs(c.change))
    return Explanation(after.account_id, before, after, tuple(parts))


def _component(
    before: ComponentScore | None, after: ComponentScore | None, catalog: Catalog
) -> Contribution:
    known = after or before
    assert known is not None
    old = {i.signal: i for i in (before.inputs if before else ())}
    new = {i.signal: i for i in (after.inputs if after else ())}
    signals = [_signal(s, old.get(s), new.get(s), catalog) for s in dict.fromkeys([*new, *old])]
    signals.sort(key=lambda s: -abs(s.change))
    change = (after.points if after else 0) - (before.points if before else 0)
    return Contribution(known.name, known.label, change, tuple(signals))


def _signal(
    name: str, before: InputScore | None, after: InputScore | None, catalog: Catalog
) -> SignalChange:
    change = (after.points if after else 0) - (before.points if before else 0)
    old = before.value if before else None
    new = after.value if after else None
    unit = catalog.named(name).unit if name in catalog.names() else "count"
    text = phrase(name).format(describe(new, unit, name))
    if new is None:
        text = f"{name.replace('_', ' ')} missing"
    if old != new:
        text += f" (was {describe(old, unit, name)})"
    return SignalChange(name, change, old, new, text)


def describe(value: float | None, unit: str, name: str = "") -> str:
    """A signal value in the words a CSM reads."""
    if value is None:
        return "missing"
    if "trend" in name or "change" in name:
        return f"{value:+.0%}" if unit == "ratio" else f"{value:+.1f}"
    if unit == "ratio":
        return f"{value:.2f}"
    if unit == "share":
        return f"{value:.0%}"
    if unit == "days":
        return f"{value:.0f} day{'' if value == 1 else 's'}"
    if unit == "flag":
        return "yes" if value else "no"
    if unit in ("score", "currency"):
        return f"{value:.1f}"
    return f"{value:.1f}" if value != int(value) else f"{int(value)}"


def _points(hundredths: int) -> str:
    value = hundredths / 100
    text = f"{value:+.2f}".rstrip("0").rstrip(".")
    return text if text not in ("+", "-") else "0"
