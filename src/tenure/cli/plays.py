"""``tenure playbooks``, ``tenure plays`` and ``tenure tasks`` (tenure.plays does the work)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tenure.cli import DbOption, JsonOption, app, emit_json, fail, opened, out
from tenure.settings import load as load_settings

if TYPE_CHECKING:
    from tenure.app import Tenure
    from tenure.plays.playbooks import PlaybookSet
    from tenure.plays.running import Send
    from tenure.triggers.definitions import TriggerSet

playbooks_app = typer.Typer(help="Playbooks as code: list and check them.")
app.add_typer(playbooks_app, name="playbooks")
plays_app = typer.Typer(help="Plays: playbooks running on accounts; start and advance them.")
app.add_typer(plays_app, name="plays")
tasks_app = typer.Typer(help="The tasks of plays: list them, complete or skip them.")
app.add_typer(tasks_app, name="tasks")

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", show_default=False,
                 help="A directory of playbook files (default: TENURE_PLAYBOOKS, else the shipped "
                      "playbooks)."),
]  # fmt: skip
DayOption = Annotated[
    datetime | None,
    typer.Option("--day", formats=["%Y-%m-%d"], show_default=False,
                 help="The day (default: today)."),
]  # fmt: skip


def _playbooks(directory: Path | None, as_json: bool, setting: str | None = None) -> PlaybookSet:
    from tenure.plays.playbooks import PlaybookError, load_playbooks, playbooks_in_force

    try:
        if directory is not None:
            return load_playbooks(directory)
        return playbooks_in_force(load_settings().playbooks if setting is None else setting)
    except PlaybookError as err:
        raise fail(str(err), as_json) from None


def _triggers(as_json: bool) -> TriggerSet:
    """The triggers in force (to show which start each playbook)."""
    from tenure.triggers.definitions import TriggerError
    from tenure.triggers.live import triggers_in_force

    try:
        return triggers_in_force(load_settings().triggers)
    except TriggerError as err:
        raise fail(str(err), as_json) from None


def _day(day: datetime | None) -> date:
    from tenure.health.scoring import today

    return day.date() if day else today()


def _send(tenure: Tenure, as_json: bool) -> Send:
    """How automated steps are carried out: email and Slack on the routing file's channels
    (TENURE_ROUTES); what no channel carries stays open for a person, with a note saying why."""
    from tenure.plays.running import routed
    from tenure.routing.routes import RoutingError, load_routes

    try:
        routing = load_routes(tenure.settings.routes) if tenure.settings.routes else None
    except RoutingError as err:
        raise fail(str(err), as_json) from None
    return routed(tenure.store, routing)


# tenure playbooks ----------------------------------------------------------------------------


@playbooks_app.callback(invoke_without_command=True)
def playbooks_list(
    ctx: typer.Context, directory: DirOption = None, as_json: JsonOption = False
) -> None:
    """The playbooks in force, each with its steps and the triggers that start it."""
    from tenure.plays.playbooks import triggering

    if ctx.invoked_subcommand is not None:
        return
    found = _playbooks(directory, as_json)
    starts = triggering(found, _triggers(as_json))
    if as_json:
        emit_json({"directory": found.origin, "roles": found.roles.to_dict(),
                   "playbooks": [p.to_dict() | {"triggers": starts[p.name]}
                                 for p in found.playbooks]})  # fmt: skip
        return
    table = Table(title=f"{len(found.playbooks)} playbooks ({found.origin})", title_justify="left")
    for column in ("playbook", "kind", "started by", "steps", "ends"):
        table.add_column(column)
    for p in found.playbooks:
        steps = "\n".join(
            f"day {s.day}: {s.channel}{' (auto)' if s.automated else ''}, {s.owner_role}"
            f"{' → ' + s.persona if s.persona else ''}{' if ' + s.when.text if s.when else ''}"
            for s in p.steps
        )
        ends = "\n".join(f"{k}: {c.text}" for k, c in
                         (("exit", p.exit_when), ("success", p.success_when)) if c) + \
            f"\nmax {p.max_days} days"  # fmt: skip
        table.add_row(p.name, p.kind, ", ".join(starts[p.name]) or "by hand", steps, ends.strip())
    out.print(table, markup=False)


@playbooks_app.command("check")
def playbooks_check(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Validate a directory of playbooks (every error names file, line and field) and compare
    it with the triggers in force."""
    from tenure.plays.playbooks import cross_check

    found = _playbooks(directory, as_json)
    warnings = cross_check(found, _triggers(as_json))
    if as_json:
        emit_json({"directory": found.origin, "valid": True, "playbooks": len(found.playbooks),
                   "warnings": warnings})  # fmt: skip
        return
    out.print(f"{found.origin}: {len(found.playbooks)} playbooks, valid.", markup=False)
    for warning in warnings:
        out.print(f"Warning: {warning}", markup=False)


