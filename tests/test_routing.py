"""Routing: the routing file, Slack, email and signed webhooks against real local servers, retries
with backoff, dead letters, idempotency, the daily digest, play steps and the commands."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, insert, select, update

import tenure.cli.routing  # noqa: F401  (registers the commands until tenure.cli imports it)
from conftest import Cli, copy_database
from tenure.ingest import import_file
from tenure.routing import deliver
from tenure.routing.channels import SIGNATURE, TIMESTAMP, sign, verify_signature
from tenure.routing.deliver import (
    LEASE,
    dead_letters,
    dispatch,
    enqueue,
    plain,
    retry,
    route_alerts,
    send_due,
    send_step,
)
from tenure.routing.digest import queue_digests
from tenure.routing.digest import subject as digest_subject
from tenure.routing.messages import Message, header_value, slack_blocks
from tenure.routing.routes import RoutingError, RoutingFile, check_routes, parse_routes
from tenure.store import KIND_TABLES, Store
from tenure.store.tables import alerts, deliveries
from tenure.triggers.definitions import default_triggers
from tenure.triggers.live import alert_with_context

DAY = date(2026, 3, 1)
T0 = datetime(2026, 3, 1, 6, 0)
SECRET = "s3cret-for-tests"
ACCOUNTS = """account_id,name,segment,owner
acct-1,Acme Corp,enterprise,ana
acct-2,Beta Ltd,smb,bob
acct-3,Gamma Inc,mid-market,
"""
CONTACTS = """contact_id,account_id,email,name,persona,status
c-1,acct-1,jane@acme.example,Jane Roe,champion,active
c-2,acct-2,sam@beta.example,Sam Poe,executive_sponsor,active
c-3,acct-2,old@beta.example,Old Timer,champion,left
"""


# Servers -------------------------------------------------------------------------------------


class Receiver:
    """A local HTTP server standing in for hooks.slack.com or a webhook receiver: records every
    POST, verifies the Tenure signature when it has a secret, and fails on request."""

    def __init__(self, secret: str | None = None, fail_first: int = 0) -> None:
        self.secret, self.fail_first, self.always_fail = secret, fail_first, False
        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests if r["status"] == 200]

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        verified = self.secret is None or verify_signature(
            self.secret, headers.get(TIMESTAMP, ""), body, headers.get(SIGNATURE, "")
        )
        failing = self.always_fail or len(self.requests) < self.fail_first
        status = 401 if not verified else 500 if failing else 200
        self.requests.append({"path": path, "headers": headers, "body": body, "status": status,
                              "verified": verified})  # fmt: skip
        return status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.answer(self.path, dict(self.headers.items()), body)
                reply = b"ok" if status == 200 else b"no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(secret: str | None = None, fail_first: int = 0) -> Receiver:
        made.append(Receiver(secret, fail_first))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


class Mailbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    """A real SMTP server on 127.0.0.1 (a free port), stopped afterwards."""
    mailbox, port = Mailbox(), _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, mailbox
    controller.stop()


def _body(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None and isinstance(part, EmailMessage)
    return str(part.get_content()).replace("\r\n", "\n")


# A store with accounts, contacts and alerts ---------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("routing")
    store = Store(f"sqlite:///{root / 'tenure.db'}")
    store.upgrade()
    for kind, text in (("accounts", ACCOUNTS), ("contacts", CONTACTS)):
        (root / f"{kind}.csv").write_text(text)
        assert import_file(store, kind, root / f"{kind}.csv").rejected == 0
    store.close()
    return root


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Iterator[Store]:
    copy_database(template, tmp_path)
    opened = Store(f"sqlite:///{tmp_path / 'tenure.db'}")
    yield opened
    opened.close()


def raise_alert(
    store: Store, account: str = "acct-1", trigger: str = "usage-decline", severity: str = "high",
    day: date = DAY, raised_at: datetime | None = None,
) -> int:  # fmt: skip
    with store.transaction() as connection:
        result = connection.execute(insert(alerts).values(
            trigger=trigger, account_id=account, day=day, severity=severity, direction="risk",
            playbook="usage-adoption", condition="usage_trend_14d <= -0.3",
            values={"usage_trend_14d": -0.42}, status="open",
            raised_at=raised_at or T0 - timedelta(hours=1), triggers_digest="x" * 64))  # fmt: skip
        return int(result.inserted_primary_key[0])


def rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        query = select(deliveries).order_by(deliveries.c.delivery_id)
        return [dict(r._mapping) for r in connection.execute(query)]


@pytest.fixture(scope="module")
def an_alert(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One alert with its context, assembled once (it takes a second or two): for the tests of
    sending, which queue it directly."""
    root = tmp_path_factory.mktemp("an-alert")
    copy_database(template, root)
    store = Store(f"sqlite:///{root / 'tenure.db'}")
    found = plain(alert_with_context(store, raise_alert(store), default_triggers()))
    store.close()
    return {"type": "alert", "to": [], "alert": found}


def queue(store: Store, routing: RoutingFile, route: str, payload: dict[str, Any]) -> int:
    """Queue ``payload`` on ``route`` as alert:1, due at T0."""
    found = routing.route(route)
    assert found is not None
    made = enqueue(store, route, routing.channels[found.channel], "alert:1", payload, T0)
    assert made is not None
    return made


def routing_file(body: str) -> Any:
    return parse_routes("version: 1\n" + body, "routes.yaml")


def email_channel(port: int) -> str:
    return (f"  cs-email: {{type: email, host: 127.0.0.1, port: {port}, "
            "sender: tenure@example.com, timeout_seconds: 5}\n")  # fmt: skip


OWNERS = "owners:\n  ana: {email: ana@example.com, slack: U0ANA}\n  bob: bob@example.com\n"


# Email, Slack and signed webhooks -------------------------------------------------------------


def test_an_alert_is_emailed_to_the_account_owner(store: Store, smtp: tuple[int, Mailbox]) -> None:
    port, mailbox = smtp
    routing = routing_file(f"channels:\n{email_channel(port)}routes:\n"
                           "  - {name: owners, match: {severity: [high, critical]}, "
                           f"channel: cs-email, to: owner}}\n{OWNERS}")  # fmt: skip
    alert = raise_alert(store)
    raise_alert(store, "acct-2", severity="low")  # matches no route
    routed = route_alerts(store, routing, now=T0)
    assert len(routed.queued) == 1 and not routed.sends_nothing
    done = send_due(store, routing, T0)
    assert (done.sent, done.failed, done.queued) == (1, 0, 0)
    [(to, mail)] = mailbox.messages
    assert to == ["ana@example.com"] and mail["To"] == "ana@example.com"
    assert mail["Subject"] == "[high] usage-decline on Acme Corp"
    text = _body(mail)
    assert "Acme Corp (acct-1): segment enterprise, owner ana." in text
    assert "Trigger usage-decline (high, risk) raised 2026-03-01: Usage at or below" in text
    assert "usage_trend_14d -0.42" in text and "Jane Roe <jane@acme.example>" in text
    html = mail.get_body(("html",))
    assert html is not None and "Acme Corp" in str(html.get_content())
    [row] = rows(store)
    assert (row["subject"], row["status"], row["attempts"]) == (f"alert:{alert}", "sent", 1)
    assert row["target"] == "ana@example.com" and row["channel"] == "email"
    assert row["payload"]["alert"]["context"]["account"]["name"] == "Acme Corp"


