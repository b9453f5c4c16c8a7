"""Playbooks as code: files and their validation, sandboxed content, plays started by hand and by
triggers, advanced day by day (branches, exit and success criteria, automated steps), tasks
completed and skipped, and the commands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update

import tenure.cli.plays  # noqa: F401  (registers playbooks, plays and tasks on the app)
from conftest import Cli, copy_database, portfolio_url
from tenure.health.scoring import day_number, today
from tenure.ingest import import_file
from tenure.plays.content import ContentError, render, sample_context
from tenure.plays.facts import SignalHistory, record, signals_on
from tenure.plays.playbooks import (
    CHANNELS,
    KINDS,
    OWNER_ROLES,
    PlaybookError,
    PlaybookSet,
    cross_check,
    default_playbooks,
    load_playbooks,
    parse_playbook,
    parse_roles,
)
from tenure.plays.running import (
    ALERT_LOOKBACK_DAYS,
    NO_IN_APP,
    NO_ROUTES,
    OVERDUE_DAYS,
    PlayError,
    advance,
    check_day,
    content_context,
    inbox_only,
    play_with_tasks,
    reconcile,
    routed,
    run_day,
    start,
    start_from_alerts,
)
from tenure.plays.tasks import complete, list_plays, list_tasks, skip
from tenure.store import Store
from tenure.store.tables import alerts, deliveries, plays, tasks
from tenure.triggers.definitions import default_triggers
from tenure.triggers.live import open_alerts, run

DAY = date(2026, 3, 1)
ACCOUNT = "acct-00001"  # Meridian Learning: owner Daniel Okafor, a champion, sponsor, buyer...
NAMES = {"onboarding", "renewal", "usage-adoption", "expansion", "advocacy", "risk-save",
         "stakeholder-refresh"}  # fmt: skip


class Recorder:
    """A ``send`` that keeps what it was given and answers by channel."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.sent: list[dict[str, Any]] = []

    def __call__(self, task: dict[str, Any]) -> str:
        self.sent.append(task)
        if self.answers.get(task["channel"]) == "raise":
            raise RuntimeError("the mail server is down")
        return self.answers.get(task["channel"], "sent")


@pytest.fixture
def own(portfolio: Path, tmp_path: Path) -> Iterator[Store]:
    """A private copy of the portfolio, for tests that start plays."""
    copy_database(portfolio, tmp_path)
    store = Store(portfolio_url(tmp_path))
    yield store
    store.close()


# Playbook files ------------------------------------------------------------------------------


def test_the_seven_defaults_load_and_match_the_default_triggers() -> None:
    found = default_playbooks()
    assert {p.name for p in found.playbooks} == NAMES
    assert {p.kind for p in found.playbooks} == set(KINDS)
    steps = [s for p in found.playbooks for s in p.steps]
    assert all(3 <= len(p.steps) <= 6 for p in found.playbooks)
    assert {s.channel for s in steps} == set(CHANNELS)
    assert {s.owner_role for s in steps} == set(OWNER_ROLES)
    assert any(s.when for s in steps) and any(not s.automated for s in steps)
    assert all(len(p.digest) == 64 and p.exit_when for p in found.playbooks)
    assert cross_check(found, default_triggers()) == []  # every playbook named exists, and back
    named = {t.playbook for t in default_triggers().triggers if t.playbook}
    assert named == NAMES - {"advocacy"}  # advocacy starts by hand


HEAD = "name: p\nversion: 1\nkind: risk\nsteps:\n"
STEP = "  - name: a\n    day: 0\n    channel: call\n    title: Call\n    content: Hello\n"


