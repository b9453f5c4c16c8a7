"""Triggers as code: a versioned YAML file of named conditions, validated on load.

Each trigger is a built-in kind with parameters (``usage_decline`` with ``threshold`` and
``for_days``...) or a user-defined ``when:`` condition over any signal, attribute, health field or
calendar term (:mod:`tenure.conditions`). Either way it becomes one :class:`~tenure.conditions.
Condition`; a trigger fires once per *episode* (the condition starting to hold for ``for_days``
days in a row) and re-arms when the condition clears. ``cooldown_days`` keeps a trigger quiet on an
account for that long after it fired; ``suppress`` keeps accounts or segments quiet until a day.
Errors name file, line and field (:mod:`tenure.configfile`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from tenure.conditions import Condition, ConditionError, parse
from tenure.configfile import ConfigError, Reader, document, join, kind_of, suggest
from tenure.signals import catalog

SEVERITIES = ("low", "medium", "high", "critical")
DIRECTIONS = ("risk", "expansion", "renewal")
CALENDAR = ("month", "weekday", "day_of_month", "quarter", "days_to_quarter_end",
            "days_to_year_end")  # fmt: skip
HEALTH = ("health_score", "health_band_rank", "health_band_change_7d", "churn_probability")
ATTRIBUTES = ("segment", "industry", "region", "lifecycle_stage", "owner")
_NAME = re.compile(r"[a-z0-9_-]+\Z")
_TOP_KEYS = ("version", "description", "cooldown_days", "suppress", "triggers")
_TRIGGER_KEYS = ("name", "kind", "when", "for_days", "severity", "direction", "playbook",
                 "cooldown_days", "description", "threshold", "days", "ratio", "above")  # fmt: skip
_SUPPRESS_KEYS = ("account", "segment", "until", "reason")


class TriggerError(ConfigError):
    """A trigger file is wrong; ``str()`` is ``file:line: field: message``."""


def vocabulary() -> tuple[str, ...]:
    """Every name a condition may read."""
    return (*catalog().names(), *CALENDAR, *HEALTH, *ATTRIBUTES)


@dataclass(frozen=True)
class Kind:
    """A built-in trigger: its condition from parameters, their defaults, and what it is about."""

    name: str
    template: Callable[[dict[str, Any]], str]
    defaults: dict[str, Any]
    direction: str
    severity: str
    help: str


def _window(p: dict[str, Any]) -> str:
    """Renewal within ``days``; in a list of windows, only until the next narrower one begins
    (so an account 20 days out is in the 30-day window, not in all four)."""
    within = f"days_to_renewal <= {p['days']}"
    narrower = p.get("_narrower")
    return within if narrower is None else f"{within} and days_to_renewal > {narrower}"


def _kinds() -> dict[str, Kind]:
    silent = ("usage_trend_14d <= {threshold} and (open_tickets = 0 or open_tickets is missing) "
              "and (touchpoints_30d = 0 or touchpoints_30d is missing) "
              "and (ticket_spike <= 1 or ticket_spike is missing)")  # fmt: skip
    found = [
        Kind("usage_decline", lambda p: f"usage_trend_14d <= {p['threshold']}",
             {"threshold": -0.3, "for_days": 7}, "risk", "high",
             "Usage at or below `threshold` against the account's own baseline for `for_days` days."),
        Kind("ticket_spike", lambda p: f"ticket_spike >= {p['ratio']}", {"ratio": 2.0},
             "risk", "medium", "Tickets opened at `ratio` times the account's usual rate or more."),
        Kind("p1_open", lambda p: f"oldest_open_p1_days > {p['days']}", {"days": 3},
             "risk", "high", "A P1 ticket open longer than `days` days."),
        Kind("health_band_drop", lambda p: "health_band_change_7d < 0", {}, "risk", "medium",
             "The health band is worse than 7 days before (green to yellow, yellow to red)."),
        Kind("churn_probability", lambda p: f"churn_probability >= {p['above']}", {"above": 0.3},
             "risk", "high", "The newest logistic churn model's probability at or above `above`."),
        Kind("silent_churn", lambda p: silent.format(**p), {"threshold": -0.3}, "risk", "high",
             "Usage decay with no open ticket, ticket spike or touchpoint in 30 days."),
        Kind("renewal_window", _window, {"days": 90}, "renewal", "medium",
             "The next renewal is `days` days away or less (a list: one trigger per window, e.g. "
             "[120, 90, 60, 30], each holding until the next narrower window begins)."),
        Kind("nps_detractor", lambda p: "detractor = 1", {}, "risk", "medium",
             "The latest NPS answer is a detractor (6 or lower)."),
        Kind("payment_failure", lambda p: "failed_payments_7d > 0", {}, "risk", "high",
             "A payment failed in the last 7 days."),
        Kind("stalled_milestone", lambda p: f"days_behind_plan >= {p['days']}", {"days": 14},
             "risk", "medium", "An onboarding milestone `days` days or more behind plan."),
        Kind("seat_headroom", lambda p: f"seat_utilisation >= {p['above']}", {"above": 0.9},
             "expansion", "low", "Monthly active users at `above` of the paid seats or more."),
        Kind("champion_left", lambda p: f"days_since_champion_left <= {p['days']}", {"days": 14},
             "risk", "high", "A champion left in the last `days` days (a departure recorded "
             "late still alerts within that many days)."),
        Kind("sponsor_left", lambda p: f"days_since_sponsor_left <= {p['days']}", {"days": 14},
             "risk", "high", "An executive sponsor left in the last `days` days."),
        Kind("sponsor_left_before_renewal",
             lambda p: f"sponsor_left_to_renewal_days <= {p['days']}", {"days": 90},
             "risk", "critical", "An executive sponsor left `days` days or less before the next "
             "renewal (the departure and the renewal date together, however late it is seen)."),
    ]  # fmt: skip
    return {k.name: k for k in found}


KINDS = _kinds()


@dataclass(frozen=True)
class Trigger:
    """One trigger, ready to evaluate."""

    name: str
    kind: str  # a built-in kind, or "custom"
    condition: Condition
    for_days: int
    cooldown_days: int
    severity: str
    direction: str
    playbook: str | None
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "when": self.condition.text,
            "for_days": self.for_days, "cooldown_days": self.cooldown_days,
            "severity": self.severity, "direction": self.direction, "playbook": self.playbook,
            "description": self.description,
        }  # fmt: skip


@dataclass(frozen=True)
class Suppression:
    account: str | None
    segment: str | None
    until: date
    reason: str

    def covers(self, account: str, segment: str | None, day: date) -> bool:
        if day > self.until:
            return False
        return account == self.account or (segment is not None and segment == self.segment)


@dataclass(frozen=True)
class TriggerSet:
    """A validated trigger file."""

    version: str
    description: str
    triggers: tuple[Trigger, ...]
    suppress: tuple[Suppression, ...] = field(default=())
    origin: str = "<triggers>"
    digest: str = ""

    def names(self) -> set[str]:
        return {n for t in self.triggers for n in t.condition.names}

    def suppressed(self, account: str, segment: str | None, day: date) -> bool:
        return any(s.covers(account, segment, day) for s in self.suppress)


def load_triggers(path: Path) -> TriggerSet:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise TriggerError(str(path), 1, "(document)", f"cannot read the file ({err})") from None
    return parse_triggers(text, str(path))


@cache
def default_triggers() -> TriggerSet:
    """The shipped triggers (tenure/triggers/default.yaml, documented in docs/triggers.md)."""
    text = resources.files("tenure.triggers").joinpath("default.yaml").read_text("utf-8")
    return parse_triggers(text, "default.yaml")


def parse_triggers(text: str, origin: str = "<triggers>") -> TriggerSet:
    data, lines = document(text, origin, TriggerError)
    return _Reader(origin, lines).read(data, text)


class _Reader(Reader):
    error = TriggerError

    def __init__(self, origin: str, lines: dict[str, int]) -> None:
        super().__init__(origin, lines)
        self.vocabulary = vocabulary()

    def read(self, data: object, text: str) -> TriggerSet:
        root = self.table(data, "", _TOP_KEYS, ("version", "triggers"))
        if not isinstance(root["version"], int | str) or isinstance(root["version"], bool):
            raise self.fail(
                "version", f"a whole number or a version like '2.1', got {kind_of(root['version'])}"
            )
        version = str(root["version"])
        cooldown = self.whole(root.get("cooldown_days", 14), "cooldown_days")
        items = root["triggers"]
        if not isinstance(items, list) or not items:
            raise self.fail("triggers", f"a list of triggers, got {kind_of(items)}")
        triggers: list[Trigger] = []
        for i, item in enumerate(items):
            made = self.trigger(item, f"triggers[{i}]", cooldown)
            self.unique(triggers, made, f"triggers[{i}].name")
            triggers += made
        listed = root.get("suppress") or []
        if not isinstance(listed, list):
            raise self.fail("suppress", f"a list of accounts or segments, got {kind_of(listed)}")
        suppress = tuple(self.suppression(s, f"suppress[{i}]") for i, s in enumerate(listed))
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return TriggerSet(version, str(root.get("description") or ""), tuple(triggers),
                          suppress, self.origin, digest)  # fmt: skip

    def unique(self, earlier: list[Trigger], made: list[Trigger], path: str) -> None:
        seen = {t.name for t in earlier}
        for t in made:
            if t.name in seen:
                raise self.fail(path, f"{t.name!r} is given twice")

    def trigger(self, item: object, path: str, cooldown: int) -> list[Trigger]:
        table = self.table(item, path, _TRIGGER_KEYS, ("name",))
        name = self.name(table["name"], join(path, "name"))
        if ("kind" in table) == ("when" in table):
            raise self.fail(
                path, "give exactly one of kind (a built-in trigger) or when (a condition)"
            )
        kind = KINDS.get(str(table.get("kind"))) if "kind" in table else None
        if "kind" in table and kind is None:
            raise self.fail(
                join(path, "kind"),
                f"unknown kind {table['kind']!r}{suggest(str(table['kind']), KINDS)}",
            )
        params = {
            **(kind.defaults if kind else {}),
            **{
                k: v
                for k, v in table.items()
                if k in ("threshold", "days", "ratio", "above", "for_days")
            },
        }
        windows = params.get("days") if isinstance(params.get("days"), list) else None
        base = {
            "for_days": self.whole(params.get("for_days", 1), join(path, "for_days"), minimum=1),
            "cooldown_days": self.whole(table.get("cooldown_days", cooldown), join(path, "cooldown_days")),
            "severity": self.choice(table.get("severity", kind.severity if kind else "medium"), join(path, "severity"), SEVERITIES),
            "direction": self.choice(table.get("direction", kind.direction if kind else "risk"), join(path, "direction"), DIRECTIONS),
            "playbook": None if table.get("playbook") is None else self.name(table["playbook"], join(path, "playbook")),
            "description": str(table.get("description") or (kind.help if kind else "")),
        }  # fmt: skip
        if windows is not None:
            if not windows or not _number(windows):
                raise self.fail(join(path, "days"), f"a list of days, got {kind_of(windows)}")
            ordered = sorted(windows, reverse=True)
            bands = [(d, ordered[i + 1] if i + 1 < len(ordered) else None)
                     for i, d in enumerate(ordered)]  # fmt: skip
            return [self.built(f"{name}-{d}", kind, {**params, "days": d, "_narrower": nxt}, path, base)
                    for d, nxt in bands]  # fmt: skip
        return [self.built(name, kind, params, path, base, table.get("when"))]

    def built(
        self, name: str, kind: Kind | None, params: dict[str, Any], path: str,
        base: dict[str, Any], when: object = None,
    ) -> Trigger:  # fmt: skip
        for key in ("threshold", "ratio", "above", "days"):
            if key in params and not _number(params[key]):
                raise self.fail(join(path, key), f"a number, got {kind_of(params[key])}")
        text = kind.template(params) if kind else when
        where = join(path, "when" if kind is None else "kind")
        if not isinstance(text, str) or not text.strip():
            raise self.fail(where, f"a condition, got {kind_of(text)}")
        try:
            condition = parse(text, self.vocabulary, ATTRIBUTES)
        except ConditionError as err:
            raise self.fail(where, str(err)) from None
        return Trigger(name, kind.name if kind else "custom", condition, **base)

    def suppression(self, item: object, path: str) -> Suppression:
        table = self.table(item, path, _SUPPRESS_KEYS, ("until",))
        if "account" not in table and "segment" not in table:
            raise self.fail(path, "say which account or segment to keep quiet")
        until = table["until"]
        if not isinstance(until, date) or isinstance(until, datetime):
            raise self.fail(join(path, "until"), f"a date (YYYY-MM-DD), got {kind_of(until)}")
        return Suppression(
            None if table.get("account") is None else str(table["account"]),
            None if table.get("segment") is None else str(table["segment"]),
            until, str(table.get("reason") or ""),
        )  # fmt: skip

    def name(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            raise self.fail(path, f"lower-case letters, digits, - and _, got {kind_of(value)}")
        return value

    def whole(self, value: object, path: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(path, f"a whole number of at least {minimum}, got {kind_of(value)}")
        return value

    def choice(self, value: object, path: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.fail(path, f"one of {', '.join(choices)}, got {kind_of(value)}")
        return str(value)


def _number(value: object) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_number(v) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool)
