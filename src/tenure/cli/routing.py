"""``tenure routes``, ``tenure alerts send|dead|retry`` and ``tenure digest``: routing alerts to
Slack, email and signed webhooks (tenure.routing does the work)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tenure.cli import DbOption, JsonOption, app, console, emit_json, fail, opened, out
from tenure.cli.triggers import alerts_app
from tenure.settings import load as load_settings

if TYPE_CHECKING:
    from tenure.routing.deliver import Routed, Sent
    from tenure.routing.digest import Digests
    from tenure.routing.routes import Problem, RoutingFile
    from tenure.triggers.definitions import TriggerSet

routes_app = typer.Typer(help="Routing as code: where alerts, digests and play steps are sent.")
app.add_typer(routes_app, name="routes")

NO_FILE = "No routing file (TENURE_ROUTES is empty): alerts stay in the in-app inbox."

FileOption = Annotated[
    Path | None,
    typer.Option("--file", show_default=False,
                 help="A routing file (default: the TENURE_ROUTES setting)."),
]  # fmt: skip


def _load(path: Path | None, setting: str, as_json: bool) -> RoutingFile | None:
    """The routing file given, else the one in force; None when there is none."""
    from tenure.routing.routes import RoutingError, load_routes, routes_in_force

    try:
        return load_routes(path) if path else routes_in_force(setting)
    except RoutingError as err:
        raise fail(str(err), as_json) from None


def _nothing(data: dict[str, Any], as_json: bool) -> None:
    """Without a routing file: say so (not an error: the in-app inbox is the default)."""
    if as_json:
        emit_json(data)
    else:
        out.print(NO_FILE)


def _triggers(setting: str, as_json: bool) -> TriggerSet:
    from tenure.triggers.definitions import TriggerError
    from tenure.triggers.live import triggers_in_force

    try:
        return triggers_in_force(setting)
    except TriggerError as err:
        raise fail(str(err), as_json) from None


# tenure routes -------------------------------------------------------------------------------


@routes_app.callback(invoke_without_command=True)
def routes_list(ctx: typer.Context, path: FileOption = None, as_json: JsonOption = False) -> None:
    """The routes in force (or in --file): what each matches, its channel and recipients, and
    whether it sends (a route with a problem sends nothing and says why)."""
    from tenure.routing.routes import DIGEST, FILE, PLAYS, check_routes

    if ctx.invoked_subcommand is not None:
        return
    routing = _load(path, load_settings().routes, as_json)
    if routing is None:
        _nothing({"file": None, "routes": []}, as_json)
        return
    checks = check_routes(routing)
    rows = [_route_row(routing, name, problems) for name, problems in checks.items()
            if routing.route(name) is not None]  # fmt: skip
    if as_json:
        emit_json({"file": routing.origin, "version": routing.version, "routes": rows,
                   "problems": _problems(checks)})  # fmt: skip
        return
    table = Table(title=f"{len(rows)} routes ({routing.origin}, version {routing.version})",
                  title_justify="left")  # fmt: skip
    for column in ("route", "match", "channel", "to", "sends"):
        table.add_column(column)
    for r in rows:
        match = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["match"].items()) or (
            "daily digest per owner" if r["name"] == DIGEST else "every alert"
        )
        sends = "yes" if r["sends"] else f"nothing: {r['why']}"
        table.add_row(r["name"], match, f"{r['channel']} ({r['type'] or '?'})",
                      ", ".join(r["to"]) or "-", sends)  # fmt: skip
    out.print(table)
    for name in (PLAYS, FILE):
        for p in checks.get(name, []):
            out.print(f"{name}: {p}", markup=False)


def _route_row(routing: RoutingFile, name: str, problems: list[Problem]) -> dict[str, Any]:
    route = routing.route(name)
    assert route is not None
    channel = routing.channels.get(route.channel)
    return route.to_dict() | {"type": channel.type if channel else None, "sends": not problems,
                              "why": problems[0].why if problems else None}  # fmt: skip


def _problems(checks: dict[str, list[Problem]]) -> list[dict[str, Any]]:
    """Each problem once (a channel's are every route's that uses it), with those routes."""
    found: dict[Problem, list[str]] = {}
    for name, problems in checks.items():
        for p in problems:
            found.setdefault(p, []).append(name)
    return [p.to_dict() | {"routes": names, "text": str(p)} for p, names in found.items()]


@routes_app.command("check")
def routes_check(path: FileOption = None, as_json: JsonOption = False) -> None:
    """Validate a routing file, reading the secrets' environment variables: each problem as
    file:line: field: message, then each route that sends nothing and why; exit 1 on any."""
    from tenure.routing.routes import check_routes

    routing = _load(path, load_settings().routes, as_json)
    if routing is None:
        raise fail("no routing file: pass --file or set TENURE_ROUTES", as_json)
    checks = check_routes(routing)
    silent = {name: found[0].why for name, found in checks.items() if found and name != "(file)"}
    problems = _problems(checks)
    if as_json:
        emit_json({"file": routing.origin, "valid": not problems, "routes": len(routing.routes),
                   "problems": problems, "sends_nothing": silent})  # fmt: skip
    else:
        for p in problems:
            out.print(p["text"], markup=False)
        for name, why in silent.items():
            out.print(f"route {name}: sends nothing: {why}", markup=False)
        if not problems:
            out.print(f"{routing.origin}: {len(routing.routes)} routes, valid.")
    if problems:
        raise typer.Exit(1)


# tenure alerts send | dead | retry -----------------------------------------------------------


@alerts_app.command("send")
def alerts_send(path: FileOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Route the new open alerts (raised in the last two days) to the routes they match, once
    each, then send every delivery that is due (alerts, digests, play steps), retrying failures
    with backoff; run it every few minutes (cron)."""
    from tenure.routing.deliver import route_alerts, send_due

    with opened(db, as_json) as tenure:
        routing = _load(path, tenure.settings.routes, as_json)
        if routing is None:
            _nothing({"file": None, "sent": 0}, as_json)
            return
        triggers = _triggers(tenure.settings.triggers, as_json)
        routed = route_alerts(tenure.store, routing, triggers=triggers)
        sent = send_due(tenure.store, routing)
    if as_json:
        emit_json({"file": routing.origin, "routed": routed.to_dict()} | sent.to_dict())
        return
    _render_sent(routed, sent)