@pytest.mark.parametrize(
    ("body", "line", "field", "says"),
    [
        (HEAD + STEP.replace("call", "fax"), 7, "steps[0].channel",
         "one of email, call, meeting, slack, in_app, letter, got str 'fax'"),
        (HEAD + STEP.replace("day: 0", "day: -2"), 6, "steps[0].day", "at least 0, got int -2"),
        (HEAD + STEP.replace("day: 0", "day: soon"), 6, "steps[0].day", "a whole number"),
        (HEAD + STEP + "    persona: champoin\n", 10, "steps[0].persona",
         "unknown persona 'champoin'; did you mean 'champion'?"),
        (HEAD + STEP.replace("Hello", "'{% if account %}Hi'"), 9, "steps[0].content",
         "template line 1: Unexpected end of template"),
        (HEAD + STEP + "    when: usage_trnd < 0\n", 10, "steps[0].when",
         "unknown name 'usage_trnd'; did you mean 'usage_trend_14d'?"),
        ("exit_when: seats >\n" + HEAD + STEP, 1, "exit_when", "expected a number"),
        (HEAD + STEP + STEP.replace("day: 0", "day: 3"), 10, "steps[1].name", "'a' is given twice"),
        (HEAD + STEP + "    automated: true\n", 10, "steps[0].automated",
         "a call step cannot carry itself out"),
        (HEAD + STEP + "    ownr_role: csm\n", 10, "steps[0].ownr_role", "did you mean 'owner_role'"),
        ("max_days: 2\n" + HEAD + STEP.replace("day: 0", "day: 5"), 1, "max_days",
         "2 ends the play before step 'a' (day 5)"),
        (HEAD + STEP.replace("Hello", "'{{ acount.name }}'"), 9, "steps[0].content",
         "unknown name 'acount' in the template; did you mean 'account'?"),
        (HEAD + STEP.replace("Hello", "'{{ account.nmae }}'"), 9, "steps[0].content",
         "'dict object' has no attribute 'nmae'"),
        (HEAD + STEP.replace("Hello", "'Hi {{ contact.name }}'") + "    persona: champion\n", 9,
         "steps[0].content", "when contact, why or renewal.next_renewal is none"),
        (HEAD + STEP.replace("Hello", "\"{{ ''.__class__.__mro__ }}\""), 9, "steps[0].content",
         "SecurityError: access to attribute '__class__' of 'str' object is unsafe"),
        (HEAD.replace("risk", "churn") + STEP, 3, "kind", "one of onboarding, renewal"),
        ("start_when: [Usage Decline]\n" + HEAD + STEP, 1, "start_when[0]", "lower-case letters"),
        (HEAD.replace("name: p", "name: " + "p" * 101) + STEP, 1, "name", "up to 100 lower-case"),
        (HEAD + STEP.replace("day: 0", "day: 100000000000"), 6, "steps[0].day",
         "a whole number of at most 3650, got 100000000000"),
        ("max_days: 4000\n" + HEAD + STEP, 1, "max_days", "at most 3650, got 4000"),
        (HEAD + STEP.replace("Hello", "\"{{ contacts.clear() or '' }}\""), 9, "steps[0].content",
         "SecurityError: access to attribute 'clear' of 'dict' object is unsafe"),
        (HEAD + STEP.replace("Hello", "'{{ 10 ** (10 ** 8) }}'"), 9, "steps[0].content",
         "SecurityError: a power with exponent 100000000 is too large"),
    ],
)  # fmt: skip
def test_errors_name_file_line_and_field(body: str, line: int, field: str, says: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook(body, "mine.yaml")
    error = caught.value
    assert (error.file, error.line, error.field) == ("mine.yaml", line, field), str(error)
    assert says in error.message, error.message


def test_a_directory_of_playbooks_with_roles(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(HEAD + STEP)
    (tmp_path / "notes.txt").write_text("not a playbook")
    (tmp_path / "roles.yaml").write_text(
        "account_manager:\n  default: Priya Shah\n  segments: {enterprise: Marcus Lee}\n"
        "  owners: {Daniel Okafor: Ana Gomez}\nexecutive:\n  default: Dana Whitfield\n"
    )
    found = load_playbooks(tmp_path)
    assert [p.name for p in found.playbooks] == ["p"] and found.get("p") is not None
    roles = found.roles
    assert roles.owner("csm", {"owner": "Daniel Okafor"}) == "Daniel Okafor"
    assert (
        roles.owner("account_manager", {"owner": "Daniel Okafor", "segment": "enterprise"})
        == "Ana Gomez"
    )
    assert (
        roles.owner("account_manager", {"owner": "Sofia Rossi", "segment": "enterprise"})
        == "Marcus Lee"
    )
    assert (
        roles.owner("account_manager", {"owner": "Sofia Rossi", "segment": "smb"}) == "Priya Shah"
    )
    assert roles.owner("executive", {}) == "Dana Whitfield"
    assert default_playbooks().roles.owner("executive", {"owner": "x"}) is None
    (tmp_path / "b.yml").write_text(HEAD + STEP)
    with pytest.raises(PlaybookError, match=r"b\.yml:1: name: 'p' is also the name of .*a\.yaml"):
        load_playbooks(tmp_path)
    with pytest.raises(PlaybookError, match=r"roles\.yaml:1: csm: the csm is always the account's"):
        parse_roles("csm: {default: x}\n")
    with pytest.raises(PlaybookError, match=r"roles\.yaml:2: executive\.segments\.smb: a name"):
        parse_roles("executive:\n  segments: {smb: 3}\n")
    with pytest.raises(PlaybookError, match=r"roles\.yaml:2: executive\.default: a name of up to "
                                             r"200 characters, got 201"):  # fmt: skip
        parse_roles("executive:\n  default: " + "x" * 201 + "\n")
    with pytest.raises(PlaybookError, match=r"roles\.yaml:3: executive\.owners\.Ann: a name of"):
        parse_roles("executive:\n  owners:\n    Ann: " + "y" * 300 + "\n")
    (tmp_path / "long").mkdir()  # the latest step allowed, and max_days defaults to it
    (tmp_path / "long" / "q.yaml").write_text(HEAD + STEP.replace("day: 0", "day: 3650"))
    longest = load_playbooks(tmp_path / "long").get("p")
    assert longest is not None and longest.max_days == 3650
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlaybookError, match="no playbook files"):
        load_playbooks(tmp_path / "empty")
    with pytest.raises(PlaybookError, match="not a directory of playbook files"):
        load_playbooks(tmp_path / "a.yaml")


def test_content_is_rendered_in_a_sandbox_with_strict_names() -> None:
    context = sample_context("champion")
    assert render("Hi {{ contact.name }} at {{ account.name }}", context) == \
        "Hi Avery Quinn at Example Co"  # fmt: skip
    assert render("{{ renewal.arr_in_force | money }} {{ -0.342 | signed }} {{ none | pct }}",
                  context) == "120,000 -34% n/a"  # fmt: skip
    for unsafe in ("{{ ''.__class__.__mro__ }}", "{{ account.__class__.__init__.__globals__ }}",
                   "{{ account.items.__self__.__class__ }}"):  # fmt: skip
        with pytest.raises(ContentError, match="SecurityError: access to attribute"):
            render(unsafe, context)
    with pytest.raises(ContentError, match="UndefinedError: 'dict object' has no attribute 'nope'"):
        render("{{ signals.nope }}", context)
    with pytest.raises(ContentError, match="unknown name 'os'"):
        render("{{ os.system('true') }}", context)


def test_templates_cannot_change_their_data_or_grow_without_bound() -> None:
    context = sample_context("champion")
    before = repr(context)
    for mutating in ("{{ contacts.clear() or '' }}", "{{ open_tickets.append(1) or '' }}",
                     "{{ account.update(name='x') or '' }}", "{{ contacts.champion.pop() }}"):  # fmt: skip
        with pytest.raises(ContentError, match=r"SecurityError: access to attribute .* is unsafe"):
            render(mutating, context)
    assert repr(context) == before
    for huge, says in (("{{ 10 ** (10 ** 8) }}", "a power with exponent 100000000 is too large"),
                       ("{{ 'x' * 10 ** 10 }}", "repeating 1 items 10000000000 times is longer"),
                       ("{{ [0] * 10 ** 9 }}", "repeating 1 items 1000000000 times"),
                       ("{{ (2 ** 1000) * (2 ** 1000) }}", "a product of more than 1024 bits"),
                       ("{{ ('x' * 99999) + ('x' * 2) }}", "joining 99999 and 2 items is longer"),
                       ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError")):  # fmt: skip
        with pytest.raises(ContentError, match=says):
            render(huge, context)
    assert render("{{ 2 ** 10 }} {{ 'ab' * 2 }} {{ 1.5 ** 2 }} {{ 'a' + 'b' }}", context) == \
        "1024 abab 2.25 ab"  # fmt: skip
    # each render reads its own copy: what one step's template sees cannot leak into the next
    shared = {"contacts": {"champion": [{"name": "Ann"}]}}
    assert render("{% set c = contacts %}{{ c.champion[0].name }}", shared) == "Ann"
    assert shared == {"contacts": {"champion": [{"name": "Ann"}]}}


# Plays --------------------------------------------------------------------------------------


def test_every_default_renders_for_a_real_account(portfolio: Path) -> None:
    store = Store(portfolio_url(portfolio))  # read only
    signals = signals_on(store, [ACCOUNT], DAY, default_playbooks().names())[ACCOUNT]
    facts = record(store, ACCOUNT, DAY)
    store.close()
    assert signals["days_to_renewal"] == 91 and signals["health_band"] in ("red", "yellow", "green")
    assert facts["account"]["name"] == "Meridian Learning"
    assert facts["contacts"]["champion"][0]["name"] == "Max Moore"
    for book in default_playbooks().playbooks:
        texts = []
        for step in book.steps:
            context = content_context(book, step, facts, signals, None, DAY, "Daniel Okafor")
            title, body = render(step.title, context), render(step.content, context)
            assert title and body and "{{" not in body and "None" not in title, (
                book.name,
                step.name,
            )
            texts.append(title + body)
            if context["contact"] is not None and "contact" in step.content:
                assert context["contact"]["name"] in title + body, (book.name, step.name)
        assert any("Meridian Learning" in t for t in texts), book.name


def test_a_signal_history_gives_what_each_day_gives(portfolio: Path) -> None:
    """make demo runs 90 days of plays on one batch computation; each day's fields must be
    exactly what the daily run reads on that day."""
    store = Store(portfolio_url(portfolio))  # read only
    names = default_playbooks().names()
    history = SignalHistory.compute(store, DAY - timedelta(days=8), DAY, names)
    for day in (DAY - timedelta(days=8), DAY):
        known = history.by_day[day_number(day)]
        accounts = sorted(known)[:40]
        assert len(accounts) == 40 and history(store, accounts, day, names) == signals_on(
            store, accounts, day, names)  # fmt: skip
    earlier = DAY - timedelta(days=30)  # outside the range: read as the daily run reads it
    assert history(store, [ACCOUNT], earlier, names) == signals_on(store, [ACCOUNT], earlier, names)
    store.close()


def test_a_play_started_by_hand(own: Store) -> None:
    play = start(own, "risk-save", ACCOUNT, DAY, "hand:ana")
    book = default_playbooks().get("risk-save")
    assert book is not None and play["status"] == "running" and play["alert_id"] is None
    assert play["started_by"] == "hand:ana" and play["started_day"] == DAY
    baseline = play["baseline"]
    assert baseline["day"] == "2026-03-01" and baseline["health_band"] in ("red", "yellow", "green")
    assert baseline["signals"]["days_to_renewal"] == 91 and baseline["signals"]["seats"] == 44
    assert baseline["health_score"] == baseline["signals"]["health_score"] is not None
    tasks = play["tasks"]
    assert [t["step"] for t in tasks] == [s.name for s in book.steps]
    for task, step in zip(tasks, book.steps, strict=True):
        assert task["due_day"] == DAY + timedelta(days=step.day)
        assert task["owner"] == ("Daniel Okafor" if step.owner_role == "csm" else None)
        assert task["status"] == ("pending" if step.day else "open")
        assert task["automated"] == (step.channel in ("email", "slack", "in_app"))
    assert {t["contact_id"] for t in tasks if t["persona"] == "champion"} == {"con-00001-01"}
    brief, call = tasks[0], tasks[1]
    assert brief["step"] == "brief-csm" and brief["note"] == NO_ROUTES  # Slack, no routes: open
    assert "Save play started by hand" in brief["content"] and "21,120" in brief["content"]
    assert call["title"] == "Save call with Max Moore (Meridian Learning)"
    assert play_with_tasks(own, play["play_id"]) == play
    with pytest.raises(PlayError, match=r"risk-save is already running on acct-00001 \(play \d+"):
        start(own, "risk-save", ACCOUNT, DAY)
    with pytest.raises(PlayError, match="no account 'acct-nope'"):
        start(own, "risk-save", "acct-nope", DAY)
    with pytest.raises(PlayError, match="no playbook 'risk-sav'; did you mean 'risk-save'"):
        start(own, "risk-sav", ACCOUNT, DAY)


def test_alerts_start_their_playbooks_once(own: Store) -> None:
    raised = run(own, default_triggers(), DAY)
    assert raised
    first = start_from_alerts(own, DAY)
    started, skipped = first["started"], first["skipped"]
    by_id = {a["alert_id"]: a for a in open_alerts(own, None, 10_000)}
    books = default_playbooks()
    wanted = [
        (i, n) for i, a in by_id.items() for n in books.for_alert(a["trigger"], a["playbook"])
    ]
    assert started and len(started) + len(skipped) == len(wanted) < len(raised)  # payment-failure
    for play in started:
        alert = by_id[play["alert_id"]]
        assert play["started_by"] == f"trigger:{alert['trigger']}" and play["started_day"] == DAY
        assert play["account_id"] == alert["account_id"]
        assert (play["alert_id"], play["playbook"]) in wanted
    # an account with two alerts for one playbook gets one play; the other says why
    assert all("already running" in s["reason"] for s in skipped)
    risky = next(p for p in started if p["playbook"] == "risk-save")
    brief = risky["tasks"][0]
    assert (
        brief["step"] == "brief-csm"
        and risky["started_by"].removeprefix("trigger:") in brief["content"]
    )
    again = start_from_alerts(own, DAY)
    assert again["started"] == []
    assert all(s["reason"].startswith("already started (play ") or "already running" in s["reason"]
               for s in again["skipped"])  # fmt: skip
    assert len(list_plays(own, limit=1000)) == len(started)


BOOKS = {
    "calendar.yaml": """name: calendar
version: 1
kind: adoption
exit_when: day_of_month >= 4
steps:
  - {name: kickoff, day: 0, channel: call, persona: champion, title: "Call {{ contact.name if contact else 'them' }}", content: "{{ why.trigger if why else 'by hand' }}"}
  - {name: tuesday-email, day: 1, channel: email, persona: champion, when: weekday = 2, title: Hello, content: "Hi {{ contact.name if contact else 'team' }}"}
  - {name: monday-only, day: 1, channel: email, when: weekday = 1, title: Never, content: Never}
  - {name: nudge, day: 1, channel: in_app, persona: end_user, title: Tip, content: A tip}
  - {name: slack-note, day: 1, channel: slack, title: Note, content: "Day {{ day }}"}
  - {name: late, day: 10, channel: meeting, owner_role: account_manager, title: Late, content: Late}
""",
    "succeed.yaml": """name: succeed
version: 1
kind: risk
start_when: [t-success]
success_when: day_of_month = 3
steps:
  - {name: only, day: 0, channel: meeting, owner_role: executive, title: Meet, content: Meet}
  - {name: later, day: 20, channel: call, title: Later, content: Later}
""",
    "expire.yaml": """name: expire
version: 1
kind: renewal
success_when: month = 12
max_days: 1
steps:
  - {name: only, day: 0, channel: letter, title: Write, content: "{{ signals.nps_trend + 1 }}"}
""",
    "finish.yaml": """name: finish
version: 1
kind: advocacy
steps:
  - {name: only, day: 0, channel: email, automated: false, title: Thank, content: Thanks}
""",
    "roles.yaml": "account_manager: {default: Priya Shah}\nexecutive: {default: Dana Whitfield}\n",
}
MONDAY = date(2026, 3, 2)


@pytest.fixture
def books(tmp_path: Path) -> PlaybookSet:
    folder = tmp_path / "books"
    folder.mkdir()
    for name, text in BOOKS.items():
        (folder / name).write_text(text)
    return load_playbooks(folder)


def _alert(store: Store, trigger: str, playbook: str | None, day: date = MONDAY) -> None:
    with store.transaction() as connection:
        connection.execute(insert(alerts).values(
            trigger=trigger, account_id=ACCOUNT, day=day, severity="high", direction="risk",
            playbook=playbook, condition="seats > 0", values={"seats": 44}, status="open",
            raised_at=datetime(2026, 3, 2, 6), triggers_digest="test"))  # fmt: skip


def test_advance_branches_sends_ends_plays_and_people_finish_tasks(
    own: Store, books: PlaybookSet
) -> None:
    for name in ("calendar", "expire", "finish"):
        _alert(own, f"t-{name}", name)
    _alert(own, "t-success", None)  # the succeed playbook's start_when names it
    _alert(own, "t-closed", "finish")
    with own.transaction() as connection:  # a closed alert starts nothing
        connection.execute(
            update(alerts).where(alerts.c.trigger == "t-closed").values(status="closed")
        )
    send = Recorder({"email": "sent", "in_app": "queued", "slack": "raise"})
    started = start_from_alerts(own, MONDAY, playbooks=books, send=send)
    assert sorted(p["playbook"] for p in started["started"]) == ["calendar", "expire", "finish",
                                                                 "succeed"]  # fmt: skip
    assert started["skipped"] == [] and send.sent == []  # nothing automated due on day 0
    ids = {p["playbook"]: p["play_id"] for p in started["started"]}
    steps = {(t["play_id"], t["step"]): t for t in list_tasks(own, status=None, account=ACCOUNT)}
    kickoff = steps[(ids["calendar"], "kickoff")]
    assert kickoff["title"] == "Call Max Moore" and kickoff["content"] == "t-calendar"
    assert steps[(ids["calendar"], "late")]["owner"] == "Priya Shah"  # roles.yaml
    assert steps[(ids["succeed"], "only")]["owner"] == "Dana Whitfield"
    expire = steps[(ids["expire"], "only")]  # renders at run time: nps_trend is missing here
    assert expire["status"] == "open" and expire["note"].startswith(
        "step 'only' could not be rendered: TypeError: unsupported operand")  # fmt: skip

    done = complete(own, kickoff["task_id"], "Called Max")
    assert done["status"] == "done" and done["note"] == "Called Max" and done["done_at"]
    with pytest.raises(PlayError, match=rf"task {kickoff['task_id']} is already done on 20\d\d-"):
        complete(own, kickoff["task_id"])
    with pytest.raises(PlayError, match=rf"task {kickoff['task_id']} is already done"):
        skip(own, kickoff["task_id"], "no time")
    later = steps[(ids["succeed"], "later")]
    with pytest.raises(PlayError, match="say why the task is skipped"):
        skip(own, later["task_id"], "  ")
    skipped = skip(own, later["task_id"], "covered in the meeting")  # not due yet: allowed
    assert skipped["status"] == "skipped" and skipped["note"] == "covered in the meeting"
    with pytest.raises(PlayError, match="no task 999999"):
        complete(own, 999_999)
    complete(own, steps[(ids["finish"], "only")]["task_id"])

    tuesday = advance(own, MONDAY + timedelta(days=1), playbooks=books, send=send)
    moved = {t["step"]: t for t in tuesday["tasks"]}
    assert set(moved) == {"tuesday-email", "monday-only", "nudge", "slack-note"}
    assert moved["tuesday-email"]["status"] == "sent"
    assert moved["monday-only"]["status"] == "skipped"  # its branch did not hold
    assert moved["monday-only"]["note"] == "skipped: weekday = 1 did not hold on 2026-03-03"
    assert moved["nudge"]["status"] == "queued"
    assert moved["slack-note"]["status"] == "open"  # the send broke: a person takes it over
    assert moved["slack-note"]["note"] == "not sent: RuntimeError: the mail server is down"
    assert [t["step"] for t in send.sent] == ["tuesday-email", "nudge", "slack-note"]
    email = send.sent[0]
    assert email["channel"] == "email" and email["contact_id"] == "con-00001-01"
    assert email["content"] == "Hi Max Moore" and email["owner"] == "Daniel Okafor"
    assert email["playbook"] == "calendar" and email["due_day"] == "2026-03-03"
    assert {"task_id", "account_id", "title", "persona", "owner_role"} <= set(email)
    ended = {e["playbook"]: (e["status"], e["outcome"]) for e in tuesday["ended"]}
    assert ended == {
        "succeed": ("succeeded", "success_when held: day_of_month = 3"),
        "expire": ("failed", "success_when not met within 1 days"),
        "finish": ("completed", "every step done, sent or skipped"),
    }
    wednesday = advance(own, MONDAY + timedelta(days=2), playbooks=books, send=send)
    assert wednesday["tasks"] == [] and wednesday["ended"] == [
        {"play_id": ids["calendar"], "playbook": "calendar", "account_id": ACCOUNT,
         "status": "exited", "outcome": "exit_when held: day_of_month >= 4"}]  # fmt: skip
    late = list_tasks(own, play_id=ids["calendar"], status="cancelled")
    assert [(t["step"], t["note"]) for t in late] == [
        ("late", "cancelled: the play exited on 2026-03-04")]  # fmt: skip
    statuses = {p["playbook"]: (p["status"], p["ended_day"]) for p in list_plays(own)}
    assert statuses["calendar"] == ("exited", date(2026, 3, 4))
    still = [(t["playbook"], t["step"]) for t in list_tasks(own, account=ACCOUNT)]
    assert sorted(still) == [("calendar", "slack-note"), ("expire", "only"), ("succeed", "only")]
    again = start_from_alerts(own, MONDAY, playbooks=books, send=send)
    assert again["started"] == [] and len(again["skipped"]) == 4


# Commands -----------------------------------------------------------------------------------


def test_playbook_commands(tmp_path: Path, sqlite_cli: Cli) -> None:
    listed = sqlite_cli.json("playbooks")
    assert {p["name"] for p in listed["playbooks"]} == NAMES
    renewal = next(p for p in listed["playbooks"] if p["name"] == "renewal")
    assert "renewal-window-90" in renewal["triggers"] and len(renewal["steps"]) == 6
    assert sqlite_cli.json("playbooks", "check") == {"directory": "defaults", "valid": True,
                                                     "playbooks": 7, "warnings": []}  # fmt: skip
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "mine.yaml").write_text(HEAD + STEP + "    when: usage_trnd < 1\n")
    error = sqlite_cli.json("playbooks", "check", "--dir", bad, code=1)["error"]
    assert error.startswith(f"{bad / 'mine.yaml'}:10: steps[0].when: unknown name 'usage_trnd'")
    (bad / "mine.yaml").write_text(HEAD.replace("steps:", "start_when: [nobody]\nsteps:") + STEP)
    checked = sqlite_cli.json("playbooks", "check", "--dir", bad)
    assert checked["valid"] and any("start_when names 'nobody'" in w for w in checked["warnings"])
    assert any(
        "names playbook 'risk-save', which is not in force" in w for w in checked["warnings"]
    )
    assert "1 playbooks, valid" in sqlite_cli.run("playbooks", "check", "--dir", bad).output


def test_play_and_task_commands(portfolio: Path, tmp_path: Path) -> None:
    copy_database(portfolio, tmp_path)
    cli = Cli(portfolio_url(tmp_path))
    play = cli.json("plays", "start", "renewal", ACCOUNT, "--day", "2026-03-01", "--by", "ana")[
        "play"]  # fmt: skip
    assert play["started_by"] == "hand:ana" and len(play["tasks"]) == 6
    again = cli.json("plays", "start", "renewal", ACCOUNT, "--day", "2026-03-01", code=1)
    assert again["error"].startswith("renewal is already running on acct-00001")
    assert cli.json("plays", "start", "nope", ACCOUNT, code=1)["error"].startswith(
        "no playbook 'nope'")  # fmt: skip
    listed = cli.json("plays", "--status", "running", "--account", ACCOUNT)["plays"]
    assert [p["play_id"] for p in listed] == [play["play_id"]] and "baseline" not in listed[0]
    assert listed[0]["tasks"] == {"open": 1, "pending": 5}
    assert cli.json("plays", "--status", "bogus", code=2)["error"].startswith("--status must be")
    mine = cli.json("tasks", "--owner", "Daniel Okafor")["tasks"]
    assert [t["step"] for t in mine] == ["renewal-heads-up"] and mine[0]["playbook"] == "renewal"
    assert mine[0]["note"] == NO_ROUTES
    due = cli.json("tasks", "--status", "pending", "--due-by", "2026-03-11")["tasks"]
    assert [t["step"] for t in due] == ["value-recap", "value-review"]
    roles = cli.json("tasks", "--status", "all", "--role", "account_manager")["tasks"]
    assert [t["step"] for t in roles] == ["proposal", "close"]
    done = cli.json("tasks", "complete", str(mine[0]["task_id"]), "--note", "Posted")["task"]
    assert done["status"] == "done" and done["note"] == "Posted"
    twice = cli.json("tasks", "complete", str(mine[0]["task_id"]), code=1)["error"]
    assert twice.startswith(f"task {mine[0]['task_id']} is already done on ")
    skipped = cli.json("tasks", "skip", str(due[0]["task_id"]), "--reason", "Sent by hand")["task"]
    assert skipped["status"] == "skipped" and skipped["note"] == "Sent by hand"
    assert cli.json("tasks", "skip", "99999", "--reason", "x", code=1) == {"error": "no task 99999"}
    assert cli.json("tasks", "--status", "later", code=2)["error"].startswith("--status must be")
    assert cli.json("tasks", "--role", "ceo", code=2)["error"].startswith("--role must be one of")
    advanced = cli.json("plays", "advance", "--day", "2026-03-11")  # no alerts on that day
    assert advanced["started"] == [] and advanced["not_started"] == [] and advanced["ended"] == []
    assert [t["step"] for t in advanced["tasks"]] == ["value-review"]  # value-recap was skipped
    titles = [
        t["title"] for t in cli.json("tasks", "--account", ACCOUNT, "--status", "all")["tasks"]
    ]
    assert "Value review with Lena Smith (Meridian Learning)" in titles
    text = cli.run("tasks", "--account", ACCOUNT, "--status", "all").output
    assert text.startswith("6 tasks.") and "┃ id" in text  # the table (its width varies)
    assert "1 plays." in cli.run("plays").output


def test_a_play_on_every_backend(store: Store, tmp_path: Path) -> None:
    """Start, advance and complete on SQLite and PostgreSQL (the advisory lock, JSON baseline,
    dates) with a three-file record."""
    files = {
        "accounts": "account_id,name,segment,owner,created_at\n"
                    "acct-1,Initech,enterprise,Lee Chen,2025-01-01\n",
        "contacts": "contact_id,account_id,email,name,persona,status,created_at\n"
                    "c-1,acct-1,joan@initech.example,Joan Park,champion,active,2025-01-02\n"
                    "c-2,acct-1,sam@initech.example,Sam Ode,executive_sponsor,left,2025-01-02\n",
        "subscriptions": "subscription_id,account_id,plan,seats,mrr,arr,start_date,renewal_date,"
                         "status\ns-1,acct-1,Pro,10,500,6000,2025-01-01,2026-06-01,active\n",
    }  # fmt: skip
    for kind, text in files.items():
        path = tmp_path / f"{kind}.csv"
        path.write_text(text)
        assert import_file(store, kind, path).rejected == 0
    send = Recorder({})
    play = start(store, "stakeholder-refresh", "acct-1", DAY, "hand", send=send)
    assert play["baseline"]["signals"]["seats"] == 10
    heads_up = play["tasks"][0]
    assert heads_up["status"] == "sent" and "champion: Joan Park" in send.sent[0]["content"]
    sponsor = next(t for t in play["tasks"] if t["step"] == "sponsor-re-engagement")
    assert sponsor["contact_id"] is None and "the new executive sponsor" in sponsor["content"]
    moved = advance(store, DAY + timedelta(days=2), send=send)
    assert [(t["step"], t["status"]) for t in moved["tasks"]] == [("find-new-owner", "open")]
    assert complete(store, moved["tasks"][0]["task_id"])["status"] == "done"
    with store.engine.connect() as connection:
        assert connection.execute(plays.select()).one().status == "running"
    with store.transaction() as connection:  # the heads-up was queued, and its delivery died
        connection.execute(update(tasks).where(tasks.c.task_id == heads_up["task_id"])
                           .values(status="queued"))  # fmt: skip
        connection.execute(insert(deliveries).values(
            route="plays", channel="slack", subject=f"task:{heads_up['task_id']}", target="#cs",
            payload={}, status="dead", attempts=5, last_error="boom",
            created_at=datetime(2026, 3, 1, 9)))  # fmt: skip
    assert [(r["task_id"], r["status"], r["note"]) for r in reconcile(store)] == [
        (heads_up["task_id"], "open", "delivery failed: boom")]  # fmt: skip


def test_the_daily_run_starts_plays_from_recent_alerts(own: Store, books: PlaybookSet) -> None:
    """Alerts raised before the day (on import, by a catch-up run, on a day the run missed)
    start their plays on the day; too old ones, started ones and covered ones do not."""
    _alert(own, "t-calendar", "calendar", MONDAY - timedelta(days=3))
    _alert(own, "t-finish", "finish", MONDAY - timedelta(days=ALERT_LOOKBACK_DAYS + 1))  # too old
    _alert(own, "t-succeed", "succeed", MONDAY - timedelta(days=2))
    with own.transaction() as connection:  # succeed ran (by hand) after its alert, and ended
        connection.execute(insert(plays).values(
            playbook="succeed", playbooks_digest="0" * 64, account_id=ACCOUNT,
            started_day=MONDAY - timedelta(days=2), started_by="hand", status="succeeded",
            ended_day=MONDAY - timedelta(days=1), baseline={},
            started_at=datetime(2026, 2, 28, 9)))  # fmt: skip
    first = run_day(own, MONDAY, playbooks=books, send=Recorder({}))
    assert [p["playbook"] for p in first["started"]] == ["calendar"]
    play = first["started"][0]
    assert play["started_day"] == MONDAY and play["started_by"] == "trigger:t-calendar"
    assert play["baseline"]["day"] == "2026-03-02" and play["baseline"]["alert_day"] == "2026-02-27"
    assert [(s["playbook"], s["reason"]) for s in first["not_started"]] == [
        ("succeed", "succeed ran on acct-00001 after the alert (play 1, succeeded on 2026-03-01)")]  # fmt: skip
    assert {"ended", "tasks", "problems", "reconciled"} <= set(first)
    again = run_day(own, MONDAY + timedelta(days=1), playbooks=books, send=Recorder({}))
    assert again["started"] == [] and [s["reason"] for s in again["not_started"]] == [
        f"already started (play {play['play_id']})",
        "succeed ran on acct-00001 after the alert (play 1, succeeded on 2026-03-01)"]  # fmt: skip
    narrow = start_from_alerts(own, MONDAY, playbooks=books, lookback=0)  # only the day's alerts
    assert narrow == {"day": "2026-03-02", "started": [], "skipped": []}


def test_in_app_steps_stay_open_for_a_person_without_an_in_app_channel(
    own: Store, books: PlaybookSet
) -> None:
    assert routed(own, None) is inbox_only
    assert inbox_only({"channel": "in_app"}) == NO_IN_APP
    assert inbox_only({"channel": "email"}) == NO_ROUTES
    play = start(own, "calendar", ACCOUNT, MONDAY, playbooks=books)
    moved = {
        t["step"]: t for t in advance(own, MONDAY + timedelta(days=1), playbooks=books)["tasks"]
    }
    assert moved["nudge"]["status"] == "open" and moved["nudge"]["note"] == NO_IN_APP
    assert NO_IN_APP == "in-app message to deliver: no in-app channel is connected"
    listed = [t["step"] for t in list_tasks(own, play_id=play["play_id"])]  # the default: open
    assert "nudge" in listed


MAIL = """name: mail
version: 1
kind: adoption
steps:
  - {name: first, day: 0, channel: email, title: First, content: First}
  - {name: second, day: 0, channel: email, title: Second, content: Second}
  - {name: soon, day: 2, channel: email, title: Soon, content: Soon}
  - {name: today, day: 6, channel: email, title: Today, content: Today}
"""


def test_plays_run_on_the_day_and_late_steps_wait_for_a_person(own: Store, tmp_path: Path) -> None:
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "mail.yaml").write_text(MAIL)
    mail = load_playbooks(tmp_path / "mail")
    now = today()
    with pytest.raises(PlayError, match=rf"{now + timedelta(days=5)} is in the future \(today is "
                                        rf"{now}\): plays run on the day"):  # fmt: skip
        start(own, "mail", ACCOUNT, now + timedelta(days=5), playbooks=mail)
    for refused in (start_from_alerts, advance, run_day):
        with pytest.raises(PlayError, match="is in the future"):
            refused(own, date(9999, 12, 31), playbooks=mail)
    with pytest.raises(PlayError, match="1969-12-31 is out of range: plays run from 1970-01-01"):
        start(own, "mail", ACCOUNT, date(1969, 12, 31), playbooks=mail)
    check_day(now + timedelta(days=1))  # a time zone ahead of UTC
    assert list_plays(own) == []

    queued = Recorder({"email": "queued"})
    play = start(own, "mail", ACCOUNT, MONDAY, playbooks=mail, send=queued)
    first, second = play["tasks"][0], play["tasks"][1]
    assert (first["status"], first["note"]) == (
        "queued", f"queued: delivery task:{first['task_id']} (being retried)")  # fmt: skip
    assert reconcile(own) == []  # nothing was delivered yet
    with own.transaction() as connection:  # the first dies, the second goes out on a retry
        for task, status, error in ((first, "dead", "550 mailbox unavailable"),
                                    (second, "sent", None)):  # fmt: skip
            connection.execute(insert(deliveries).values(
                route="plays", channel="email", subject=f"task:{task['task_id']}",
                target="max@example.com", payload={}, status=status, attempts=5,
                last_error=error, created_at=datetime(2026, 3, 2, 9)))  # fmt: skip

    send = Recorder({"email": "sent"})
    late = MONDAY + timedelta(days=6)  # the days between were missed
    moved = advance(own, late, playbooks=mail, send=send)
    assert [(r["step"], r["status"], r["note"]) for r in moved["reconciled"]] == [
        ("first", "open", "delivery failed: 550 mailbox unavailable"), ("second", "sent", None)]  # fmt: skip
    assert [(t["step"], t["status"], t["note"]) for t in moved["tasks"]] == [
        ("soon", "open", f"overdue by {6 - 2} days: not sent automatically"),
        ("today", "sent", None)]  # fmt: skip
    assert OVERDUE_DAYS < 6 - 2 and [t["step"] for t in send.sent] == ["today"]
    with own.engine.connect() as connection:
        reopened = connection.execute(
            select(tasks).where(tasks.c.task_id == first["task_id"])).one()  # fmt: skip
    assert reopened.status == "open" and reopened.done_at is None
    assert [t["step"] for t in list_tasks(own, play_id=play["play_id"])] == ["first", "soon"]
    assert advance(own, late, playbooks=mail, send=send)["reconciled"] == []  # once


