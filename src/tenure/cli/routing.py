"""``tenure routes``, ``tenure alerts send|dead|retry`` and ``tenure digest``: routing alerts to
Slack, email and signed webhooks (tenure.routing does the work)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tenure.cli import DbOption, JsonOption, app, console, emit_json, fail, opened, out
from tenure.cli.triggers import alerts_app
from tenure.settings import load as load_settings

if TYPE_CHECKING:
    from tenure.routing.routes import RoutingFile
    from tenure.triggers.definitions import TriggerSet

routes_app = typer.Typer(help="Routing as code: where alerts, digests and play steps are sent.")
app.add_typer(routes_app, name="routes")

NO_FILE = "No routing file (TENURE_ROUTES is empty): alerts stay in the in-app inbox."

FileOption = Annotated[
    Path | None,
    typer.Option("--file", show_default=False,
                 help="A routing file (default: the TENURE_ROUTES setting)."),
]  # fmt: skip


def _say(text: str) -> None:
    """A line with values from files or data in it, on stdout, printed as it is."""
    out.print(text, markup=False, highlight=False)


def _note(text: str) -> None:
    """The same, on stderr."""
    console.print(text, markup=False, highlight=False)


def _cells(*values: object) -> list[str]:
    """Table cells from data: rich reads a cell as markup, so ``[/x]`` is escaped."""
    return [escape(str(v)) for v in values]


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
    from tenure.routing.routes import DIGEST, FILE, PLAYS, describe

    if ctx.invoked_subcommand is not None:
        return
    routing = _load(path, load_settings().routes, as_json)
    if routing is None:
        _nothing({"file": None, "routes": []}, as_json)
        return
    found = describe(routing)
    rows = found["routes"]
    if as_json:
        emit_json({k: found[k] for k in ("file", "version", "routes", "problems")})
        return
    table = Table(title=escape(f"{len(rows)} routes ({routing.origin}, version {routing.version})"),
                  title_justify="left")  # fmt: skip
    for column in ("route", "match", "channel", "to", "sends"):
        table.add_column(column)
    for r in rows:
        match = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["match"].items()) or (
            "daily digest per owner" if r["name"] == DIGEST else "every alert"
        )
        sends = "yes" if r["sends"] else f"nothing: {r['why']}"
        table.add_row(*_cells(r["name"], match, f"{r['channel']} ({r['type'] or '?'})",
                              ", ".join(r["to"]) or "-", sends))  # fmt: skip
    out.print(table)
    for name in (PLAYS, FILE):
        for p in found["problems"]:
            if name in p["routes"]:
                _say(f"{name}: {p['text']}")


@routes_app.command("check")
def routes_check(path: FileOption = None, as_json: JsonOption = False) -> None:
    """Validate a routing file, reading the secrets' environment variables: each problem as
    file:line: field: message, then each route that sends nothing and why; exit 1 on any."""
    from tenure.routing.routes import describe

    routing = _load(path, load_settings().routes, as_json)
    if routing is None:
        raise fail("no routing file: pass --file or set TENURE_ROUTES", as_json)
    found = describe(routing)
    problems, silent = found["problems"], found["sends_nothing"]
    if as_json:
        emit_json({"file": routing.origin, "valid": not problems, "routes": len(routing.routes),
                   "problems": problems, "sends_nothing": silent})  # fmt: skip
    else:
        for p in problems:
            _say(p["text"])
        for name, why in silent.items():
            _say(f"route {name}: sends nothing: {why}")
        if not problems:
            _say(f"{routing.origin}: {len(routing.routes)} routes, valid.")
    if problems:
        raise typer.Exit(1)


# tenure alerts send | dead | retry -----------------------------------------------------------


@alerts_app.command("send")
def alerts_send(path: FileOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Route the new open alerts (raised in the last two days) to the routes they match, once
    each, then send every delivery that is due (alerts, digests, play steps), retrying failures
    with backoff; run it every few minutes (cron)."""
    from tenure.routing.deliver import dispatch

    with opened(db, as_json) as tenure:
        routing = _load(path, tenure.settings.routes, as_json)
        if routing is None:
            _nothing({"file": None, "sent": 0}, as_json)
            return
        triggers = _triggers(tenure.settings.triggers, as_json)
        done = dispatch(tenure.store, routing, triggers=triggers, digests=False)
    if as_json:
        emit_json({"file": done["file"], "routed": done["routed"]} | done["sent"])
        return
    _render_sent(done["routed"], done["sent"])