def test_slack_gets_text_blocks_and_the_owner_mention(
    store: Store, receivers: Callable[..., Receiver]
) -> None:
    slack = receivers()
    url = slack.url("/services/T000/B000/XXXX")
    routing = routing_file(f"channels:\n  cs-slack: {{type: slack, webhook_url: '{url}'}}\n"
                           "routes:\n  - name: enterprise\n    match: {segment: enterprise}\n"
                           f"    channel: cs-slack\n    to: [owner, '#cs-enterprise']\n{OWNERS}")  # fmt: skip
    raise_alert(store, severity="critical")
    raise_alert(store, "acct-2")  # smb: not routed
    route_alerts(store, routing, now=T0)
    assert send_due(store, routing, T0).sent == 1
    [request] = slack.requests
    assert request["path"] == "/services/T000/B000/XXXX"
    sent = json.loads(request["body"])
    assert sent["text"] == "<@U0ANA> [critical] usage-decline on Acme Corp"
    assert "*[critical] usage-decline on Acme Corp*" in sent["blocks"][0]["text"]["text"]
    everything = json.dumps(sent["blocks"])
    assert "usage_trend_14d" in everything and "Jane Roe &lt;jane@acme.example&gt;" in everything
    assert rows(store)[0]["target"] == "U0ANA, #cs-enterprise"


def test_a_signed_webhook_is_verified_by_its_receiver(
    store: Store, receivers: Callable[..., Receiver]
) -> None:
    hook = receivers(secret=SECRET)
    routing = routing_file(f"channels:\n  crm: {{type: webhook, url: '{hook.url()}', "
                           "secret_env: CRM_SECRET}\nroutes:\n  - {name: all, channel: crm}\n")  # fmt: skip
    alert = raise_alert(store)
    route_alerts(store, routing, now=T0, environ={"CRM_SECRET": SECRET})
    assert send_due(store, routing, T0, environ={"CRM_SECRET": SECRET}).sent == 1
    [request] = hook.requests
    assert request["verified"] and request["status"] == 200
    assert request["headers"][SIGNATURE].startswith("sha256=")
    body = json.loads(request["body"])
    assert (
        body["type"] == "alert" and body["route"] == "all" and body["subject"] == f"alert:{alert}"
    )
    assert body["delivery_id"] == int(request["headers"]["X-Tenure-Delivery"])
    context = body["alert"]["context"]
    assert context["account"]["name"] == "Acme Corp" and context["why"]["values"]
    assert {"contacts", "open_tickets", "renewal", "touchpoints", "playbook"} <= set(context)


def test_a_wrong_signature_is_rejected() -> None:
    body, now = b'{"delivery_id": 1}', 1_800_000_000
    stamp = str(now)
    good = sign(SECRET, stamp, body)
    assert verify_signature(SECRET, stamp, body, good, now=now)
    assert verify_signature(SECRET, stamp, body.decode(), good, now=now + 299)
    assert not verify_signature("another secret", stamp, body, good, now=now)
    assert not verify_signature(SECRET, stamp, body + b" ", good, now=now)  # tampered body
    assert not verify_signature(SECRET, str(now + 1), body, good, now=now)  # another timestamp
    assert not verify_signature(SECRET, stamp, body, good, now=now + 301)  # replayed too late
    assert not verify_signature(SECRET, stamp, body, good.replace("sha256=", "md5="), now=now)
    assert not verify_signature(SECRET, "yesterday", body, good, now=now)
    assert not verify_signature(SECRET, stamp, body, "sha256=ünïcode", now=now)


def test_a_webhook_with_a_wrong_secret_is_refused_and_retried(
    store: Store, receivers: Callable[..., Receiver], an_alert: dict[str, Any]
) -> None:
    hook = receivers(secret="the receiver's secret")
    routing = routing_file(f"channels:\n  crm: {{type: webhook, url: '{hook.url()}', "
                           f"secret: not-the-same}}\nroutes:\n  - {{name: all, channel: crm}}\n")  # fmt: skip
    queue(store, routing, "all", an_alert)
    done = send_due(store, routing, T0)
    assert (done.sent, done.failed, done.dead) == (0, 1, 0)
    assert "HTTP 401" in done.errors[0]["error"] and not hook.requests[0]["verified"]


# Retries, dead letters, idempotency -----------------------------------------------------------


def test_failures_are_retried_with_exponential_backoff(
    store: Store, receivers: Callable[..., Receiver], an_alert: dict[str, Any]
) -> None:
    hook = receivers(secret=SECRET, fail_first=2)
    routing = routing_file(f"channels:\n  crm: {{type: webhook, url: '{hook.url()}', "
                           f"secret: {SECRET}, max_attempts: 5, backoff_seconds: 30}}\n"
                           "routes:\n  - {name: all, channel: crm}\n")  # fmt: skip
    queue(store, routing, "all", an_alert)
    first = send_due(store, routing, T0)
    assert (first.sent, first.failed, first.queued) == (0, 1, 1)
    [row] = rows(store)
    assert row["next_attempt_at"] == T0 + timedelta(seconds=30) and "HTTP 500" in row["last_error"]
    assert send_due(store, routing, T0 + timedelta(seconds=29)).failed == 0  # not due yet
    assert len(hook.requests) == 1
    assert send_due(store, routing, T0 + timedelta(seconds=30)).failed == 1
    assert rows(store)[0]["next_attempt_at"] == T0 + timedelta(seconds=30 + 60)  # doubled
    assert send_due(store, routing, T0 + timedelta(seconds=89)).sent == 0
    last = send_due(store, routing, T0 + timedelta(seconds=90))
    assert (last.sent, last.failed, last.queued) == (1, 0, 0)
    [row] = rows(store)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 3, None)
    assert [r["status"] for r in hook.requests] == [500, 500, 200]
    assert all(r["verified"] for r in hook.requests)
    assert len({r["headers"]["X-Tenure-Delivery"] for r in hook.requests}) == 1


