"""``tenure triggers``: list, check and replay trigger files (tenure.triggers does the work)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tenure.cli import (
    DbOption,
    JsonOption,
    app,
    emit_json,
    fail,
    labelled,
    opened,
    out,
    step_progress,
)
from tenure.settings import load as load_settings

if TYPE_CHECKING:
    from tenure.triggers.definitions import TriggerSet

triggers_app = typer.Typer(help="Triggers as code: list, check and replay them over history.")
app.add_typer(triggers_app, name="triggers")

FileOption = Annotated[
    Path | None,
    typer.Option("--file", show_default=False,
                 help="A trigger file (default: the shipped default triggers)."),
]  # fmt: skip


def _load(path: Path | None, as_json: bool) -> TriggerSet:
    from tenure.triggers.definitions import TriggerError, default_triggers, load_triggers

    try:
        return load_triggers(path) if path else default_triggers()
    except TriggerError as err:
        raise fail(str(err), as_json) from None


@triggers_app.callback(invoke_without_command=True)
def triggers_list(ctx: typer.Context, path: FileOption = None, as_json: JsonOption = False) -> None:
    """The triggers in force (or in --file), each with its condition, severity and playbook."""
    if ctx.invoked_subcommand is not None:
        return
    found = _load(path, as_json) if path else _in_force(load_settings().triggers, as_json)
    if as_json:
        emit_json({"version": found.version, "file": found.origin,
                   "triggers": [t.to_dict() for t in found.triggers]})  # fmt: skip
        return
    table = Table(title=f"{len(found.triggers)} triggers ({found.origin}, version {found.version})",
                  title_justify="left")  # fmt: skip
    for column in ("trigger", "when", "for days", "severity", "playbook"):
        table.add_column(column)
    for t in found.triggers:
        table.add_row(t.name, t.condition.text, str(t.for_days), t.severity, t.playbook or "-")
    out.print(table)


@triggers_app.command("check")
def triggers_check(
    path: Annotated[Path, typer.Argument(help="The trigger file to validate.")],
    as_json: JsonOption = False,
) -> None:
    """Validate a trigger file: every error names file, line and field."""
    found = _load(path, as_json)
    if as_json:
        emit_json({"file": str(path), "valid": True, "triggers": len(found.triggers)})
        return
    out.print(f"{path}: {len(found.triggers)} triggers, valid.")


@triggers_app.command("replay")
def triggers_replay(
    start: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day.")],
    end: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day.")],
    path: FileOption = None,
    outcome_days: Annotated[
        int, typer.Option(min=1, max=730, help="Days after an alert to look for churn or renewal.")
    ] = 180,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dry-run the triggers over history: alerts each would have fired, on which accounts, and
    how many of those accounts then churned or renewed."""
    from tenure.triggers.replay import replay

    with opened(db, as_json) as tenure, step_progress(not as_json) as step:
        found = _load(path, as_json) if path else _in_force(tenure.settings.triggers, as_json)
        try:
            done = replay(tenure.store, found, start.date(), end.date(), outcome_days,
                          labelled(step, "replay"))  # fmt: skip
        except (ValueError, KeyError) as err:
            raise fail(str(err.args[0]), as_json) from None
    if as_json:
        emit_json(done.to_dict())
        return
    rate = "-" if done.base_churn_rate is None else f"{done.base_churn_rate:.1%}"
    table = Table(title=f"Replay {done.start} to {done.end}: {done.customers} customers; "
                  f"{rate} of them churned within {done.outcome_days} days", title_justify="left")  # fmt: skip
    for column in ("trigger", "alerts", "accounts", "churned", "renewed", "churn rate"):
        table.add_column(column, justify="left" if column == "trigger" else "right")
    for t in done.tallies:
        share = "-" if not t.accounts else f"{t.churned / t.accounts:.0%}"
        table.add_row(t.name, str(t.alerts), str(t.accounts), str(t.churned), str(t.renewed),
                      share if not t.skipped else f"skipped: {t.skipped}")  # fmt: skip
    out.print(table)
    for note in done.notes:
        out.print(f"Note: {note}")