def _render_sent(routed: dict[str, Any] | None, sent: dict[str, Any]) -> None:
    """What a run did (:meth:`Routed.to_dict`, :meth:`Sent.to_dict`), in words."""
    if routed is not None:
        _say(f"Queued {routed['queued']} new deliveries ({routed['already']} queued before).")
    _say(f"Sent {sent['sent']}, failed {sent['failed']} ({sent['dead']} now dead), "
         f"{sent['queued']} queued.")  # fmt: skip
    silent = {**(routed["sends_nothing"] if routed else {}), **sent["held"]}
    for name, why in silent.items():
        _note(f"route {name}: sends nothing: {why}")
    for note in routed["skipped"] if routed else []:
        _note(f"skipped: {note}")
    for n in sent["notes"]:
        _note(f"delivery {n['delivery_id']} ({n['route']}, {n['subject']}): {n['note']}")
    for e in sent["errors"]:
        later = "dead" if e["status"] == "dead" else "will retry"
        _note(f"delivery {e['delivery_id']} ({e['route']}, {e['subject']}) {later} after "
              f"attempt {e['attempts']}: {e['error']}")  # fmt: skip


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
        table.add_row(*_cells(r["delivery_id"], r["route"], r["channel"], r["subject"],
                              r["target"], r["attempts"], r["last_error"] or "-"))  # fmt: skip
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
    _say(f"Delivery {delivery_id} ({row['route']}, {row['subject']}) is queued again; "
         "tenure alerts send sends it.")  # fmt: skip


# tenure digest -------------------------------------------------------------------------------


@app.command("digest")
def digest_command(
    day: Annotated[
        datetime | None,
        typer.Option("--day", formats=["%Y-%m-%d"], show_default=False,
                     help="The digest's day (default: today, UTC)."),
    ] = None,
    path: FileOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Queue and send the daily digest: per account owner, their accounts' new open alerts by
    severity, once per owner and day (run it daily, e.g. from cron)."""
    from tenure.routing.digest import check_day, send_digests

    if day is not None:
        try:
            check_day(day.date())
        except ValueError as err:
            raise fail(str(err), as_json) from None
    with opened(db, as_json) as tenure:
        routing = _load(path, tenure.settings.routes, as_json)
        if routing is None:
            raise fail("no routing file: pass --file or set TENURE_ROUTES", as_json)
        done = send_digests(tenure.store, routing, day.date() if day else None)
    if as_json:
        emit_json(done)
        return
    _render_digests(done)


def _render_digests(done: dict[str, Any]) -> None:
    """What :func:`tenure.routing.digest.send_digests` did, in words."""
    if done["sends_nothing"]:
        _note(f"route digest: sends nothing: {done['sends_nothing']}")
    owners = ", ".join(f"{q['owner']}: {q['total']} alert{'s' * (q['total'] != 1)}"
                       for q in done["queued"])  # fmt: skip
    _say(f"Digests for {done['day']}: {len(done['queued'])} queued"
         f"{f' ({owners})' if owners else ''}, {len(done['already'])} queued before.")  # fmt: skip
    for owner, why in done["skipped"].items():
        _note(f"skipped: owner {owner}: {why}")
    if done["unowned"]:
        _say(f"{done['unowned']} open alerts of the day are on accounts without an owner.")
    _render_sent(None, done["sent"])