# tenure plays --------------------------------------------------------------------------------


@plays_app.callback(invoke_without_command=True)
def plays_list(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(
        help="running, succeeded, exited, completed, failed, or all.")] = "all",
    account: Annotated[str | None, typer.Option(help="One account's plays.", show_default=False)] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most plays to list.")] = 100,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Plays newest first: the playbook, the account, how it started, its status and tasks."""
    from tenure.plays.running import PLAY_STATUSES
    from tenure.plays.tasks import list_plays

    if ctx.invoked_subcommand is not None:
        return
    if status not in (*PLAY_STATUSES, "all"):
        raise fail(f"--status must be one of {', '.join(PLAY_STATUSES)} or all, got {status!r}",
                   as_json, code=2)  # fmt: skip
    with opened(db, as_json) as tenure:
        rows = list_plays(tenure.store, None if status == "all" else status, account, limit)
    if as_json:
        emit_json({"plays": rows})
        return
    out.print(f"{len(rows)} plays.")
    render_plays(rows)


def render_plays(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = Table(title_justify="left")
    for column in ("id", "playbook", "account", "started", "by", "status", "tasks", "outcome"):
        table.add_column(column)
    for p in rows:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(p["tasks"].items()))
        table.add_row(str(p["play_id"]), p["playbook"], p["account_id"], str(p["started_day"]),
                      p["started_by"], p["status"] + (f" {p['ended_day']}" if p["ended_day"] else ""),
                      counts, p["outcome"] or "")  # fmt: skip
    out.print(table, markup=False)


