"""Playbooks as code: one YAML file per playbook, validated on load.

A playbook is a sequence of steps, each with a day offset from the play's start, a channel, an
owner role, an optional target persona, a title and content (sandboxed Jinja2 templates,
:mod:`tenure.plays.content`) and an optional branch condition; a playbook also says what ends a
play early (``exit_when``), what counts as success (``success_when``) and how long a play may
run (``max_days``). Conditions use the trigger language and vocabulary
(:mod:`tenure.conditions`, :func:`tenure.triggers.definitions.vocabulary`). Errors name file,
line and field (:mod:`tenure.configfile`). A directory of playbooks may hold ``roles.yaml``: who
fills the account-manager and executive roles.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from tenure.conditions import Condition, ConditionError, parse
from tenure.configfile import ConfigError, Reader, document, join, kind_of, suggest
from tenure.plays.content import ContentError, check_template
from tenure.record.schema import PERSONAS
from tenure.triggers.definitions import ATTRIBUTES, TriggerSet, vocabulary

KINDS = ("onboarding", "renewal", "adoption", "expansion", "advocacy", "risk", "stakeholder")
CHANNELS = ("email", "call", "meeting", "slack", "in_app", "letter")
AUTOMATABLE = ("email", "slack", "in_app")  # the channels a step can carry out by itself
OWNER_ROLES = ("csm", "account_manager", "executive")
ROLES_FILE = "roles.yaml"
DEFAULT_GRACE_DAYS = 30  # max_days, when not given: the last step's day plus this
MAX_DAYS = 3_650  # the latest a step may come, and the longest a play may run (ten years)
NAME_WIDTH = 200  # the longest owner name roles.yaml may give (the tasks.owner column)
_NAME = re.compile(r"[a-z0-9_-]{1,100}\Z")
_TOP_KEYS = ("name", "version", "description", "kind", "start_when", "exit_when",
             "success_when", "max_days", "steps")  # fmt: skip
_STEP_KEYS = ("name", "day", "channel", "owner_role", "persona", "title", "content", "when",
              "automated")  # fmt: skip
_ROLE_KEYS = ("default", "segments", "owners")


class PlaybookError(ConfigError):
    """A playbook file is wrong; ``str()`` is ``file:line: field: message``."""


@dataclass(frozen=True)
class Step:
    """One step of a playbook: a task (human) or a send (automated) on a day of the play."""

    name: str
    day: int
    channel: str
    owner_role: str
    persona: str | None
    title: str  # a template
    content: str  # a template
    when: Condition | None
    automated: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "day": self.day, "channel": self.channel,
                "owner_role": self.owner_role, "persona": self.persona, "title": self.title,
                "content": self.content, "when": self.when.text if self.when else None,
                "automated": self.automated}  # fmt: skip


@dataclass(frozen=True)
class Playbook:
    """One validated playbook."""

    name: str
    version: str
    description: str
    kind: str
    start_when: tuple[str, ...]
    exit_when: Condition | None
    success_when: Condition | None
    max_days: int
    steps: tuple[Step, ...]
    origin: str = "<playbook>"
    digest: str = ""

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    def names(self) -> set[str]:
        """Every name its conditions read."""
        conditions = [self.exit_when, self.success_when, *(s.when for s in self.steps)]
        return {n for c in conditions if c is not None for n in c.names}

    def started_by(self, trigger: str) -> bool:
        """Whether ``start_when`` names ``trigger`` (a windowed trigger by its family name too:
        ``renewal-window`` covers ``renewal-window-90``)."""
        return any(trigger == t or re.fullmatch(re.escape(t) + r"-\d+", trigger)
                   for t in self.start_when)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "description": self.description,
                "kind": self.kind, "start_when": list(self.start_when),
                "exit_when": self.exit_when.text if self.exit_when else None,
                "success_when": self.success_when.text if self.success_when else None,
                "max_days": self.max_days, "steps": [s.to_dict() for s in self.steps],
                "file": self.origin, "digest": self.digest}  # fmt: skip


@dataclass(frozen=True)
class Role:
    """Who fills a role: by the account's owner (its CSM), else by segment, else a default."""

    default: str | None = None
    segments: Mapping[str, str] = field(default_factory=dict)
    owners: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Roles:
    """Owner of each role on an account: ``csm`` is always the account's owner."""

    roles: Mapping[str, Role] = field(default_factory=dict)

    def owner(self, role: str, account: Mapping[str, Any]) -> str | None:
        csm = account.get("owner")
        if role == "csm":
            return None if csm is None else str(csm)
        found = self.roles.get(role)
        if found is None:
            return None
        if csm is not None and str(csm) in found.owners:
            return found.owners[str(csm)]
        segment = account.get("segment")
        if segment is not None and str(segment) in found.segments:
            return found.segments[str(segment)]
        return found.default

    def to_dict(self) -> dict[str, Any]:
        return {name: {"default": r.default, "segments": dict(r.segments),
                       "owners": dict(r.owners)} for name, r in self.roles.items()}  # fmt: skip