@triggers_app.command("run")
def triggers_run(
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], show_default=False,
                     help="The day to evaluate (default: today)."),
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], show_default=False,
                     help="Catch up: evaluate every day from this one to --as-of, in order."),
    ] = None,
    path: FileOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Evaluate the triggers in force on every customer as of a day and store the alerts (run it
    daily, e.g. from cron; imports evaluate the accounts they touch as they land)."""
    from tenure.health.scoring import today
    from tenure.triggers.live import run

    with opened(db, as_json) as tenure:
        found = _load(path, as_json) if path else _in_force(tenure.settings.triggers, as_json)
        day = as_of.date() if as_of else today()
        first = since.date() if since else None
        raised = run(tenure.store, found, day, first)
    if as_json:
        emit_json({"as_of": day.isoformat(), "alerts": [a.to_dict() for a in raised]})
        return
    over = f"from {first} to {day}" if first and first < day else f"as of {day}"
    out.print(f"{len(raised)} alerts raised {over}.")
    render_alerts([a.to_dict() for a in raised])


def _in_force(setting: str, as_json: bool) -> TriggerSet:
    from tenure.triggers.definitions import TriggerError
    from tenure.triggers.live import triggers_in_force

    try:
        return triggers_in_force(setting)
    except TriggerError as err:
        raise fail(str(err), as_json) from None


def render_alerts(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = Table(title_justify="left")
    ids = all("alert_id" in a for a in rows)  # stored alerts have ids; a replay's do not
    for column in ("id", "day", "account", "trigger", "severity", "playbook", "values"):
        if column != "id" or ids:
            table.add_column(column)
    for a in rows:
        values = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in a["values"].items())  # fmt: skip
        cells = [str(a["day"]), a["account_id"], a["trigger"], a["severity"], a["playbook"] or "-",
                 values]  # fmt: skip
        table.add_row(*([str(a["alert_id"])] if ids else []), *map(escape, cells))
    out.print(table)


alerts_app = typer.Typer(help="The in-app inbox of alerts raised by the triggers.")
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("show")
def alerts_show(
    alert_id: Annotated[int, typer.Argument(help="The alert id (from tenure alerts).")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One alert with its pre-assembled context: why (trigger, values, the score's explanation),
    key contacts by persona, open tickets, renewal and ARR, recent touchpoints, the playbook."""
    from tenure.triggers.live import alert_with_context

    with opened(db, as_json) as tenure:
        triggers = _in_force(tenure.settings.triggers, as_json)
        try:
            found = alert_with_context(tenure.store, alert_id, triggers)
        except KeyError as err:
            raise fail(str(err.args[0]), as_json) from None
    if as_json:
        emit_json(found)
        return
    render_context(found)


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="The alert id.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge an alert: someone is on it (it leaves the open inbox)."""
    _move(alert_id, "acknowledged", db, as_json)


@alerts_app.command("close")
def alerts_close(
    alert_id: Annotated[int, typer.Argument(help="The alert id.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Close an alert: dealt with."""
    _move(alert_id, "closed", db, as_json)


def _move(alert_id: int, status: str, db: str | None, as_json: bool) -> None:
    from tenure.triggers.live import set_status

    with opened(db, as_json) as tenure:
        try:
            found = set_status(tenure.store, alert_id, status)
        except (KeyError, ValueError) as err:
            raise fail(str(err.args[0]), as_json) from None
    if as_json:
        emit_json({"alert_id": alert_id, "status": found["status"]})
        return
    out.print(f"Alert {alert_id} ({found['trigger']} on {found['account_id']}): {status}.",
              markup=False)  # fmt: skip


def render_context(found: dict[str, Any]) -> None:
    c = found["context"]
    account, why, renewal = c["account"], c["why"], c["renewal"]
    out.print(f"[bold]{escape(found['trigger'])}[/] on "
              + escape(f"{account.get('name') or found['account_id']} ({found['account_id']}, "
                       f"{account.get('segment')}, owner {account.get('owner')}) on "
                       f"{found['day']}, {found['severity']}"))  # fmt: skip
    out.print(f"Why: {why['when'] or why['trigger']}; " + ", ".join(
        f"{k} {v}" for k, v in why["values"].items()), markup=False)  # fmt: skip
    if why["score"]:
        out.print(f"Health: {why['score']['text']}", markup=False)
    out.print(f"Renewal: {renewal['next_renewal'] or 'none ahead'}, ARR in force "
              f"{renewal['arr_in_force']:,.0f}; suggested playbook: {c['playbook'] or '-'}",
              markup=False)  # fmt: skip
    for person in c["contacts"]:
        out.print(f"  {person['persona'] or '-'}: {person['name']} <{person['email']}> "
                  f"{person['title'] or ''} ({person['status']})", markup=False)  # fmt: skip
    for ticket in c["open_tickets"]:
        out.print(f"  open ticket {ticket['ticket_id']} {ticket['priority']}: {ticket['subject']}",
                  markup=False)  # fmt: skip
    for touch in c["touchpoints"]:
        out.print(f"  {touch['occurred_at'][:10]} {touch['type']}: {touch['summary'] or ''}",
                  markup=False)  # fmt: skip


@alerts_app.callback(invoke_without_command=True)
def alerts_command(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="open, acknowledged, closed, or all.")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most alerts to list.")] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The in-app inbox: alerts raised by the triggers, newest first, with what raised them."""
    from tenure.triggers.live import open_alerts

    if ctx.invoked_subcommand is not None:
        return
    if status not in ("open", "acknowledged", "closed", "all"):
        raise fail(f"--status must be open, acknowledged, closed or all, got {status!r}",
                   as_json, code=2)  # fmt: skip
    with opened(db, as_json) as tenure:
        rows = open_alerts(tenure.store, None if status == "all" else status, limit)
    if as_json:
        emit_json({"alerts": rows})
        return
    out.print(f"{len(rows)} {'' if status == 'all' else 'open '}alerts.")
    render_alerts(rows)