@plays_app.command("start")
def plays_start(
    playbook: Annotated[str, typer.Argument(help="The playbook (tenure playbooks lists them).")],
    account: Annotated[str, typer.Argument(help="The account id.")],
    day: DayOption = None,
    by: Annotated[str | None, typer.Option("--by", show_default=False,
                                           help="Who starts it (recorded as hand:WHO).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Start a playbook on an account by hand: its tasks, with due days, owners and contacts
    (steps due today are carried out at once)."""
    from tenure.plays.running import PlayError, start

    with opened(db, as_json) as tenure:
        found = _playbooks(None, as_json, tenure.settings.playbooks)
        try:
            play = start(tenure.store, playbook, account, _day(day), f"hand:{by}" if by else "hand",
                         playbooks=found, send=_send(tenure, as_json))  # fmt: skip
        except PlayError as err:
            raise fail(str(err), as_json) from None
    if as_json:
        emit_json({"play": play})
        return
    out.print(f"Play {play['play_id']}: {play['playbook']} on {play['account_id']} from "
              f"{play['started_day']}.", markup=False)  # fmt: skip
    render_tasks(play["tasks"])


@plays_app.command("advance")
def plays_advance(day: DayOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Run the plays for a day (schedule it daily, after `tenure triggers run`): start the
    playbooks named by open alerts of the last 7 days not yet acted on, end plays whose exit or
    success criteria hold, and carry out the steps due."""
    from tenure.plays.running import PlayError, run_day

    on = _day(day)
    with opened(db, as_json) as tenure:
        found = _playbooks(None, as_json, tenure.settings.playbooks)
        try:
            moved = run_day(tenure.store, on, playbooks=found, send=_send(tenure, as_json))
        except PlayError as err:
            raise fail(str(err), as_json) from None
    if as_json:
        emit_json(moved)
        return
    out.print(f"{on}: {len(moved['started'])} plays started from alerts, "
              f"{len(moved['tasks'])} steps came due, {len(moved['ended'])} plays ended.")  # fmt: skip
    for p in moved["started"]:
        out.print(f"  started {p['playbook']} on {p['account_id']} (play {p['play_id']}, "
                  f"{p['started_by']})", markup=False)  # fmt: skip
    for s in moved["not_started"]:
        out.print(f"  not started: {s['playbook']} on {s['account_id']}: {s['reason']}",
                  markup=False)  # fmt: skip
    for e in moved["ended"]:
        out.print(f"  play {e['play_id']} ({e['playbook']} on {e['account_id']}) {e['status']}: "
                  f"{e['outcome']}", markup=False)  # fmt: skip
    for r in moved["reconciled"]:
        out.print(f"  task {r['task_id']} ({r['step']} on {r['account_id']}) {r['status']}"
                  f"{': ' + r['note'] if r['note'] else ''}", markup=False)  # fmt: skip
    for problem in moved["problems"]:
        out.print(f"  problem: {problem}", markup=False)
    render_tasks(moved["tasks"])


# tenure tasks --------------------------------------------------------------------------------


@tasks_app.callback(invoke_without_command=True)
def tasks_list(
    ctx: typer.Context,
    owner: Annotated[str | None, typer.Option(help="One owner's tasks.", show_default=False)] = None,
    role: Annotated[str | None, typer.Option(
        help="csm, account_manager or executive.", show_default=False)] = None,
    status: Annotated[str, typer.Option(
        help="open, pending, sending, sent, queued, done, skipped, cancelled, or all.")] = "open",
    due_by: Annotated[datetime | None, typer.Option(
        "--due-by", formats=["%Y-%m-%d"], show_default=False, help="Due on or before.")] = None,
    account: Annotated[str | None, typer.Option(help="One account's tasks.", show_default=False)] = None,
    play: Annotated[int | None, typer.Option(help="One play's tasks.", show_default=False)] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most tasks to list.")] = 500,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Tasks by due day (open ones unless --status): human steps to do, and automated steps
    that could not be sent (with the reason as their note)."""
    from tenure.plays.playbooks import OWNER_ROLES
    from tenure.plays.running import TASK_STATUSES
    from tenure.plays.tasks import list_tasks

    if ctx.invoked_subcommand is not None:
        return
    if status not in (*TASK_STATUSES, "all"):
        raise fail(f"--status must be one of {', '.join(TASK_STATUSES)} or all, got {status!r}",
                   as_json, code=2)  # fmt: skip
    if role is not None and role not in OWNER_ROLES:
        raise fail(f"--role must be one of {', '.join(OWNER_ROLES)}, got {role!r}", as_json, code=2)
    with opened(db, as_json) as tenure:
        rows = list_tasks(tenure.store, owner=owner, status=None if status == "all" else status,
                          due_by=due_by.date() if due_by else None, account=account,
                          play_id=play, role=role, limit=limit)  # fmt: skip
    if as_json:
        emit_json({"tasks": rows})
        return
    out.print(f"{len(rows)} {'' if status == 'all' else status + ' '}tasks.")
    render_tasks(rows)


def render_tasks(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = Table(title_justify="left")
    full = "title" in rows[0]
    columns = (("id", "due", "account", "playbook", "step", "channel", "owner", "status", "title")
               if full else ("id", "account", "playbook", "step", "channel", "status", "note"))  # fmt: skip
    for column in columns:
        table.add_column(column)
    for t in rows:
        if full:
            who = t["owner"] or f"({t['owner_role']})"
            title = t["title"] + (f" [{t['note']}]" if t.get("note") else "")
            table.add_row(str(t["task_id"]), str(t["due_day"]), t["account_id"],
                          t.get("playbook") or "", t["step"],
                          t["channel"] + (" (auto)" if t["automated"] else ""), who, t["status"],
                          title)  # fmt: skip
        else:
            table.add_row(str(t["task_id"]), t["account_id"], t["playbook"], t["step"],
                          t["channel"], t["status"], t["note"] or "")  # fmt: skip
    out.print(table, markup=False)


@tasks_app.command("complete")
def tasks_complete(
    task_id: Annotated[int, typer.Argument(help="The task id (from tenure tasks).")],
    note: Annotated[str | None, typer.Option(help="What was done.", show_default=False)] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Mark a task done."""
    from tenure.plays.running import PlayError
    from tenure.plays.tasks import complete

    with opened(db, as_json) as tenure:
        try:
            task = complete(tenure.store, task_id, note)
        except PlayError as err:
            raise fail(str(err), as_json) from None
    if as_json:
        emit_json({"task": task})
        return
    out.print(f"Task {task_id} done: {task['title']}", markup=False)


@tasks_app.command("skip")
def tasks_skip(
    task_id: Annotated[int, typer.Argument(help="The task id (from tenure tasks).")],
    reason: Annotated[str, typer.Option(help="Why it is skipped.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Skip a task, saying why."""
    from tenure.plays.running import PlayError
    from tenure.plays.tasks import skip

    with opened(db, as_json) as tenure:
        try:
            task = skip(tenure.store, task_id, reason)
        except PlayError as err:
            raise fail(str(err), as_json) from None
    if as_json:
        emit_json({"task": task})
        return
    out.print(f"Task {task_id} skipped: {task['title']}", markup=False)