def test_a_delivery_dies_after_its_last_attempt_and_retry_requeues_it(
    store: Store, receivers: Callable[..., Receiver], an_alert: dict[str, Any]
) -> None:
    hook = receivers()
    hook.always_fail = True
    routing = routing_file(f"channels:\n  chat: {{type: slack, webhook_url: '{hook.url()}', "
                           "max_attempts: 3, backoff_seconds: 10}\n"
                           "routes:\n  - {name: all, channel: chat}\n")  # fmt: skip
    queue(store, routing, "all", an_alert)
    outcomes = [send_due(store, routing, T0 + timedelta(seconds=s)) for s in (0, 10, 30, 1000)]
    assert [(o.failed, o.dead) for o in outcomes] == [(1, 0), (1, 0), (1, 1), (0, 0)]
    assert len(hook.requests) == 3
    [dead] = dead_letters(store)
    assert dead["attempts"] == 3 and "Slack answered HTTP 500" in dead["last_error"]
    with pytest.raises(KeyError):
        retry(store, 999)
    hook.always_fail = False
    again = retry(store, dead["delivery_id"], now=T0 + timedelta(hours=1))
    assert (again["status"], again["attempts"]) == ("pending", 0)
    with pytest.raises(ValueError, match="is pending, not dead"):
        retry(store, dead["delivery_id"])
    assert dead_letters(store) == []
    assert send_due(store, routing, T0 + timedelta(hours=1)).sent == 1
    assert rows(store)[0]["status"] == "sent"


def test_routing_the_same_alert_twice_queues_it_once(store: Store) -> None:
    routing = routing_file("channels:\n  chat: {type: slack, webhook_url: 'http://127.0.0.1:9/x'}\n"
                           "routes:\n  - {name: a, channel: chat}\n"
                           "  - {name: b, channel: chat, match: {trigger: usage-decline}}\n")  # fmt: skip
    alert = raise_alert(store)
    first = route_alerts(store, routing, now=T0)
    again = route_alerts(store, routing, now=T0 + timedelta(minutes=5))
    explicit = route_alerts(store, routing, [{"alert_id": alert, "severity": "high",
                                              "direction": "risk", "trigger": "usage-decline",
                                              "account_id": "acct-1"}], now=T0)  # fmt: skip
    assert (len(first.queued), first.already) == (2, 0)
    assert (len(again.queued), again.already) == (0, 2)
    assert (len(explicit.queued), explicit.already) == (0, 2)
    assert [(r["route"], r["subject"]) for r in rows(store)] == [("a", f"alert:{alert}"),
                                                                 ("b", f"alert:{alert}")]  # fmt: skip
    old = raise_alert(store, "acct-2", raised_at=T0 - timedelta(days=3))
    assert route_alerts(store, routing, now=T0).queued == []  # older than two days: not new
    assert len(route_alerts(store, routing, now=T0 - timedelta(days=2)).queued) == 2
    assert {r["subject"] for r in rows(store)} == {f"alert:{alert}", f"alert:{old}"}


# A misconfigured route sends nothing and says why ---------------------------------------------


MISCONFIGURED = """\
version: 1
channels:
  good: {{type: webhook, url: '{url}', secret: {secret}}}
  no-url: {{type: slack}}
  from-env: {{type: slack, webhook_url_env: ROUTING_TEST_UNSET}}
routes:
  - {{name: works, channel: good}}
  - {{name: missing-url, channel: no-url}}
  - {{name: typo, channel: godo}}
  - {{name: env-unset, channel: from-env}}
  - {{name: urgent, channel: good, match: {{severity: [high, urgent]}}}}
"""


def test_misconfigured_routes_send_nothing_and_say_why_while_a_good_route_delivers(
    store: Store, receivers: Callable[..., Receiver]
) -> None:
    hook = receivers(secret=SECRET)
    routing = parse_routes(MISCONFIGURED.format(url=hook.url(), secret=SECRET), "routes.yaml")
    checks = check_routes(routing, environ={})
    assert checks["works"] == []
    said = {name: [str(p) for p in found] for name, found in checks.items()}
    assert said["missing-url"] == ["routes.yaml:4: channels.no-url.webhook_url: required but "
                                   "missing (give webhook_url or webhook_url_env)"]  # fmt: skip
    assert said["typo"] == ["routes.yaml:9: routes[2].channel: unknown channel 'godo'; did you "
                            "mean 'good'?"]  # fmt: skip
    assert said["env-unset"] == ["routes.yaml:5: channels.from-env.webhook_url_env: environment "
                                 "variable ROUTING_TEST_UNSET is not set"]  # fmt: skip
    assert said["urgent"] == ["routes.yaml:11: routes[4].match.severity[1]: one of low, medium, "
                              "high, critical, got 'urgent'"]  # fmt: skip
    raise_alert(store)
    routed = route_alerts(store, routing, now=T0, environ={})
    assert set(routed.sends_nothing) == {"missing-url", "typo", "env-unset", "urgent"}
    assert routed.sends_nothing["typo"] == "routes[2].channel: unknown channel 'godo'; did you mean 'good'?"  # fmt: skip
    assert [r["route"] for r in rows(store)] == ["works"]
    assert send_due(store, routing, T0, environ={}).sent == 1
    assert len(hook.requests) == 1 and hook.requests[0]["verified"]


def test_a_route_broken_after_queueing_holds_its_deliveries_without_spending_attempts(
    store: Store, receivers: Callable[..., Receiver], an_alert: dict[str, Any]
) -> None:
    slack = receivers()
    routing = routing_file("channels:\n  chat: {type: slack, webhook_url_env: CHAT_URL}\n"
                           "routes:\n  - {name: all, channel: chat}\n")  # fmt: skip
    environ = {"CHAT_URL": slack.url("/services/T/B/X")}
    queue(store, routing, "all", an_alert)
    held = send_due(store, routing, T0, environ={})
    assert held.sent == held.failed == 0 and held.queued == 1
    assert held.held == {"all": "channels.chat.webhook_url_env: environment variable CHAT_URL "
                                "is not set"}  # fmt: skip
    assert rows(store)[0]["attempts"] == 0 and slack.requests == []
    gone = send_due(store, routing_file("channels: {}\nroutes: []\n"), T0)
    assert gone.held == {"all": "route 'all' is not in routes.yaml"}
    assert send_due(store, routing, T0, environ=environ).sent == 1


