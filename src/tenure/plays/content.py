"""Step content: Jinja2 templates rendered in a sandbox from the account's context.

Templates run in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` with
:class:`jinja2.StrictUndefined`: a template cannot reach Python internals (``{{ ''.__class__ }}``
is refused), cannot change the data it reads (``{{ contacts.clear() }}`` is refused, and each
render reads its own deep copy of the context, so one step cannot change what the next one sees),
and a name or key that does not exist is an error, never an empty string in an email. Arithmetic
is bounded (:class:`Sandbox`): ``**`` and ``*`` on whole numbers may not build a number of more
than :data:`MAX_INT_BITS` bits, and ``*`` and ``+`` may not build a string or list longer than
:data:`MAX_LENGTH`, so ``{{ 10**10**8 }}`` or ``{{ 'x' * 10**10 }}`` is an error, not a hung
run. On load each template is parsed, its names checked against :data:`NAMES`, and rendered
against two sample contexts (one with every person and fact present, one without the step's
contact, the alert and the renewal), so a typo or an unguarded ``contact.name`` fails at
``tenure playbooks check`` with the file and line, not in front of a customer.

The sandbox is not a time limit: playbook files are configuration, reviewed like code.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeGuard

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tenure.configfile import suggest

NAMES = ("account", "contact", "contacts", "renewal", "open_tickets", "touchpoints", "health",
         "signals", "why", "step", "playbook", "day")  # fmt: skip
_FAILURES = (TemplateError, TypeError, ValueError, ArithmeticError, LookupError, RecursionError)
MAX_INT_BITS = 1_024  # the largest whole number ``**`` or ``*`` may build (about 308 digits)
MAX_LENGTH = 100_000  # the longest string or list ``*`` or ``+`` may build


class ContentError(ValueError):
    """A template that cannot be read or rendered; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def money(value: object) -> str:
    """``21120.0`` as ``21,120`` (``n/a`` when missing)."""
    return f"{value:,.0f}" if isinstance(value, int | float) and value == value else "n/a"


def pct(value: object) -> str:
    """``-0.34`` as ``-34%`` (``n/a`` when missing)."""
    return f"{value:.0%}" if isinstance(value, int | float) and value == value else "n/a"


def signed(value: object) -> str:
    """A change: ``-0.34`` as ``-34%``, ``0.17`` as ``+17%`` (``n/a`` when missing)."""
    return f"{value:+.0%}" if isinstance(value, int | float) and value == value else "n/a"


class Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with bounded ``**``, ``*`` and ``+`` (SecurityError beyond them)."""

    intercepted_binops = frozenset({"**", "*", "+"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _bound_power(left, right)
        elif operator == "*":
            _bound_product(left, right)
        else:
            _bound_sum(left, right)
        return super().call_binop(context, operator, left, right)


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _bound_power(base: object, exponent: object) -> None:
    if not (_whole(base) and _whole(exponent)):
        return  # a float overflows (OverflowError) instead of growing
    if exponent > 1 and abs(base) > 1 and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
        raise SecurityError(f"a power with exponent {exponent} is too large (more than "
                            f"{MAX_INT_BITS} bits)")  # fmt: skip


def _bound_product(left: object, right: object) -> None:
    if _whole(left) and _whole(right):
        if abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS + 1:
            raise SecurityError(f"a product of more than {MAX_INT_BITS} bits is too large")
        return
    for times, sequence in ((left, right), (right, left)):
        if _whole(times) and isinstance(sequence, str | list | tuple):
            _bound_length(len(sequence) * times, f"repeating {len(sequence)} items {times} times")


def _bound_sum(left: object, right: object) -> None:
    sized = (str, list, tuple)
    if isinstance(left, sized) and isinstance(right, sized):
        _bound_length(len(left) + len(right), f"joining {len(left)} and {len(right)} items")


def _bound_length(length: int, what: str) -> None:
    if length > MAX_LENGTH:
        raise SecurityError(f"{what} is longer than {MAX_LENGTH:,}")


@cache
def environment() -> Sandbox:
    env = Sandbox(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = money
    env.filters["pct"] = pct
    env.filters["signed"] = signed
    return env


@cache
def _compiled(text: str) -> Template:
    env = environment()
    try:
        tree = env.parse(text)
    except TemplateSyntaxError as err:
        raise ContentError(f"template line {err.lineno}: {err.message}") from None
    unknown = sorted(meta.find_undeclared_variables(tree) - set(NAMES))
    if unknown:
        raise ContentError(
            f"unknown name {unknown[0]!r} in the template{suggest(unknown[0], NAMES)}"
        )
    return env.from_string(text)


def render(text: str, context: Mapping[str, Any]) -> str:
    """``text`` rendered against a deep copy of ``context``; ContentError says what is undefined
    or unsafe."""
    template = _compiled(text)
    try:
        return template.render(copy.deepcopy(dict(context))).strip()
    except _FAILURES as err:
        message = getattr(err, "message", None) or str(err)
        raise ContentError(f"{type(err).__name__}: {message}") from None


def check_template(text: str, persona: str | None) -> None:
    """Parse ``text`` and render it against both sample contexts (ContentError if it fails)."""
    _compiled(text)
    for full in (True, False):
        try:
            render(text, sample_context(persona, full))
        except ContentError as err:
            when = "" if full else ("when contact, why or renewal.next_renewal is none (no "
                                    "active contact of the persona, started by hand, no renewal "
                                    "ahead): ")  # fmt: skip
            raise ContentError(when + err.message) from None


def sample_context(persona: str | None, full: bool = True) -> dict[str, Any]:
    """A made-up account in the shape of a real context (:func:`tenure.plays.running.context`)."""
    from tenure.triggers.definitions import vocabulary

    person = {"contact_id": "con-1", "name": "Avery Quinn", "email": "avery@example.com",
              "title": "Head of Operations", "persona": persona or "champion"}  # fmt: skip
    text_names = ("segment", "industry", "region", "lifecycle_stage", "owner")
    signals: dict[str, Any] = {n: ("text" if n in text_names else 1) for n in vocabulary()}
    return {
        "account": {"account_id": "acct-1", "name": "Example Co", "segment": "enterprise",
                    "industry": "software", "region": "emea", "lifecycle_stage": "mature",
                    "owner": "Sam CSM"},
        "contact": person if full and persona else None,
        "contacts": {persona or "champion": [person]} if full else {},
        "renewal": {"arr_in_force": 120000.0,
                    "next_renewal": "2026-06-30" if full else None,
                    "days_to_renewal": 90 if full else None},
        "open_tickets": [{"ticket_id": "t-1", "priority": "p2", "status": "open",
                          "opened_at": "2026-03-01T09:00:00", "subject": "Export fails"}] if full
        else [],
        "touchpoints": [{"type": "call", "occurred_at": "2026-02-20T10:00:00",
                         "owner": "Sam CSM", "summary": "Check-in"}] if full else [],
        "health": {"score": 64.0, "band": "yellow"},
        "signals": signals,
        "why": {"trigger": "usage-decline", "when": "usage_trend_14d <= -0.3",
                "values": {"usage_trend_14d": -0.4}, "day": "2026-03-01",
                "severity": "high"} if full else None,
        "step": {"name": "step", "day": 0, "channel": "email", "owner_role": "csm",
                 "owner": "Sam CSM", "persona": persona, "due_day": "2026-03-01"},
        "playbook": {"name": "playbook", "kind": "risk", "version": "1", "description": ""},
        "day": "2026-03-01",
    }  # fmt: skip