@dataclass(frozen=True)
class PlaybookSet:
    """The playbooks in force (a directory of files, or the shipped defaults)."""

    playbooks: tuple[Playbook, ...]
    roles: Roles = field(default_factory=Roles)
    origin: str = "<playbooks>"

    def get(self, name: str) -> Playbook | None:
        return next((p for p in self.playbooks if p.name == name), None)

    def names(self) -> set[str]:
        """Every name the playbooks' conditions read."""
        return {n for p in self.playbooks for n in p.names()}

    def for_alert(self, trigger: str, playbook: str | None) -> list[str]:
        """The playbooks an alert starts: the one its trigger names, and those whose
        ``start_when`` lists the trigger."""
        found = [playbook] if playbook else []
        return found + [
            p.name for p in self.playbooks if p.started_by(trigger) and p.name not in found
        ]


def load_playbooks(directory: Path) -> PlaybookSet:
    """Every ``*.yaml`` / ``*.yml`` file in ``directory`` (``roles.yaml``: the roles)."""
    folder = Path(directory)
    if not folder.is_dir():
        raise PlaybookError(str(folder), 1, "(document)", "not a directory of playbook files")
    return _load_all(folder, str(folder))


@cache
def default_playbooks() -> PlaybookSet:
    """The shipped playbooks (tenure/plays/defaults/*.yaml, documented in docs/playbooks.md)."""
    return _load_all(resources.files("tenure.plays").joinpath("defaults"), "defaults")


def playbooks_in_force(setting: str) -> PlaybookSet:
    """The directory named by the TENURE_PLAYBOOKS setting, or the shipped defaults."""
    return load_playbooks(Path(setting)) if setting else default_playbooks()


def _load_all(folder: Traversable, origin: str) -> PlaybookSet:
    files = sorted((f for f in folder.iterdir() if f.name.endswith((".yaml", ".yml"))),
                   key=lambda f: f.name)  # fmt: skip
    roles = Roles()
    found: list[Playbook] = []
    for file in files:
        where = str(Path(origin) / file.name) if origin != "defaults" else file.name
        text = _read(file, where)
        if file.name == ROLES_FILE:
            roles = parse_roles(text, where)
            continue
        made = parse_playbook(text, where)
        twin = next((p for p in found if p.name == made.name), None)
        if twin is not None:
            raise PlaybookError(where, 1, "name",
                                f"{made.name!r} is also the name of {twin.origin}")  # fmt: skip
        found.append(made)
    if not found:
        raise PlaybookError(origin, 1, "(document)", "no playbook files (*.yaml) here")
    return PlaybookSet(tuple(found), roles, origin)


def _read(file: Traversable, where: str) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PlaybookError(where, 1, "(document)", f"cannot read the file ({err})") from None


def parse_playbook(text: str, origin: str = "<playbook>") -> Playbook:
    data, lines = document(text, origin, PlaybookError)
    return _Reader(origin, lines).playbook(data, text)


def parse_roles(text: str, origin: str = ROLES_FILE) -> Roles:
    data, lines = document(text, origin, PlaybookError)
    return _Reader(origin, lines).roles(data)