@pytest.mark.parametrize(
    ("body", "line", "field", "says"),
    [
        ("rotues: []\n", 2, "rotues", "unknown key; did you mean 'routes'?"),
        ("routes:\n  - {channel: x}\n", 3, "routes[0].name", "required but missing"),
        ("routes:\n  - name: a\n    channel: x\n  - name: a\n    channel: y\n", 5,
         "routes[1].name", "'a' is given twice"),
        ("routes:\n  - {name: digest, channel: x}\n", 3, "routes[0].name", "'digest' is reserved"),
        ("routes: {name: a}\n", 2, "routes", "a list of routes, got a mapping"),
        ("digest: {channel: x, too: owner}\n", 2, "digest.too", "did you mean 'to'?"),
        ("version: 2\n", 2, "version", "given twice (first on line 1)"),
        ("routes:\n  - name: a\n   channel: x\n", 4, "(yaml)", "not valid YAML"),
    ],
)  # fmt: skip
def test_a_file_that_cannot_be_read_names_file_line_and_field(
    body: str, line: int, field: str, says: str
) -> None:
    with pytest.raises(RoutingError) as caught:
        routing_file(body)
    assert (caught.value.file, caught.value.line, caught.value.field) == (
        "routes.yaml",
        line,
        field,
    )
    assert says in caught.value.message
    assert str(caught.value).startswith(f"routes.yaml:{line}: {field}: ")


def test_problems_name_file_line_and_field_and_suggest_keys() -> None:
    routing = routing_file(
        "channels:\n"  # 2
        "  chat:\n"  # 3
        "    type: slack\n"  # 4
        "    webhook_ur: https://hooks.slack.com/services/T/B/X\n"  # 5
        "  mail:\n"  # 6
        "    type: emial\n"  # 7
        "  smtp: {type: email, sender: not-an-address, port: 0}\n"  # 8
        "routes:\n"  # 9
        "  - name: a\n"  # 10
        "    channel: smtp\n"  # 11
        "    to: [owner, ana@]\n"  # 12
        "    match: {severty: high, direction: [risk]}\n"  # 13
        "owners:\n"  # 14
        "  ana: ana.example.com\n"  # 15
        "plays: {email: chat}\n"  # 16
    )  # fmt: skip
    checks = {k: [str(p) for p in v] for k, v in check_routes(routing, {}).items()}
    assert checks["a"] == [
        "routes.yaml:13: routes[0].match.severty: unknown key; did you mean 'severity'?",
        "routes.yaml:12: routes[0].to[1]: an email address or owner, got 'ana@'",
        "routes.yaml:8: channels.smtp.sender: an email address, got str 'not-an-address'",
        "routes.yaml:8: channels.smtp.port: a whole number of at least 1, got int 0",
    ]
    assert checks["plays"] == [  # the email channel named is not one; the first slack is broken
        "routes.yaml:16: plays.email: channel 'chat' is a slack channel, not email",
        "routes.yaml:5: channels.chat.webhook_ur: unknown key; did you mean 'webhook_url'?",
        "routes.yaml:3: channels.chat.webhook_url: required but missing (give webhook_url or "
        "webhook_url_env)",
    ]
    assert checks["(file)"] == [
        "routes.yaml:15: owners.ana: an email address, got str 'ana.example.com'",
        "routes.yaml:7: channels.mail.type: unknown type 'emial'; did you mean 'email'?",
    ]
    assert routing.owners == {}


def test_matching_is_and_across_keys_and_or_within_a_list() -> None:
    routing = routing_file("channels:\n  c: {type: slack, webhook_url: 'https://x.example/h'}\n"
                           "routes:\n  - name: r\n    channel: c\n    match:\n"
                           "      severity: [high, critical]\n      segment: enterprise\n")  # fmt: skip
    [route] = routing.routes
    assert route.matches({"severity": "high", "segment": "enterprise"})
    assert route.matches({"severity": "critical", "segment": "enterprise", "owner": "x"})
    assert not route.matches({"severity": "high", "segment": "smb"})
    assert not route.matches({"severity": "low", "segment": "enterprise"})
    assert not route.matches({"severity": "high", "segment": None})


# The daily digest ----------------------------------------------------------------------------


def test_the_digest_goes_once_per_owner_and_day_grouped_by_severity(
    store: Store, smtp: tuple[int, Mailbox]
) -> None:
    port, mailbox = smtp
    routing = routing_file(f"channels:\n{email_channel(port)}routes: []\n"
                           f"digest: {{channel: cs-email, to: owner}}\n{OWNERS}")  # fmt: skip
    raise_alert(store, "acct-1", "usage-decline", "high")
    raise_alert(store, "acct-1", "payment-failure", "critical")
    raise_alert(store, "acct-2", "ticket-spike", "medium")
    raise_alert(store, "acct-3", "ticket-spike", "medium")  # no owner: in no digest
    raise_alert(store, "acct-1", "nps-detractor", "low", day=DAY - timedelta(days=1))  # earlier
    first = queue_digests(store, routing, DAY, now=T0)
    assert sorted((q["owner"], q["total"]) for q in first.queued) == [("ana", 2), ("bob", 1)]
    assert first.unowned == 1
    assert send_due(store, routing, T0, route="digest").sent == 2
    again = queue_digests(store, routing, DAY, now=T0 + timedelta(hours=2))
    assert again.queued == [] and sorted(again.already) == ["ana", "bob"]
    assert send_due(store, routing, T0 + timedelta(hours=2)).sent == 0
    mails = {to[0]: mail for to, mail in mailbox.messages}
    assert set(mails) == {"ana@example.com", "bob@example.com"} and len(mailbox.messages) == 2
    ana = mails["ana@example.com"]
    assert ana["Subject"] == "Tenure digest for ana, 2026-03-01: 1 critical, 1 high"
    text = _body(ana)
    assert text.index("critical (1):") < text.index("high (1):")
    assert "Acme Corp (acct-1): payment-failure on 2026-03-01" in text
    assert "nps-detractor" not in text and "Beta Ltd" not in text
    assert {r["subject"] for r in rows(store)} == {"digest:ana:2026-03-01", "digest:bob:2026-03-01"}
    # the next day: only what was raised since ana's digest, including a late alert of the day
    late = raise_alert(store, "acct-1", "seat-headroom", "low", raised_at=T0 + timedelta(hours=5))
    following = queue_digests(store, routing, DAY + timedelta(days=1), now=T0 + timedelta(days=1))
    assert [(q["owner"], q["total"]) for q in following.queued] == [("ana", 1)]
    [payload] = [r["payload"] for r in rows(store) if r["subject"] == "digest:ana:2026-03-02"]
    assert [a["alert_id"] for a in payload["alerts"]["low"]] == [late]
    assert payload["counts"] == {"critical": 0, "high": 0, "medium": 0, "low": 1}


