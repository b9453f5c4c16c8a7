"""The three transports: Slack incoming webhooks, email (SMTP) and signed webhooks.

Each sender returns None when the message was accepted, :class:`Accepted` when it was accepted
with a note (an email some of whose recipients the server refused: the others have it, so it is
not sent again), and a one-line reason when it was not; a network failure, a refusal or a timeout
is a reason, never an exception (the caller retries). Whatever else a sender raises (a bug, a
value no transport takes) :func:`tenure.routing.deliver.attempt` records as a failed attempt.

Signed webhooks POST the delivery as JSON (``Content-Type: application/json``) with headers:

``X-Tenure-Timestamp``
    Unix seconds when the request was signed.
``X-Tenure-Signature``
    ``sha256=`` and the hex HMAC-SHA256, keyed with the channel's secret, of the timestamp, a
    dot and the exact request body: ``f"{timestamp}.{body}"``.
``X-Tenure-Delivery``
    The delivery id: the same on every retry of one delivery, so a receiver can ignore repeats.

A receiver recomputes the signature over the raw body and rejects the request when it differs or
the timestamp is more than five minutes away from its clock (:func:`verify_signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx
from slack_sdk.errors import SlackClientError
from slack_sdk.webhook import WebhookClient

from tenure.routing.messages import header_value, html_text, message, plain_text, slack_blocks
from tenure.routing.routes import Channel

SIGNATURE, TIMESTAMP, DELIVERY = "X-Tenure-Signature", "X-Tenure-Timestamp", "X-Tenure-Delivery"
TOLERANCE_SECONDS = 300
ERROR_TEXT = 300  # at most this much of a refusal's body is kept as the reason

_quiet = logging.getLogger("tenure.routing.slack")  # slack_sdk logs each failure as an error;
_quiet.addHandler(logging.NullHandler())  # the delivery records it instead
_quiet.propagate = False


@dataclass(frozen=True)
class Accepted:
    """A message accepted, with a note to keep (recipients an SMTP server refused)."""

    note: str


def send(
    channel: Channel, delivery: Mapping[str, Any], environ: Mapping[str, str]
) -> str | Accepted | None:
    """Send one delivery (a deliveries row: id, route, subject, payload) on ``channel``; None
    when it was accepted, :class:`Accepted` when it was accepted with a note, else why not.
    Secrets named by ``*_env`` are read from ``environ``."""
    payload: Mapping[str, Any] = delivery["payload"]
    url = channel.url.read(environ) if channel.url else None
    if channel.type == "slack":
        return send_slack(url, payload, channel.timeout_seconds) if url else "no webhook URL"
    if channel.type == "webhook":
        secret = channel.secret.read(environ) if channel.secret else None
        if not url or not secret:
            return "no URL or no signing secret"
        return send_webhook(url, secret, webhook_body(delivery), delivery["delivery_id"],
                            channel.timeout_seconds)  # fmt: skip
    if channel.type == "email":
        return send_email(channel, payload.get("to") or [], payload, _login(channel, environ))
    return f"unknown channel type {channel.type!r}"


# Slack ---------------------------------------------------------------------------------------


def send_slack(url: str, payload: Mapping[str, Any], timeout: float) -> str | None:
    """Post the payload's message to a Slack incoming webhook (text plus Block Kit blocks)."""
    text, blocks = slack_blocks(message(payload), mentions(payload.get("to") or []))
    client = WebhookClient(url, timeout=max(1, round(timeout)), logger=_quiet, retry_handlers=[])
    try:
        response = client.send(text=text, blocks=blocks)
    except (OSError, SlackClientError, ValueError) as err:
        return f"cannot reach Slack: {err.__class__.__name__}: {err}"
    if response.status_code != 200:
        return f"Slack answered HTTP {response.status_code}: {str(response.body)[:ERROR_TEXT]}"
    return None


def mentions(to: Sequence[str]) -> list[str]:
    """Slack mentions among a route's recipients: member ids (``U0123ABC``) become ``<@U0123ABC>``;
    labels such as ``#cs-enterprise`` are not mentions (a webhook posts to its own channel)."""
    found = []
    for item in to:
        if item.startswith("<@") or item.startswith("<!"):
            found.append(item)
        elif item[:1] in ("U", "W") and item.isalnum() and item.isupper():
            found.append(f"<@{item}>")
    return found


# Email ---------------------------------------------------------------------------------------