class _Reader(Reader):
    error = PlaybookError

    def __init__(self, origin: str, lines: dict[str, int]) -> None:
        super().__init__(origin, lines)
        self.vocabulary = vocabulary()

    def playbook(self, data: object, text: str) -> Playbook:
        root = self.table(data, "", _TOP_KEYS, ("name", "version", "kind", "steps"))
        name = self.name(root["name"], "name")
        version = root["version"]
        if not isinstance(version, int | str) or isinstance(version, bool):
            raise self.fail(
                "version", f"a whole number or a version like '2.1', got {kind_of(version)}"
            )
        kind = self.choice(root["kind"], "kind", KINDS)
        starts = root.get("start_when") or []
        if isinstance(starts, str):
            starts = [starts]
        if not isinstance(starts, list):
            raise self.fail("start_when", f"a list of trigger names, got {kind_of(starts)}")
        start_when = tuple(self.name(t, f"start_when[{i}]") for i, t in enumerate(starts))
        items = root["steps"]
        if not isinstance(items, list) or not items:
            raise self.fail("steps", f"a list of steps, got {kind_of(items)}")
        steps: list[Step] = []
        for i, item in enumerate(items):
            step = self.step(item, f"steps[{i}]")
            if any(s.name == step.name for s in steps):
                raise self.fail(f"steps[{i}].name", f"{step.name!r} is given twice")
            steps.append(step)
        last = max(s.day for s in steps)
        max_days = self.whole(root.get("max_days", min(last + DEFAULT_GRACE_DAYS, MAX_DAYS)),
                              "max_days", 1, MAX_DAYS)  # fmt: skip
        if max_days < last:
            late = next(s for s in steps if s.day == last)
            raise self.fail("max_days", f"{max_days} ends the play before step {late.name!r} "
                                        f"(day {last})")  # fmt: skip
        return Playbook(
            name, str(version), str(root.get("description") or "").strip(), kind, start_when,
            self.condition(root.get("exit_when"), "exit_when"),
            self.condition(root.get("success_when"), "success_when"), max_days,
            tuple(sorted(steps, key=lambda s: s.day)), self.origin,
            hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )  # fmt: skip

    def step(self, item: object, path: str) -> Step:
        table = self.table(item, path, _STEP_KEYS, ("name", "day", "channel", "title", "content"))
        name = self.name(table["name"], join(path, "name"))
        day = self.whole(table["day"], join(path, "day"), 0, MAX_DAYS)
        channel = self.choice(table["channel"], join(path, "channel"), CHANNELS)
        role = self.choice(table.get("owner_role", "csm"), join(path, "owner_role"), OWNER_ROLES)
        persona = table.get("persona")
        if persona is not None and persona not in PERSONAS:
            raise self.fail(join(path, "persona"),
                            f"unknown persona {persona!r}{suggest(str(persona), PERSONAS)}")  # fmt: skip
        automated = table.get("automated", channel in AUTOMATABLE)
        if not isinstance(automated, bool):
            raise self.fail(join(path, "automated"), f"true or false, got {kind_of(automated)}")
        if automated and channel not in AUTOMATABLE:
            raise self.fail(join(path, "automated"), f"a {channel} step cannot carry itself out "
                            f"(automated steps: {', '.join(AUTOMATABLE)})")  # fmt: skip
        step = Step(name, day, channel, role, None if persona is None else str(persona),
                    self.text(table["title"], join(path, "title")),
                    self.text(table["content"], join(path, "content")),
                    self.condition(table.get("when"), join(path, "when")), automated)  # fmt: skip
        for key in ("title", "content"):
            try:
                check_template(getattr(step, key), step.persona)
            except ContentError as err:
                raise self.fail(join(path, key), err.message) from None
        return step

    def condition(self, value: object, path: str) -> Condition | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"a condition, got {kind_of(value)}")
        try:
            return parse(value.strip(), self.vocabulary, ATTRIBUTES)
        except ConditionError as err:
            raise self.fail(path, str(err)) from None

    def roles(self, data: object) -> Roles:
        if data is None:
            return Roles()
        known = [r for r in OWNER_ROLES if r != "csm"]
        if isinstance(data, dict) and "csm" in data:
            raise self.fail("csm", "the csm is always the account's owner; give "
                                   f"{' or '.join(known)}")  # fmt: skip
        root = self.table(data, "", known, ())
        found = {}
        for name, value in root.items():
            table = self.table(value, name, _ROLE_KEYS, ())
            default = table.get("default")
            if default is not None:
                default = self.owner(default, join(name, "default"))
            found[name] = Role(default, self.names(table.get("segments"), join(name, "segments")),
                               self.names(table.get("owners"), join(name, "owners")))  # fmt: skip
        return Roles(found)

    def names(self, value: object, path: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"a mapping of names, got {kind_of(value)}")
        return {str(k): self.owner(who, join(path, str(k))) for k, who in value.items()}

    def owner(self, value: object, path: str) -> str:
        """A person's name, as a task's owner (at most :data:`NAME_WIDTH` characters)."""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"a name, got {kind_of(value)}")
        if len(value.strip()) > NAME_WIDTH:
            raise self.fail(path, f"a name of up to {NAME_WIDTH} characters, got "
                                  f"{len(value.strip())}")  # fmt: skip
        return value.strip()

    def name(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            raise self.fail(path, "up to 100 lower-case letters, digits, - and _, got "
                                  f"{kind_of(value)}")  # fmt: skip
        return value

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"some text, got {kind_of(value)}")
        return value.strip()

    def whole(self, value: object, path: str, minimum: int = 0, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(path, f"a whole number of at least {minimum}, got {kind_of(value)}")
        if maximum is not None and value > maximum:
            raise self.fail(path, f"a whole number of at most {maximum}, got {value}")
        return value

    def choice(self, value: object, path: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            hint = suggest(str(value), choices, listed=False) if isinstance(value, str) else ""
            raise self.fail(path, f"one of {', '.join(choices)}, got {kind_of(value)}{hint}")
        return str(value)


def cross_check(found: PlaybookSet, triggers: TriggerSet) -> list[str]:
    """Where the playbooks and the triggers in force disagree (warnings, not errors: either
    file may be ahead of the other): a trigger naming a playbook not in force, a ``start_when``
    naming no trigger."""
    warnings = [f"trigger {t.name} names playbook {t.playbook!r}, which is not in force"
                for t in triggers.triggers if t.playbook and found.get(t.playbook) is None]  # fmt: skip
    names = [t.name for t in triggers.triggers]
    for book in found.playbooks:
        for wanted in book.start_when:
            probe = replace(book, start_when=(wanted,))
            if not any(probe.started_by(n) for n in names):
                warnings.append(f"{book.origin}: start_when names {wanted!r}, which no trigger "
                                f"in force ({triggers.origin}) is called")  # fmt: skip
    return warnings


def triggering(found: PlaybookSet, triggers: TriggerSet) -> dict[str, list[str]]:
    """Playbook -> the triggers in force that start it."""
    return {
        book.name: [t.name for t in triggers.triggers
                    if book.name in found.for_alert(t.name, t.playbook)]
        for book in found.playbooks
    }  # fmt: skip