def test_a_digest_without_an_owner_address_is_skipped_and_says_why(store: Store) -> None:
    routing = routing_file("channels:\n  m: {type: email, sender: t@example.com}\nroutes: []\n"
                           "digest: {channel: m, to: owner}\nowners: {ana: ana@example.com}\n")  # fmt: skip
    raise_alert(store, "acct-2")
    done = queue_digests(store, routing, DAY, now=T0)
    assert done.queued == [] and done.skipped == {"bob": "owner 'bob' has no email address under owners"}  # fmt: skip
    broken = routing_file("channels: {}\nroutes: []\ndigest: {channel: m, to: owner}\n")
    assert queue_digests(store, broken, DAY).sends_nothing == (
        "digest.channel: unknown channel 'm': the file defines no channels"
    )


# Play steps ----------------------------------------------------------------------------------


def test_a_play_step_is_sent_by_email_to_its_contact_once(
    store: Store, smtp: tuple[int, Mailbox], receivers: Callable[..., Receiver]
) -> None:
    port, mailbox = smtp
    slack = receivers()
    routing = routing_file(f"channels:\n{email_channel(port)}"
                           f"  chat: {{type: slack, webhook_url: '{slack.url('/services/T/B/X')}'}}\n"
                           f"routes: []\nplays: {{slack: chat}}\n{OWNERS}")  # fmt: skip
    task = {"task_id": 7, "account_id": "acct-1", "channel": "email", "owner": "ana",
            "title": "Your quarterly review", "content": "Hello Jane,\nshall we meet?",
            "contact_id": "c-1", "persona": None}  # fmt: skip
    assert send_step(store, routing, task, now=T0) == "sent"
    assert send_step(store, routing, task, now=T0) == "sent"  # once
    [(to, mail)] = mailbox.messages
    assert to == ["jane@acme.example"] and mail["Subject"] == "Your quarterly review"
    assert _body(mail) == "Hello Jane,\nshall we meet?\n"
    by_persona = task | {"task_id": 8, "contact_id": None, "persona": "executive_sponsor",
                         "account_id": "acct-2"}  # fmt: skip
    assert send_step(store, routing, by_persona, now=T0) == "sent"
    assert mailbox.messages[-1][0] == ["sam@beta.example"]
    nobody = by_persona | {"task_id": 9, "persona": "champion"}  # the champion has left
    assert send_step(store, routing, nobody, now=T0) == (
        "no email address for an active champion on account 'acct-2'"
    )
    on_slack = task | {"task_id": 10, "channel": "slack"}
    assert send_step(store, routing, on_slack, now=T0) == "sent"
    said = json.loads(slack.requests[0]["body"])
    assert said["text"] == "<@U0ANA> Your quarterly review" and "shall we meet?" in json.dumps(said)
    assert {r["subject"] for r in rows(store)} == {"task:7", "task:8", "task:10"}
    assert all(r["route"] == "plays" for r in rows(store))


def test_a_play_step_that_cannot_go_says_why_or_is_queued(
    store: Store, receivers: Callable[..., Receiver]
) -> None:
    slack = receivers(fail_first=1)
    task = {"task_id": 1, "account_id": "acct-1", "channel": "slack", "owner": "ana",
            "title": "Check in", "content": "Call the champion."}  # fmt: skip
    assert send_step(store, None, task).startswith("no routing file")
    only_email = routing_file("channels:\n  m: {type: email, sender: t@example.com}\nroutes: []\n")
    assert send_step(store, only_email, task) == "no slack channel in routes.yaml"
    assert send_step(store, only_email, task | {"channel": "sms"}) == (
        "a step is sent by email or slack, not 'sms'"
    )
    unset = routing_file(
        "channels:\n  c: {type: slack, webhook_url_env: NOT_SET_HERE}\nroutes: []\n"
    )
    assert send_step(store, unset, task, environ={}) == (
        "channels.c.webhook_url_env: environment variable NOT_SET_HERE is not set"
    )
    flaky = routing_file(f"channels:\n  c: {{type: slack, webhook_url: '{slack.url()}', "
                         "backoff_seconds: 60}\nroutes: []\n")  # fmt: skip
    assert send_step(store, flaky, task, now=T0) == "queued"
    assert send_step(store, flaky, task, now=T0 + timedelta(seconds=59)) == "queued"
    assert send_step(store, flaky, task, now=T0 + timedelta(seconds=60)) == "sent"
    assert [r["status"] for r in slack.requests] == [500, 200]


# The commands --------------------------------------------------------------------------------


def test_the_commands_list_check_send_retry_and_digest(
    store: Store, tmp_path: Path, receivers: Callable[..., Receiver],
    smtp: tuple[int, Mailbox], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    port, mailbox = smtp
    hook = receivers(secret=SECRET)
    monkeypatch.setenv("ROUTING_TEST_SECRET", SECRET)
    monkeypatch.delenv("ROUTING_TEST_UNSET", raising=False)
    good = tmp_path / "routes.yaml"
    good.write_text(f"version: 3\nchannels:\n{email_channel(port)}"
                    f"  crm: {{type: webhook, url: '{hook.url()}', secret_env: ROUTING_TEST_SECRET, "
                    "max_attempts: 1}\nroutes:\n  - {name: crm, channel: crm}\n"
                    f"  - {{name: mail, channel: cs-email, to: owner}}\n"
                    f"digest: {{channel: cs-email, to: owner}}\n{OWNERS}")  # fmt: skip
    cli = Cli(str(store.engine.url))
    listed = cli.json("routes", "--file", good)
    assert [(r["name"], r["type"], r["sends"]) for r in listed["routes"]] == [
        ("crm", "webhook", True), ("mail", "email", True), ("digest", "email", True)]  # fmt: skip
    assert cli.json("routes", "check", "--file", good)["valid"] is True
    assert "2 routes, valid." in cli.run("routes", "check", "--file", good).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("secret_env: ROUTING_TEST_SECRET",
                                            "secret_env: ROUTING_TEST_UNSET"))  # fmt: skip
    printed = cli.run("routes", "check", "--file", bad, code=1).stdout
    assert f"{bad}:4: channels.crm.secret_env: environment variable ROUTING_TEST_UNSET is not set" in printed  # fmt: skip
    assert "route crm: sends nothing: channels.crm.secret_env: environment variable" in printed
    unreadable = tmp_path / "unreadable.yaml"
    unreadable.write_text("version: 1\nroute: []\n")
    error = cli.json("routes", "check", "--file", unreadable, code=1)["error"]
    assert error == f"{unreadable}:2: route: unknown key; did you mean 'routes'?"
    monkeypatch.delenv("TENURE_ROUTES", raising=False)
    assert cli.json("routes")["file"] is None  # TENURE_ROUTES is empty: the inbox only
    assert "alerts stay in the in-app inbox" in cli.run("alerts", "send").stdout
    monkeypatch.setenv("TENURE_ROUTES", str(good))
    assert cli.json("routes")["file"] == str(good)

    raise_alert(store, raised_at=datetime.now() - timedelta(hours=1))
    sent = cli.json("alerts", "send", "--file", good)
    assert (sent["routed"]["queued"], sent["sent"], sent["failed"]) == (2, 2, 0)
    assert hook.requests[0]["verified"] and mailbox.messages[0][0] == ["ana@example.com"]
    assert cli.json("alerts", "send", "--file", good)["routed"]["already"] == 2
    hook.always_fail = True
    raise_alert(store, trigger="p1-open", raised_at=datetime.now() - timedelta(hours=1))
    failed = cli.json("alerts", "send", "--file", good)
    assert (failed["sent"], failed["failed"], failed["dead"]) == (1, 1, 1)
    dead = cli.json("alerts", "dead")["dead"]
    assert len(dead) == 1 and "HTTP 500" in dead[0]["last_error"]
    assert "1 dead deliveries." in cli.run("alerts", "dead").stdout
    hook.always_fail = False
    assert cli.json("alerts", "retry", str(dead[0]["delivery_id"]))["status"] == "pending"
    assert cli.json("alerts", "retry", "999", code=1) == {"error": "no delivery 999"}
    text = cli.run("alerts", "send", "--file", good).stdout
    assert "Sent 1, failed 0 (0 now dead), 0 queued." in text
    assert cli.json("alerts", "dead")["dead"] == []
    digest = cli.json("digest", "--day", DAY.isoformat(), "--file", good)
    assert [q["owner"] for q in digest["queued"]] == ["ana"] and digest["sent"]["sent"] == 1
    again = cli.run("digest", "--day", DAY.isoformat(), "--file", good).stdout
    assert "0 queued, 1 queued before." in again
    with store.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(deliveries)).scalar_one()
    assert count == 5  # two alerts on two routes, one digest


