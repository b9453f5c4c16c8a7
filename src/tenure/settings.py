"""Settings: one declaration each, with its default and help; read from the environment on request.

Nothing here runs at import time. The composition root (:mod:`tenure.app`) calls :func:`load`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tenure.identity import DEFAULT_THRESHOLD


@dataclass(frozen=True)
class Setting:
    """One setting: environment variable, default and help (the docs are checked against these)."""

    env: str
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "TENURE_DATABASE_URL",
        "sqlite:///tenure.db",
        "Where the account record is stored: a SQLAlchemy URL. The default is a SQLite file in the "
        "current directory; use postgresql+psycopg://user:pass@host/db for a team server.",
    ),
    Setting(
        "TENURE_TRACEBACK",
        "0",
        "Set to 1 to see the full stack trace of an internal error (a bug) instead of one line, "
        "for a bug report. Errors in your input are always one clear line.",
    ),
    Setting(
        "TENURE_MATCH_THRESHOLD",
        str(DEFAULT_THRESHOLD),
        "Lowest confidence (0 to 1) at which a contact or event is matched to an account by fuzzy "
        "company name; below it the record waits in the review list (`tenure matches`).",
    ),
    Setting(
        "TENURE_TRIGGERS",
        "",
        "A trigger file (YAML, see docs/triggers.md) evaluated on every import and by `tenure "
        "triggers run`; empty means the shipped default triggers.",
    ),
    Setting(
        "TENURE_ROUTES",
        "",
        "A routing file (YAML, see docs/routing.md): where alerts, digests and automated play steps "
        "are sent (Slack, email, signed webhooks) by owner, segment and severity; empty means the "
        "in-app inbox only.",
    ),
    Setting(
        "TENURE_PLAYBOOKS",
        "",
        "A directory of playbook files (YAML, see docs/playbooks.md) to use instead of the shipped "
        "default playbooks.",
    ),
)


@dataclass(frozen=True)
class Settings:
    """The settings in force for one run."""

    database_url: str = "sqlite:///tenure.db"
    match_threshold: float = DEFAULT_THRESHOLD
    triggers: str = ""  # a trigger file; empty: the shipped default triggers
    routes: str = ""  # a routing file; empty: the in-app inbox only
    playbooks: str = ""  # a directory of playbook files; empty: the shipped defaults


def load(environ: Mapping[str, str] | None = None, **overrides: str | None) -> Settings:
    """Settings from ``environ`` (default: the process environment), then non-None overrides."""
    env = os.environ if environ is None else environ
    values = {s.env: env.get(s.env, s.default) for s in SETTINGS}
    for key, value in overrides.items():
        if value is not None:
            values[f"TENURE_{key.upper()}"] = value
    return Settings(
        database_url=values["TENURE_DATABASE_URL"],
        match_threshold=_fraction("TENURE_MATCH_THRESHOLD", values["TENURE_MATCH_THRESHOLD"]),
        triggers=values["TENURE_TRIGGERS"],
        routes=values["TENURE_ROUTES"],
        playbooks=values["TENURE_PLAYBOOKS"],
    )


def _fraction(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {text!r}")
    return value