def test_data_is_printed_as_it_is_not_as_markup(sqlite_store: Store, sqlite_url: str,
                                                 tmp_path: Path) -> None:  # fmt: skip
    odd = "acct-[/x]"
    files = {
        "accounts": f"account_id,name,segment,owner,created_at\n{odd},[bold]Odd[/bold] Co,smb,"
                    "[red]Lee[/red],2025-01-01\n",
        "contacts": "contact_id,account_id,email,name,persona,status,created_at\n"
                    f"c-1,{odd},joan@odd.example,Joan [/] Park,champion,active,2025-01-02\n",
    }  # fmt: skip
    for kind, text in files.items():
        path = tmp_path / f"{kind}.csv"
        path.write_text(text)
        assert import_file(sqlite_store, kind, path).rejected == 0
    cli = Cli(sqlite_url)
    started = cli.run("plays", "start", "advocacy", odd, "--day", "2026-03-01").output
    assert f"advocacy on {odd} from 2026-03-01." in started
    assert "[red]" in started  # the owner as it is, not read as markup (its cell may wrap)
    assert odd in cli.run("plays").output
    assert odd in cli.run("tasks", "--status", "all").output
    again = cli.run("plays", "start", "advocacy", odd, "--day", "2026-03-01", code=1).output
    assert f"advocacy is already running on {odd}" in again
    assert f"no account '{odd}[/y]'" in cli.run("plays", "start", "advocacy", odd + "[/y]",
                                                "--day", "2026-03-01", code=1).output  # fmt: skip
    assert odd in cli.run("plays", "advance", "--day", "2026-03-08").output  # it exits: no ARR
    far = cli.json("plays", "start", "advocacy", odd, "--day", "9999-12-31", code=1)["error"]
    assert far.startswith("9999-12-31 is in the future (today is ") and "\n" not in far
    assert cli.json("plays", "advance", "--day", "9999-12-31", code=1)["error"].startswith(
        "9999-12-31 is in the future")  # fmt: skip