def test_the_queue_works_on_every_backend(
    store_url: str, receivers: Callable[..., Receiver], tmp_path: Path
) -> None:
    """Queued once (INSERT ... ON CONFLICT DO NOTHING), claimed, dead, requeued, sent: on SQLite
    and PostgreSQL alike."""
    store = Store(store_url)
    store.ensure_schema()
    try:
        slack = receivers(fail_first=1)
        routing = routing_file(f"channels:\n  c: {{type: slack, webhook_url: '{slack.url()}', "
                               "max_attempts: 1}\nroutes: []\n")  # fmt: skip
        task = {"task_id": 5, "account_id": "a-1", "channel": "slack", "title": "Hi", "content": ""}
        gone = "dead after 1 attempts: Slack answered HTTP 500: no"
        assert send_step(store, routing, task, now=T0) == gone
        assert send_step(store, routing, task, now=T0) == gone  # once: not sent again
        channel = routing.channels["c"]
        assert (
            enqueue(store, "plays", channel, "task:5", {"type": "task", "task": task}, T0) is None
        )
        [dead] = dead_letters(store)
        retry(store, dead["delivery_id"], now=T0)
        assert send_due(store, routing, T0).sent == 1 and len(slack.requests) == 2
        assert send_step(store, routing, task, now=T0) == "sent"
        # a digest for an owner with a 200-character name fits the subject column
        owner = "o" * 200
        (tmp_path / "accounts.csv").write_text(f"account_id,name,owner\na-1,A,{owner}\n")
        assert import_file(store, "accounts", tmp_path / "accounts.csv").rejected == 0
        raise_alert(store, "a-1")
        digest = routing_file(f"channels:\n  c: {{type: slack, webhook_url: '{slack.url()}'}}\n"
                              "routes: []\ndigest: {channel: c, to: '#cs'}\n")  # fmt: skip
        assert len(queue_digests(store, digest, DAY, now=T0).queued) == 1
        raise_alert(store, "a-1", "p1-open", raised_at=T0 + timedelta(hours=5))  # late that day
        later = queue_digests(store, digest, DAY + timedelta(days=1), now=T0 + timedelta(days=1))
        assert [q["total"] for q in later.queued] == [1]  # only what came since the first
        assert send_due(store, digest, T0 + timedelta(days=1), route="digest").sent == 2
        assert json.loads(slack.requests[-1]["body"])["text"].startswith("Tenure digest for ooo")
    finally:
        store.close()


def test_the_documented_example_file_is_valid() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "routing.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    routing = parse_routes(example, "docs/routing.md")
    environ = {name: "x" for name in ("SMTP_USER", "SMTP_PASSWORD", "CRM_HOOK_SECRET")}
    environ["SLACK_CS_WEBHOOK_URL"] = "https://hooks.slack.com/services/T000/B000/XXXX"
    checks = check_routes(routing, environ)
    assert checks == {name: [] for name in (
        "enterprise-critical", "owner-email", "renewals-to-finance", "everything-to-crm",
        "digest", "plays")}  # fmt: skip
    missing = check_routes(routing, {})["plays"]
    assert [p.field for p in missing] == ["channels.cs-email.username_env",
                                          "channels.cs-email.password_env",
                                          "channels.cs-slack.webhook_url_env"]  # fmt: skip


# One bad delivery, leases and the clock -------------------------------------------------------


def test_a_line_break_in_an_account_name_does_not_stop_the_email(
    store: Store, smtp: tuple[int, Mailbox]
) -> None:
    port, mailbox = smtp
    with store.transaction() as connection:
        accounts = KIND_TABLES["accounts"]
        connection.execute(update(accounts).where(accounts.c.account_id == "acct-1")
                           .values(name="Acme\nBcc: evil@example.com"))  # fmt: skip
    routing = routing_file(f"channels:\n{email_channel(port)}routes:\n"
                           f"  - {{name: owners, channel: cs-email, to: owner}}\n{OWNERS}")  # fmt: skip
    raise_alert(store, "acct-1")
    raise_alert(store, "acct-2")
    route_alerts(store, routing, now=T0)
    done = send_due(store, routing, T0)
    assert (done.sent, done.failed) == (2, 0)
    subjects = sorted(mail["Subject"] for _to, mail in mailbox.messages)
    assert subjects == ["[high] usage-decline on Acme Bcc: evil@example.com",
                        "[high] usage-decline on Beta Ltd"]  # fmt: skip
    assert all(mail["Bcc"] is None for _to, mail in mailbox.messages)
    assert header_value("a\r\nb\u2028c") == "a b c"