def _render_sent(routed: Routed | None, sent: Sent) -> None:
    if routed is not None:
        out.print(f"Queued {len(routed.queued)} new deliveries ({routed.already} queued before).")
    out.print(f"Sent {sent.sent}, failed {sent.failed} ({sent.dead} now dead), "
              f"{sent.queued} queued.")  # fmt: skip
    silent = {**(routed.sends_nothing if routed else {}), **sent.held}
    for name, why in silent.items():
        console.print(f"route {name}: sends nothing: {why}", markup=False, highlight=False)
    for note in routed.skipped if routed else []:
        console.print(f"skipped: {note}", markup=False, highlight=False)
    for e in sent.errors:
        later = "dead" if e["status"] == "dead" else "will retry"
        console.print(f"delivery {e['delivery_id']} ({e['route']}, {e['subject']}) {later} after "
                      f"attempt {e['attempts']}: {e['error']}", markup=False, highlight=False)  # fmt: skip


@alerts_app.command("dead")
def alerts_dead(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most deliveries to list.")] = 100,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The dead-letter list: deliveries whose last attempt failed, with the last error (put one
    back with tenure alerts retry ID)."""
    from tenure.routing.deliver import dead_letters

    with opened(db, as_json) as tenure:
        rows = dead_letters(tenure.store, limit)
    if as_json:
        emit_json({"dead": rows})
        return
    out.print(f"{len(rows)} dead deliveries.")
    if not rows:
        return
    table = Table(title_justify="left")
    for column in ("id", "route", "channel", "subject", "target", "attempts", "last error"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r["delivery_id"]), r["route"], r["channel"], r["subject"], r["target"],
                      str(r["attempts"]), r["last_error"] or "-")  # fmt: skip
    out.print(table)


@alerts_app.command("retry")
def alerts_retry(
    delivery_id: Annotated[int, typer.Argument(help="A dead delivery's id (tenure alerts dead).")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put a dead delivery back in the queue with fresh attempts; tenure alerts send sends it."""
    from tenure.routing.deliver import retry

    with opened(db, as_json) as tenure:
        try:
            row = retry(tenure.store, delivery_id)
        except (KeyError, ValueError) as err:
            raise fail(str(err.args[0]), as_json) from None
    if as_json:
        emit_json({"delivery_id": row["delivery_id"], "status": row["status"],
                   "route": row["route"], "subject": row["subject"]})  # fmt: skip
        return
    out.print(f"Delivery {delivery_id} ({row['route']}, {row['subject']}) is queued again; "
              "tenure alerts send sends it.")  # fmt: skip


# tenure digest -------------------------------------------------------------------------------


@app.command("digest")
def digest_command(
    day: Annotated[
        datetime | None,
        typer.Option("--day", formats=["%Y-%m-%d"], show_default=False,
                     help="The digest's day (default: today)."),
    ] = None,
    path: FileOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Queue and send the daily digest: per account owner, their accounts' new open alerts by
    severity, once per owner and day (run it daily, e.g. from cron)."""
    from tenure.health.scoring import today
    from tenure.routing.deliver import send_due
    from tenure.routing.digest import queue_digests
    from tenure.routing.routes import DIGEST

    with opened(db, as_json) as tenure:
        routing = _load(path, tenure.settings.routes, as_json)
        if routing is None:
            raise fail("no routing file: pass --file or set TENURE_ROUTES", as_json)
        queued = queue_digests(tenure.store, routing, day.date() if day else today())
        sent = send_due(tenure.store, routing, route=DIGEST)
    if as_json:
        emit_json(queued.to_dict() | {"sent": sent.to_dict()})
        return
    _render_digests(queued, sent)


def _render_digests(queued: Digests, sent: Sent) -> None:
    if queued.sends_nothing:
        console.print(f"route digest: sends nothing: {queued.sends_nothing}", markup=False,
                      highlight=False)  # fmt: skip
    owners = ", ".join(f"{q['owner']}: {q['total']} alert{'s' * (q['total'] != 1)}"
                       for q in queued.queued)  # fmt: skip
    out.print(f"Digests for {queued.day}: {len(queued.queued)} queued"
              f"{f' ({owners})' if owners else ''}, {len(queued.already)} queued before.",
              markup=False)  # fmt: skip
    for owner, why in queued.skipped.items():
        console.print(f"skipped: owner {owner}: {why}", markup=False, highlight=False)
    if queued.unowned:
        out.print(f"{queued.unowned} open alerts of the day are on accounts without an owner.")
    _render_sent(None, sent)