def send_email(
    channel: Channel, to: Sequence[str], payload: Mapping[str, Any],
    login: tuple[str, str] | None = None,
) -> str | Accepted | None:  # fmt: skip
    """Send the payload's message by SMTP: plain text with an HTML alternative. When the server
    takes it for some recipients and refuses others, it was sent (:class:`Accepted`, naming the
    refused): sending it again would repeat it to those who have it."""
    if not to:
        return "no recipient address"
    try:
        mail = email_message(channel.sender, to, payload)
        with _smtp(channel) as smtp:
            if channel.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if login is not None:
                smtp.login(*login)
            refused = smtp.send_message(mail)
    except (OSError, smtplib.SMTPException, ValueError) as err:
        return f"cannot send the email: {err.__class__.__name__}: {err}"
    if refused:
        return Accepted("sent, but the server refused " + refused_text(refused))
    return None


def refused_text(refused: Mapping[str, tuple[int, bytes | str]]) -> str:
    """``a@example.com (550 no such user), ...``: what smtplib says each refused address got."""
    said = []
    for address in sorted(refused):
        code, reply = refused[address]
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        said.append(f"{address} ({code} {' '.join(text.split())})"[:ERROR_TEXT])
    return ", ".join(said)


def email_message(sender: str, to: Sequence[str], payload: Mapping[str, Any]) -> EmailMessage:
    """The email for a payload: ``Subject: [high] usage-decline on Acme Corp``."""
    said = message(payload)
    mail = EmailMessage()
    mail["Subject"] = header_value(said.subject)
    mail["From"] = header_value(sender)
    mail["To"] = header_value(", ".join(to))
    mail["Message-ID"] = make_msgid(domain="tenure.local")
    mail.set_content(plain_text(said))
    mail.add_alternative(html_text(said), subtype="html")
    return mail


def _smtp(channel: Channel) -> smtplib.SMTP:
    if channel.ssl:
        return smtplib.SMTP_SSL(channel.host, channel.port, timeout=channel.timeout_seconds,
                                context=ssl.create_default_context())  # fmt: skip
    return smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_seconds)


def _login(channel: Channel, environ: Mapping[str, str]) -> tuple[str, str] | None:
    if channel.username is None or channel.password is None:
        return None
    user, password = channel.username.read(environ), channel.password.read(environ)
    return (user, password) if user and password else None


# Signed webhooks -----------------------------------------------------------------------------


def webhook_body(delivery: Mapping[str, Any]) -> bytes:
    """The JSON a webhook receives: the delivery's id, route and subject, then its payload."""
    body = {"delivery_id": delivery["delivery_id"], "route": delivery["route"],
            "subject": delivery["subject"], **delivery["payload"]}  # fmt: skip
    return json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")


def send_webhook(
    url: str, secret: str, body: bytes, delivery_id: int | str, timeout: float
) -> str | None:
    """POST ``body`` to ``url``, signed; any 2xx answer is success."""
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", TIMESTAMP: timestamp,
               SIGNATURE: sign(secret, timestamp, body), DELIVERY: str(delivery_id),
               "User-Agent": "tenure-webhook/1"}  # fmt: skip
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as err:
        return f"cannot reach the webhook: {err.__class__.__name__}: {err}"
    if not response.is_success:
        return f"the webhook answered HTTP {response.status_code}: {response.text[:ERROR_TEXT]}"
    return None


def sign(secret: str, timestamp: str, body: bytes | str) -> str:
    """``sha256=<hex>``: HMAC-SHA256 keyed with ``secret`` over ``f"{timestamp}.{body}"``."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + raw,
                      hashlib.sha256).hexdigest()  # fmt: skip
    return f"sha256={digest}"


def verify_signature(
    secret: str, timestamp: str, body: bytes | str, signature: str,
    tolerance_seconds: int = TOLERANCE_SECONDS, now: float | None = None,
) -> bool:  # fmt: skip
    """For receivers: True when ``signature`` (the ``X-Tenure-Signature`` header) signs ``body``
    (the raw request body) at ``timestamp`` (``X-Tenure-Timestamp``) with ``secret``, and the
    timestamp is within ``tolerance_seconds`` of ``now`` (default: the clock), so a captured
    request cannot be replayed later."""
    try:
        signed_at = int(timestamp)
        expected = sign(secret, timestamp, body)
    except (ValueError, UnicodeEncodeError):
        return False
    clock = time.time() if now is None else now
    if abs(clock - signed_at) > tolerance_seconds:
        return False
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))