def test_an_exception_sending_one_delivery_is_a_failed_attempt_and_the_rest_still_go(
    store: Store, receivers: Callable[..., Receiver], an_alert: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    hook = receivers(secret=SECRET)
    routing = routing_file(f"channels:\n  crm: {{type: webhook, url: '{hook.url()}', "
                           f"secret: {SECRET}, max_attempts: 2, backoff_seconds: 30}}\n"
                           "routes:\n  - {name: all, channel: crm}\n")  # fmt: skip
    channel = routing.channels["crm"]
    first = enqueue(store, "all", channel, "alert:1", an_alert, T0)
    enqueue(store, "all", channel, "alert:2", an_alert, T0)
    real = deliver.send

    def send(channel: Any, row: Any, environ: Any) -> Any:
        if row["delivery_id"] == first:
            raise RuntimeError("boom")
        return real(channel, row, environ)

    monkeypatch.setattr(deliver, "send", send)
    done = send_due(store, routing, T0)
    assert (done.sent, done.failed, done.dead, done.queued) == (1, 1, 0, 1)
    broken, fine = rows(store)
    assert (broken["status"], broken["attempts"]) == ("pending", 1)
    assert broken["last_error"] == "cannot send: RuntimeError: boom"
    assert broken["next_attempt_at"] == T0 + timedelta(seconds=30)
    assert fine["status"] == "sent" and len(hook.requests) == 1
    again = send_due(store, routing, T0 + timedelta(seconds=30))
    assert (again.failed, again.dead) == (1, 1) and rows(store)[0]["status"] == "dead"


def test_a_url_httpx_cannot_parse_is_a_problem_of_its_route() -> None:
    routing = routing_file("channels:\n  bad: {type: webhook, url: 'http://[::1', secret: s}\n"
                           "  nohost: {type: slack, webhook_url: 'http://'}\n"
                           "  env: {type: slack, webhook_url_env: HOOK_URL}\n"
                           "routes:\n  - {name: a, channel: bad}\n  - {name: b, channel: nohost}\n"
                           "  - {name: c, channel: env}\n")  # fmt: skip
    checks = check_routes(routing, {"HOOK_URL": "https://[::1/secret-token"})
    assert checks["a"][0].why.startswith("channels.bad.url: not a valid URL (")
    assert checks["a"][0].why.endswith("got 'http://[::1'")
    assert checks["b"][0].why == "channels.nohost.webhook_url: a URL with a host, got 'http://'"
    [env] = checks["c"]
    assert env.field == "channels.env.webhook_url_env" and "secret-token" not in env.message
    assert env.message.startswith("environment variable HOOK_URL: not a valid URL")
    assert check_routes(routing, {"HOOK_URL": "https://hooks.example.com/x"})["c"] == []


class Clock:
    """A clock the test moves: each send takes ``step`` (a slow, dead server)."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now, self.step = start, step

    def __call__(self) -> datetime:
        return self.now


def test_each_claim_and_backoff_reads_the_clock_when_it_happens(
    store: Store, an_alert: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    routing = routing_file("channels:\n  crm: {type: webhook, url: 'http://127.0.0.1:9/x', "
                           "secret: s, backoff_seconds: 30}\nroutes:\n  - {name: all, channel: crm}\n")  # fmt: skip
    channel = routing.channels["crm"]
    for n in (1, 2, 3):
        enqueue(store, "all", channel, f"alert:{n}", an_alert, T0)
    clock = Clock(T0, timedelta(minutes=11))  # each attempt outlasts a lease taken at the start
    leases: list[tuple[datetime, datetime]] = []

    def send(channel: Any, row: Any, environ: Any) -> str:
        [held] = [r for r in rows(store) if r["delivery_id"] == row["delivery_id"]]
        leases.append((clock.now, held["next_attempt_at"]))
        clock.now += clock.step
        return "cannot reach the webhook: ConnectTimeout"

    monkeypatch.setattr(deliver, "send", send)
    done = send_due(store, routing, T0, clock=clock)
    assert done.failed == 3
    assert [lease - claimed for claimed, lease in leases] == [LEASE] * 3
    assert [claimed for claimed, _ in leases] == [T0 + clock.step * n for n in range(3)]
    ended = [T0 + clock.step * n for n in (1, 2, 3)]
    assert [r["next_attempt_at"] for r in rows(store)] == [t + timedelta(seconds=30) for t in ended]


def test_only_the_sender_holding_the_claim_records_the_outcome(
    store: Store, an_alert: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    routing = routing_file("channels:\n  crm: {type: webhook, url: 'http://127.0.0.1:9/x', "
                           "secret: s}\nroutes:\n  - {name: all, channel: crm}\n")  # fmt: skip
    queue(store, routing, "all", an_alert)
    theirs = T0 + timedelta(hours=1)

    def send(channel: Any, row: Any, environ: Any) -> None:
        with store.transaction() as connection:  # our lease ran out; another sender claimed it
            connection.execute(update(deliveries).values(next_attempt_at=theirs))

    monkeypatch.setattr(deliver, "send", send)
    done = send_due(store, routing, T0)
    assert (done.sent, done.failed) == (0, 0)
    [row] = rows(store)
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("pending", 0, theirs)


class Refusing(Mailbox):
    """A mailbox whose server refuses some recipients and takes the others."""

    def __init__(self, refuse: set[str]) -> None:
        super().__init__()
        self.refuse = refuse

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_partly_refused_email_is_sent_once_and_names_the_refused(
    store: Store, an_alert: dict[str, Any]
) -> None:
    mailbox, port = Refusing({"nobody@example.com"}), _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        routing = routing_file(f"channels:\n{email_channel(port)}routes:\n  - {{name: m, "
                               "channel: cs-email, to: [ana@example.com, nobody@example.com]}\n")  # fmt: skip
        queue(store, routing, "m", an_alert | {"to": ["ana@example.com", "nobody@example.com"]})
        done = send_due(store, routing, T0)
        assert (done.sent, done.failed) == (1, 0)
        [note] = done.notes
        assert note["note"] == "sent, but the server refused nobody@example.com (550 no such user here)"  # fmt: skip
        [row] = rows(store)
        assert (row["status"], row["last_error"]) == ("sent", note["note"])
        assert send_due(store, routing, T0 + timedelta(days=1)).sent == 0
        assert [to for to, _mail in mailbox.messages] == [["ana@example.com"]]
    finally:
        controller.stop()


def test_an_smtp_password_in_clear_text_to_another_host_is_a_problem() -> None:
    def channel(extra: str) -> list[str]:
        routing = routing_file(f"channels:\n  m: {{type: email, sender: t@example.com, "
                               f"username: u, password: p, {extra}}}\n"
                               "routes:\n  - {name: r, channel: m, to: a@example.com}\n")  # fmt: skip
        return [p.why for p in check_routes(routing, {})["r"]]

    assert channel("host: smtp.example.com") == [
        "channels.m.password: would send the password in clear text: set starttls or ssl (or "
        "send through localhost)"
    ]
    assert channel("host: smtp.example.com, starttls: true") == []
    assert channel("host: smtp.example.com, ssl: true, port: 465") == []
    for local in ("localhost", "127.0.0.1", "'::1'"):
        assert channel(f"host: {local}") == []


def test_slack_text_escapes_the_data_but_not_the_mentions() -> None:
    text, blocks = slack_blocks(Message("[high] usage-decline on <!channel> & co"), ["<@U0ANA>"])
    assert text == "<@U0ANA> [high] usage-decline on &lt;!channel&gt; &amp; co"
    assert blocks[0]["text"]["text"] == "<@U0ANA> *[high] usage-decline on &lt;!channel&gt; &amp; co*"  # fmt: skip


def test_the_documented_standard_library_check_verifies_signatures() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "routing.md").read_text()
    example = text.split("Without Tenure installed", 1)[1].split("```python\n", 1)[1]
    found: dict[str, Any] = {}
    exec(example.split("```", 1)[0], found)
    verify = found["verify"]
    body, stamp = '{"delivery_id": 1, "name": "Zoë"}'.encode(), str(int(time.time()))
    good = sign(SECRET, stamp, body)
    assert verify(SECRET, stamp, body, good)
    assert not verify("another secret", stamp, body, good)
    assert not verify(SECRET, stamp, body + b" ", good)
    assert not verify(SECRET, "yesterday", body, good)
    assert not verify(SECRET, "", body, good)
    assert not verify(SECRET, "١٧٠٠٠٠٠٠٠٠", body, good)  # digits, but not ASCII ones
    assert not verify(SECRET, stamp, body, "sha256=ünïcode")
    old = str(int(time.time()) - 301)
    assert not verify(SECRET, old, body, sign(SECRET, old, body))


# Column widths, days, and one routing run -----------------------------------------------------


def test_route_names_and_digest_subjects_fit_their_columns(store: Store) -> None:
    long = "r" * 100
    assert routing_file(f"channels: {{}}\nroutes:\n  - {{name: {long}, channel: x}}\n").routes
    with pytest.raises(RoutingError, match="at most 100 characters, got 101"):
        routing_file(f"channels: {{}}\nroutes:\n  - {{name: {long}r, channel: x}}\n")
    owner = "o" * 200
    assert digest_subject("ana", DAY) == "digest:ana:2026-03-01"
    assert len(digest_subject(owner, DAY)) <= 200
    assert digest_subject(owner, DAY) == digest_subject(owner, DAY)
    assert digest_subject(owner, DAY) != digest_subject(owner[:-1] + "p", DAY)
    slack = routing_file("channels:\n  c: {type: slack, webhook_url: 'http://x.example/y'}\n"
                         "routes: []\n").channels["c"]  # fmt: skip
    with pytest.raises(ValueError, match="over 200 characters"):
        enqueue(store, "r", slack, "x" * 201, {}, T0)


def test_a_digest_day_out_of_range_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    routing = tmp_path / "routes.yaml"
    routing.write_text("version: 1\nchannels:\n  c: {type: slack, webhook_url: 'http://x.example/y'}"
                       "\nroutes: []\ndigest: {channel: c, to: '#cs'}\n")  # fmt: skip
    cli = Cli(str(store.engine.url))
    said = cli.json("digest", "--day", "0001-01-02", "--file", routing, code=1)
    assert said == {"error": "day 0001-01-02 is out of range: give a day from 1900-01-01 to "
                             "9999-12-31"}  # fmt: skip
    assert "out of range" in cli.run("digest", "--day", "0001-01-02", "--file", routing, code=1).output  # fmt: skip
    with pytest.raises(ValueError, match="out of range"):
        queue_digests(store, routing_file("channels: {}\nroutes: []\n"), date(1, 1, 2))
    assert cli.json("digest", "--day", "9999-12-31", "--file", routing)["day"] == "9999-12-31"


def test_dispatch_routes_queues_digests_and_sends_in_one_run(
    store: Store, receivers: Callable[..., Receiver]
) -> None:
    hook = receivers(secret=SECRET)
    routing = routing_file(f"channels:\n  crm: {{type: webhook, url: '{hook.url()}', "
                           f"secret: {SECRET}}}\nroutes:\n  - {{name: all, channel: crm}}\n"
                           f"digest: {{channel: crm, to: owner}}\n{OWNERS}")  # fmt: skip
    raise_alert(store)
    done = dispatch(store, routing, DAY, now=T0, environ={})
    assert (done["file"], done["day"]) == ("routes.yaml", "2026-03-01")
    assert done["routed"]["queued"] == 1 and done["digests"]["queued"][0]["owner"] == "ana"
    assert (done["sent"]["sent"], done["sent"]["failed"]) == (2, 0)
    assert sorted(b["type"] for b in hook.bodies()) == ["alert", "digest"]
    again = dispatch(store, routing, DAY, now=T0 + timedelta(minutes=5), environ={})
    assert (again["routed"]["already"], again["digests"]["already"], again["sent"]["sent"]) == (
        1, ["ana"], 0)  # fmt: skip
    without = dispatch(store, routing, now=T0, environ={}, digests=False)
    assert without["digests"] is None and without["day"] == "2026-03-01"
    with pytest.raises(ValueError, match="out of range"):
        dispatch(store, routing, date(1, 1, 2), now=T0)


def test_the_commands_print_data_as_text_not_markup(store: Store, tmp_path: Path) -> None:
    with store.transaction() as connection:
        connection.execute(insert(deliveries).values(
            route="[bold]r", channel="webhook", subject="alert:1", target="[/x]", payload={},
            status="dead", attempts=5, last_error="HTTP 404: [/hooks/tenure] not found",
            created_at=T0))  # fmt: skip
    cli = Cli(str(store.engine.url))
    printed = cli.run("alerts", "dead").stdout
    assert "[/hooks/tenure]" in printed and "[bold]r" in printed and "[/x]" in printed
    routes = tmp_path / "routes.yaml"
    routes.write_text("version: 1\nchannels:\n  c: {type: slack, webhook_url: 'https://x.example/h'}\n"
                      "routes:\n  - {name: r, channel: c, to: ['[/x]', '#[bold]cs']}\n")  # fmt: skip
    assert "[/x], #[bold]cs" in cli.run("routes", "--file", routes).stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\n'[/x]': 1\n")
    assert "[/x]: unknown key" in cli.run("routes", "check", "--file", broken, code=1).output
