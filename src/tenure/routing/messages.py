"""What a delivery says: one :class:`Message` per payload, rendered as plain text, HTML or Slack.

A delivery's payload (stored with it, JSON) is one of three types: ``alert`` (the alert with its
pre-assembled context), ``digest`` (an owner's open alerts by severity) and ``task`` (an automated
play step: its title and content go out as written).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tenure.triggers.definitions import SEVERITIES

SLACK_TEXT = 2900  # Slack refuses section text over 3000 characters
MOST_SEVERE_FIRST = tuple(reversed(SEVERITIES))


@dataclass(frozen=True)
class Message:
    """A subject, a few lines under it, and headed sections of lines."""

    subject: str
    intro: list[str] = field(default_factory=list)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:  # a subject is one line, whatever the data says
        object.__setattr__(self, "subject", one_line(self.subject))


def one_line(text: str) -> str:
    """``text`` on one line: every line break (CR, LF and the other Unicode ones) becomes a
    space, so a value from the data cannot end an email header or start another."""
    return " ".join(text.splitlines())


def header_value(text: str) -> str:
    """A value fit for an email header (Subject, From, To): on one line."""
    return one_line(text)


def message(payload: Mapping[str, Any]) -> Message:
    """The message a payload says."""
    kind = payload.get("type")
    if kind == "alert":
        return alert_message(payload["alert"])
    if kind == "digest":
        return digest_message(payload)
    if kind == "task":
        return task_message(payload)
    raise ValueError(f"unknown payload type {kind!r}")


def alert_message(alert: Mapping[str, Any]) -> Message:
    """``[high] usage-decline on Acme Corp``, with why, health, renewal, contacts, tickets and
    touchpoints from the alert's context."""
    c = alert.get("context") or {}
    account, why, renewal = c.get("account") or {}, c.get("why") or {}, c.get("renewal") or {}
    name = account.get("name") or alert["account_id"]
    about = f": {why['description']}" if why.get("description") else ""
    intro = [f"{name} ({alert['account_id']}): segment {account.get('segment') or '-'}, owner "
             f"{account.get('owner') or '-'}.",
             f"Trigger {alert['trigger']} ({alert['severity']}, {alert['direction']}) raised "
             f"{alert['day']}{about}",
             f"Why: {why.get('when') or alert['trigger']} ({values_text(alert.get('values'))})"]  # fmt: skip
    if why.get("score"):
        intro.append(f"Health: {why['score']['text']}")
    if renewal:
        intro.append(f"Renewal: {renewal.get('next_renewal') or 'none ahead'}; ARR in force "
                     f"{renewal.get('arr_in_force', 0):,.0f}")  # fmt: skip
    intro.append(f"Suggested playbook: {alert.get('playbook') or '-'}")
    sections = [(h, lines) for h, lines in (
        ("Key contacts", [_contact(p) for p in c.get("contacts") or []]),
        ("Open tickets", [f"{t['ticket_id']} {t.get('priority') or ''}: {t.get('subject') or ''}"
                          for t in c.get("open_tickets") or []]),
        ("Recent touchpoints", [f"{str(t.get('occurred_at'))[:10]} {t.get('type')}: "
                                f"{t.get('summary') or ''}" for t in c.get("touchpoints") or []]),
    ) if lines]  # fmt: skip
    return Message(f"[{alert['severity']}] {alert['trigger']} on {name}", intro, sections)


def digest_message(payload: Mapping[str, Any]) -> Message:
    """An owner's open alerts raised from ``since`` to ``day``, most severe first, with counts."""
    counts: Mapping[str, int] = payload["counts"]
    tally = ", ".join(f"{counts[s]} {s}" for s in MOST_SEVERE_FIRST if counts.get(s))
    period = (payload["day"] if payload["since"] == payload["day"]
              else f"{payload['since']} to {payload['day']}")  # fmt: skip
    intro = [f"{payload['total']} open alerts on {payload['owner']}'s accounts, raised {period}: "
             f"{tally}."]  # fmt: skip
    sections = [(f"{s} ({counts[s]})", [_summary(a) for a in payload["alerts"][s]])
                for s in MOST_SEVERE_FIRST if payload["alerts"].get(s)]  # fmt: skip
    subject = f"Tenure digest for {payload['owner']}, {payload['day']}: {tally}"
    return Message(subject, intro, sections)


def task_message(payload: Mapping[str, Any]) -> Message:
    """A play step: its title as the subject and its content as written."""
    task = payload["task"]
    return Message(str(task["title"]), str(task.get("content") or "").splitlines())


def values_text(values: Mapping[str, Any] | None) -> str:
    """``usage_trend_14d -0.42, seats 40``."""
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in (values or {}).items())  # fmt: skip


def _contact(person: Mapping[str, Any]) -> str:
    title = f", {person['title']}" if person.get("title") else ""
    return (f"{person.get('persona') or '-'}: {person.get('name')} <{person.get('email')}>"
            f"{title} ({person.get('status') or '-'})")  # fmt: skip


def _summary(alert: Mapping[str, Any]) -> str:
    playbook = f"; playbook {alert['playbook']}" if alert.get("playbook") else ""
    return (f"{alert.get('account_name') or alert['account_id']} ({alert['account_id']}): "
            f"{alert['trigger']} on {alert['day']}, {values_text(alert.get('values'))}{playbook}")  # fmt: skip


def plain_text(m: Message) -> str:
    """The message as plain text (an email's body)."""
    lines = [*m.intro]
    for heading, items in m.sections:
        lines += ["", f"{heading}:", *(f"  {i}" for i in items)]
    return "\n".join(lines) + "\n"


def html_text(m: Message) -> str:
    """The message as simple HTML (an email's alternative body)."""
    parts = [f"<p>{html.escape(line)}</p>" for line in m.intro]
    for heading, items in m.sections:
        parts.append(f"<h3>{html.escape(heading)}</h3>")
        parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
    return f"<html><body><h2>{html.escape(m.subject)}</h2>{''.join(parts)}</body></html>"


def slack_blocks(m: Message, mentions: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """The message for Slack: the fallback text and Block Kit blocks (mentions up front)."""
    lead = " ".join(mentions)
    text = f"{lead} {_escape(m.subject)}".strip()  # only the mentions are Slack syntax
    blocks: list[dict[str, Any]] = [_section(f"{lead} *{_escape(m.subject)}*".strip()),
                                    _section("\n".join(_escape(i) for i in m.intro))]  # fmt: skip
    for heading, items in m.sections:
        body = "\n".join(f"• {_escape(i)}" for i in items)
        blocks.append(_section(f"*{_escape(heading)}*\n{body}"))
    return text, [b for b in blocks if b["text"]["text"]]


def _section(text: str) -> dict[str, Any]:
    clipped = text if len(text) <= SLACK_TEXT else text[: SLACK_TEXT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": clipped}}


def _escape(text: str) -> str:
    """Slack's three control characters (so ``<jane@...>`` is shown, not read as a link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
