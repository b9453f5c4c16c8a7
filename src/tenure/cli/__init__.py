"""The ``tenure`` command: each command parses, makes one core call, and renders.

``--json`` on every command that reports prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from tenure import __version__
from tenure.app import Tenure
from tenure.demo import PortfolioSpec
from tenure.demo.load import DemoReport, load_demo
from tenure.health import ModelError, load_model
from tenure.health.detections import detect_portfolio
from tenure.health.explain import Explanation, describe
from tenure.health.scoring import (
    Comparison,
    LiveScores,
    Ranked,
    RegisteredModel,
    account_signals,
    active_model,
    explain_account,
    health_facts,
    latest_day,
    live_scores,
    ranked,
    register,
    rescore,
    score_portfolio,
    today,
)
from tenure.ingest import ImportRefused, ImportReport, import_file, review
from tenure.portfolio import PortfolioSummary, summarise
from tenure.quality import run_checks
from tenure.readiness import assess
from tenure.record import KINDS, json_schema
from tenure.signals.catalog import documented, signal_info
from tenure.store import StoreError

if TYPE_CHECKING:
    from tenure.plays.impact import Effect, ImpactReport
    from tenure.triggers.replay import Alert

app = typer.Typer(
    name="tenure",
    help="Tenure: customer-success intelligence over one living account record.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
matches_app = typer.Typer(
    help="The review list of records that could not be matched to an account."
)
app.add_typer(matches_app, name="matches")

console = Console(stderr=True, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (overrides TENURE_DATABASE_URL).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def emit_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, default=str, ensure_ascii=False) + "\n")


def fail(message: str, as_json: bool, code: int = 1) -> typer.Exit:
    if as_json:
        emit_json({"error": message})
    else:
        console.print(f"[bold red]Error:[/] {escape(message)}", markup=True, highlight=False)
    return typer.Exit(code)


@contextmanager
def opened(db: str | None, as_json: bool) -> Iterator[Tenure]:
    try:
        tenure = Tenure.open(db)
    except (StoreError, ValueError) as err:
        raise fail(str(err), as_json) from None
    except Exception as err:  # a database that cannot be reached is not a stack trace
        raise fail(f"cannot open the database: {err.__class__.__name__}: {err}", as_json) from None
    try:
        yield tenure
    finally:
        tenure.close()


@app.callback(invoke_without_command=True)
def main_options(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """Tenure: customer-success intelligence over one living account record."""
    if version:
        out.print(f"tenure {__version__}")
        raise typer.Exit()


@app.command("schema")
def schema_command(as_json: JsonOption = False) -> None:
    """Print the account record's schema (JSON Schema with relationships under --json)."""
    if as_json:
        emit_json(json_schema())
        return
    for kind in KINDS.values():
        table = Table(title=f"{kind.name}: {kind.description}", title_justify="left")
        for column in ("field", "type", "required", "references", "description"):
            table.add_column(column)
        for spec in kind.fields:
            required = "key" if spec.name == kind.key else ("yes" if spec.required else "")
            table.add_row(
                spec.name,
                type(spec.type).__name__.lower(),
                required,
                spec.references or "",
                spec.description,
            )
        out.print(table)


@app.command("migrate")
def migrate_command(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Create or upgrade the database schema to the newest migration."""
    with opened(db, as_json) as tenure:
        revision = tenure.store.upgrade()
        data = {"database": tenure.store.describe(), "revision": revision}
    if as_json:
        emit_json(data)
    else:
        out.print(f"{data['database']} is at schema revision {revision}")


@app.command("import")
def import_command(
    kind: Annotated[str, typer.Argument(help=f"What the file holds: {', '.join(KINDS)}.")],
    file: Annotated[Path, typer.Argument(help="A .csv, .jsonl or .parquet file.")],
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", "-m", help="A YAML mapping file for foreign exports."),
    ] = None,
    max_errors: Annotated[int, typer.Option(help="Row errors to list (all are stored).")] = 1000,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a file of one kind; every row is accepted, rejected with a reason, or a duplicate."""
    with opened(db, as_json) as tenure, step_progress(not as_json, in_bytes=True) as step:
        try:
            report = import_file(
                tenure.store,
                kind,
                file,
                mapping,
                threshold=tenure.settings.match_threshold,
                progress=labelled(step, f"import {kind}"),
                max_errors=max_errors,
            )
        except ImportRefused as err:
            raise fail(f"refused, nothing imported: {err}", as_json) from None
        rescored, live = live_scores(
            tenure.store, report.kind, report.import_id, report.accepted, report.accounts
        )
        raised, problem = _raise_alerts(tenure, live, report.accounts)
    if as_json:
        emit_json(report.as_dict() | {"scores_updated": len(rescored), "alerts_raised": len(raised)}
                  | ({"triggers_error": problem} if problem else {}))  # fmt: skip
    else:
        render_import(report)
        if rescored:
            out.print(f"health scores updated for {len(rescored):,} accounts")
        for alert in raised:
            out.print(f"alert: {alert.trigger} on {alert.account_id} ({alert.severity})")
        if problem:
            console.print(f"[yellow]triggers not evaluated:[/] {problem}", markup=True)


def _raise_alerts(
    tenure: Tenure, live: LiveScores | None, accounts: Iterable[str]
) -> tuple[list[Alert], str]:
    """The triggers in force on the accounts an import touched (after their scores moved)."""
    if live is None or not accounts:
        return [], ""
    from tenure.triggers.definitions import TriggerError
    from tenure.triggers.live import after_import, triggers_in_force

    try:
        triggers = triggers_in_force(tenure.settings.triggers)
        return after_import(tenure.store, triggers, live, accounts), ""
    except TriggerError as err:
        return [], str(err)
    except Exception as err:  # the import is in: a trigger failing must not hide its report
        return [], f"{err.__class__.__name__}: {err}"


def render_import(report: ImportReport, brief: bool = False) -> None:
    out.print(
        f"[bold]{report.kind}[/] from {report.source}: {report.rows:,} rows, "
        f"[green]{report.accepted:,} accepted[/], [red]{report.rejected:,} rejected[/], "
        f"{report.duplicates:,} duplicates, {report.held_for_review:,} held for review "
        f"({report.seconds:.1f}s)"
    )
    if brief:
        return
    for warning in report.warnings:
        out.print(f"[yellow]warning:[/] {warning}")
    for error in report.errors[:20]:
        out.print(f"  row {error.row}: {error.field}: {error.reason}", markup=False)
    if report.rejected and len(report.errors) > 20:
        out.print(f"  ... {len(report.errors) - 20:,} more (use --json for all)")


@app.command("check")
def check_command(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Report inconsistencies in the stored record, per kind, with counts and examples."""
    with opened(db, as_json) as tenure, step_progress(not as_json) as step:
        findings = run_checks(
            tenure.store,
            progress=(lambda done, total: step("checking", done, total)) if step else None,
        )
    if as_json:
        emit_json({"warnings": [f.as_dict() for f in findings]})
        return
    if not findings:
        out.print("[green]No inconsistencies found.[/]")
        return
    total = f"{len(findings)} kind{'s' if len(findings) != 1 else ''} of inconsistency"
    table = Table(title=total, title_justify="left")
    for column in ("kind", "code", "count", "message", "examples"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for f in findings:
        table.add_row(f.kind, f.code, f"{f.count:,}", f.message, ", ".join(f.examples))
    out.print(table)


@matches_app.callback(invoke_without_command=True)
def matches_list(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="pending, accepted, rejected or all.")] = "pending",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List records waiting for a person to say which account they belong to."""
    if ctx.invoked_subcommand is not None:
        return
    with opened(db, as_json) as tenure:
        try:
            found = review.list_reviews(tenure.store, None if status == "all" else status)
        except review.ReviewError as err:
            raise fail(str(err), as_json) from None
    if as_json:
        emit_json({"matches": [r.as_dict() for r in found], "count": len(found)})
        return
    table = Table(title=f"{len(found)} {status} matches", title_justify="left")
    for column in ("id", "kind", "email", "company", "best candidate", "confidence", "method"):
        table.add_column(column)
    for r in found:
        confidence = "" if r.confidence is None else f"{r.confidence:.2f}"
        table.add_row(
            str(r.review_id),
            r.kind,
            r.email or "",
            r.company or "",
            r.candidate_account_id or "",
            confidence,
            r.method or "",
        )
    out.print(table)


@matches_app.command("accept")
def matches_accept(
    review_id: Annotated[int, typer.Argument(help="The id shown by `tenure matches`.")],
    account: Annotated[
        str | None, typer.Option(help="Account to file it under (default: the best candidate).")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """File a held record under an account."""
    with opened(db, as_json) as tenure:
        try:
            done = review.accept(tenure.store, review_id, account)
        except review.ReviewError as err:
            raise fail(str(err), as_json) from None
    render_review(done, as_json)


@matches_app.command("reject")
def matches_reject(
    review_id: Annotated[int, typer.Argument(help="The id shown by `tenure matches`.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Drop a held record: it belongs to no account we know."""
    with opened(db, as_json) as tenure:
        try:
            done = review.reject(tenure.store, review_id)
        except review.ReviewError as err:
            raise fail(str(err), as_json) from None
    render_review(done, as_json)


DateOption = Annotated[
    datetime | None,
    typer.Option(formats=["%Y-%m-%d"], help="A day (YYYY-MM-DD).", show_default=False),
]


@app.command("signals")
def signals_command(
    account: Annotated[
        str | None, typer.Option("--account", help="Show this account's signal values instead.")
    ] = None,
    as_of: DateOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the Signal Stack (every signal with its unit, source, window and direction), or one
    account's signal values as of a day."""
    if account is not None:
        account_signals_command(account, as_of, db, as_json)
        return
    if as_of is not None:
        raise fail("--as-of needs --account (the catalog itself has no date)", as_json, code=2)
    cat = documented()
    listed = [signal_info(s, cat) for s in cat]
    if as_json:
        emit_json({"signals": listed})
        return
    table = Table(title=f"{len(listed)} signals", title_justify="left")
    for column in ("group", "signal", "unit", "source", "window", "healthier", "description"):
        table.add_column(column)
    for s in listed:
        table.add_row(s["group"], s["name"], s["unit"], ", ".join(s["sources"]),
                      "; ".join(s["windows"]), s["healthier"], s["description"])  # fmt: skip
    out.print(table)


def account_signals_command(
    account: str, as_of: datetime | None, db: str | None, as_json: bool
) -> None:
    with opened(db, as_json) as tenure:
        registered = active_model(tenure.store)
        day = as_of.date() if as_of else today()
        try:
            values = account_signals(tenure.store, registered, account, day)
        except KeyError as err:
            raise fail(str(err.args[0]), as_json) from None
    if as_json:
        emit_json({"account_id": account, "as_of": day.isoformat(), "signals": values})
        return
    table = Table(title=f"{account} as of {day}", title_justify="left")
    for column in ("group", "signal", "value"):
        table.add_column(column, justify="right" if column == "value" else "left")
    cat = registered.catalog()
    for name, value in values.items():
        signal = cat.named(name)
        table.add_row(signal.group, name, describe(value, signal.unit, name))
    out.print(table)


@app.command("score")
def score_command(
    model: Annotated[
        Path | None, typer.Option("--model", help="A health model file to register and use.")
    ] = None,
    as_of: DateOption = None,
    days: Annotated[int, typer.Option(min=1, max=3660, help="Days of daily history.")] = 90,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute every account's health score and its daily history (batch engine)."""
    with opened(db, as_json) as tenure, step_progress(not as_json) as step:
        registered = _model(tenure, model, as_json)
        run = score_portfolio(
            tenure.store, registered, as_of.date() if as_of else None, days,
            progress=labelled(step, f"score {days} days"),
        )  # fmt: skip
        worst = ranked(tenure.store)[:10]
    if as_json:
        emit_json(run.to_dict() | {"lowest": [asdict(r) for r in worst]})
        return
    bands = ", ".join(f"{band} {n}" for band, n in sorted(run.bands.items()))
    out.print(f"Scored {run.accounts:,} accounts with {run.model} from {run.first_day} to "
              f"{run.last_day} ({run.scores:,} daily scores). Bands: {bands}.")  # fmt: skip
    render_ranked(worst, "Lowest scores")


@app.command("explain")
def explain_command(
    account: Annotated[str, typer.Argument(help="The account id.")],
    start: Annotated[
        datetime | None,
        typer.Option(
            "--from",
            formats=["%Y-%m-%d"],
            help="From (default: 30 days before --to).",
            show_default=False,
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(
            "--to",
            formats=["%Y-%m-%d"],
            help="To (default: the latest scored day).",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Why an account's score changed between two days, component by component."""
    with opened(db, as_json) as tenure:
        registered = active_model(tenure.store)
        last = end.date() if end else latest_day(tenure.store, registered) or today()
        first = start.date() if start else last - timedelta(days=30)
        try:
            explanation = explain_account(tenure.store, account, first, last, registered)
        except KeyError as err:
            raise fail(str(err.args[0]), as_json) from None
    if as_json:
        emit_json(explanation.to_dict())
        return
    render_explanation(explanation)


@app.command("rescore")
def rescore_command(
    model: Annotated[Path, typer.Option("--model", help="The health model file to try.")],
    start: Annotated[
        datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day to recompute.")
    ],
    as_of: DateOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute history under another model and show it beside the model in force."""
    with opened(db, as_json) as tenure, step_progress(not as_json) as step:
        try:
            other = load_model(model)
        except ModelError as err:
            raise fail(str(err), as_json) from None
        try:
            comparison = rescore(tenure.store, other, start.date(),
                                 as_of.date() if as_of else None,
                                 progress=labelled(step, "rescore"))  # fmt: skip
        except ValueError as err:
            raise fail(str(err), as_json) from None
    if as_json:
        emit_json(comparison.to_dict())
        return
    render_comparison(comparison)


@app.command("detect")
def detect_command(
    as_of: DateOption = None, db: DbOption = None, as_json: JsonOption = False
) -> None:
    """Silent churn and expansion signals, per account, with the reason."""
    with opened(db, as_json) as tenure:
        found = detect_portfolio(tenure.store, active_model(tenure.store),
                                 as_of.date() if as_of else None)  # fmt: skip
    if as_json:
        emit_json({"detections": [d.to_dict() for d in found]})
        return
    table = Table(title=f"{len(found)} detections", title_justify="left")
    for column in ("account", "detection", "kind", "why"):
        table.add_column(column)
    for d in found:
        table.add_row(d.account_id, d.kind, d.direction, d.reason)
    out.print(table)


@app.command("readiness")
def readiness_command(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Data readiness: the maturity level (L0 to L5) the connected data supports, per object."""
    with opened(db, as_json) as tenure:
        report = assess(tenure.store, health=health_facts(tenure.store))
    if as_json:
        emit_json(report.to_dict())
        return
    table = Table(title=f"Data readiness as of {report.as_of}", title_justify="left")
    for column in ("object", "level", "blocked", "next step"):
        table.add_column(column)
    for o in report.objects:
        blocked = "; ".join(f"{b.capability}: {b.reason}" for b in o.blocked)
        table.add_row(o.object, o.label, blocked or "-", o.next_step)
    out.print(table)


def _model(tenure: Tenure, path: Path | None, as_json: bool) -> RegisteredModel:
    if path is None:
        return active_model(tenure.store)
    try:
        return register(tenure.store, load_model(path))
    except ModelError as err:
        raise fail(str(err), as_json) from None


def render_ranked(rows: list[Ranked], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("account", "score", "band", "as of"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for r in rows:
        score = "-" if r.score is None else f"{r.score:.1f}"
        table.add_row(r.account_id, score, r.band or "-", str(r.as_of))
    out.print(table)


def render_explanation(e: Explanation) -> None:
    before, after = e.before, e.after
    out.print(f"[bold]{e.account_id}[/] ({after.model}): {before.score} on {before.as_of} -> "
              f"{after.score} on {after.as_of} ({after.band})")  # fmt: skip
    out.print(e.text, markup=False)
    for c in e.contributions:
        if c.change:
            out.print(f"  {c.text}", markup=False)
    if after.missing:
        out.print(f"[dim]missing: {', '.join(after.missing)} ({after.missing_policy})[/]")


def render_comparison(c: Comparison) -> None:
    out.print(f"{c.other} against {c.current} from {c.first_day} to {c.last_day}: "
              f"{c.accounts:,} accounts, mean change {c.mean_change:+.2f}, "
              f"{c.band_changes:,} current bands differ")  # fmt: skip
    table = Table(title="Biggest differences today", title_justify="left")
    for column in ("account", c.current, c.other, "difference"):
        table.add_column(column)
    for row in c.biggest:
        table.add_row(row["account_id"], f"{row['current']:.1f}", f"{row['other']:.1f}",
                      f"{row['difference']:+.1f}")  # fmt: skip
    out.print(table)


def render_review(done: review.Review, as_json: bool) -> None:
    if as_json:
        emit_json(done.as_dict())
    else:
        target = f" under {done.resolved_account_id}" if done.resolved_account_id else ""
        out.print(f"match {done.review_id} {done.status}{target}")


@app.command("demo")
def demo_command(
    accounts: Annotated[int, typer.Option(min=1, help="How many accounts to generate.")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same portfolio).")] = 7,
    months: Annotated[int, typer.Option(min=1, max=240, help="Months of history.")] = 24,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the generated files.")] = Path(
        "demo-data"
    ),
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a realistic demo portfolio, import it like a user would, and summarise it."""
    spec = PortfolioSpec(accounts=accounts, seed=seed, months=months)
    with opened(db, as_json) as tenure, step_progress(not as_json) as step:
        report = load_demo(tenure.store, spec, out_dir, step)
        database = tenure.store.describe()
    if as_json:
        emit_json(report.as_dict() | {"database": database})
        return
    for done in report.imports:
        render_import(done, brief=True)
    if report.summary is not None:
        render_summary(report.summary)
    if report.scores is not None:
        run = report.scores
        bands = ", ".join(f"{band} {n}" for band, n in sorted(run.bands.items()))
        out.print(f"\nHealth ({run.model}) as of {run.last_day}: {bands}")
        render_ranked(report.lowest, "Portfolio ranked by health (lowest first)")
        out.print("\n[bold]Biggest movers over 30 days[/]")
        for mover in report.movers:
            out.print(f"{mover.account_id}: {mover.before.score} -> {mover.after.score}  "
                      f"{mover.text}", markup=False, highlight=False)  # fmt: skip
    render_proof(report, out_dir)
    render_demo_alerts(report)
    render_demo_plays(report)
    out.print(
        f"\nStored in {database}. Next: [bold]tenure explain ACCOUNT[/], [bold]tenure detect[/], "
        "[bold]tenure train[/], [bold]tenure forecast[/], [bold]tenure readiness[/]."
    )


def render_demo_alerts(report: DemoReport) -> None:
    """What the default triggers raised over the demo's last 90 days; the last day's alerts,
    most severe first."""
    from tenure.cli.triggers import render_alerts

    if not report.alerts:
        return
    counts: dict[str, int] = {}
    for alert in report.alerts:
        counts[alert.trigger] = counts.get(alert.trigger, 0) + 1
    first, last = min(a.day for a in report.alerts), max(a.day for a in report.alerts)
    out.print(f"\n[bold]Alerts from {first} to {last}[/] (the default triggers, evaluated daily; "
              f"each fires once per episode): {len(report.alerts)}, "
              + ", ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1])))  # fmt: skip
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    latest = [a for a in report.alerts if a.day == last]
    out.print(f"On {last}: {len(latest)}, the most severe:")
    worst = sorted(latest, key=lambda a: (order[a.severity], a.trigger, a.account_id))[:8]
    render_alerts([a.to_dict() for a in worst])
    out.print(
        "See them all with [bold]tenure alerts[/] and one with its context with "
        "[bold]tenure alerts show ID[/]."
    )


def render_demo_plays(report: DemoReport) -> None:
    """The plays the alerts started, the tasks they left for people, and the measured impact."""
    from tenure.cli.plays import render_tasks

    if not report.plays.get("plays"):
        return
    tally = report.plays
    out.print(f"\n[bold]Plays over the same days[/] (the default playbooks, advanced daily): "
              f"{tally['plays']} started; " + "; ".join(
                  f"{name} " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
                  for name, counts in sorted(tally["by_playbook"].items())))  # fmt: skip
    out.print("Tasks: " + ", ".join(f"{n} {status}" for status, n in sorted(tally["tasks"].items()))
              + f". Automated email and Slack steps went to {tally['outbox']}. Open tasks for "
              f"people, due by the last day: {len(report.tasks)}; the first few:")  # fmt: skip
    render_tasks([{k: t[k] for k in ("task_id", "account_id", "playbook", "step", "channel",
                                     "status", "note")} for t in report.tasks[:5]])  # fmt: skip
    if report.impact is not None:
        out.print("\n[bold]Does each playbook work?[/] Accounts that got it against matched "
                  "accounts that did not (details: tenure plays impact). The demo's plays change "
                  "nothing by construction: an interval that leaves out 0 here is bias the "
                  "matching did not remove.")  # fmt: skip
        render_impact_summary(report.impact)
    out.print(
        "See them with [bold]tenure plays[/], [bold]tenure tasks[/] and "
        "[bold]tenure plays impact[/]."
    )


def render_impact_summary(report: ImpactReport) -> None:
    """One row per playbook: plays, matched, and each outcome's difference with its interval."""
    table = Table(title=f"Playbook impact as of {report.as_of} (difference, 95% interval, "
                  "pairs)", title_justify="left")  # fmt: skip
    measured = [label for label, _ in report.playbooks[0].outcomes()] if report.playbooks else []
    measured = [label for label in measured
                if any(dict(p.outcomes())[label].difference is not None
                       for p in report.playbooks)]  # fmt: skip
    for column in ("playbook", "plays", "matched", *measured):
        table.add_column(column, justify="left" if column == "playbook" else "right")
    for found in report.playbooks:
        effects = dict(found.outcomes())
        cells = [_effect(label, effects[label]) for label in measured]
        table.add_row(found.playbook, str(found.plays), str(found.matched), *cells)
    out.print(table)
    if report.playbooks and len(measured) < len(report.playbooks[0].outcomes()):
        out.print("Other outcomes: too few matched plays with the outcome known yet.")


def _effect(label: str, effect: Effect) -> str:
    if effect.difference is None or effect.ci is None:
        return f"too few ({effect.n})"
    rate = label.startswith(("renewal", "expansion"))
    scale, unit = (100, " pts") if rate else (1, "")
    low, high = (scale * v for v in effect.ci)
    return f"{scale * effect.difference:+.1f}{unit} [{low:+.1f}, {high:+.1f}] n={effect.n}"


def render_proof(report: DemoReport, out_dir: Path) -> None:
    """Does the score predict churn: the demo's backtest, or why there is none."""
    from tenure.cli.churn import render_results

    if report.proof is None:
        out.print(f"\nNo backtest: {report.proof_note}")
        return
    proof = report.proof
    out.print(f"\n[bold]Does the health score predict churn?[/] Churn within {proof.horizon} days, "
              f"{len(proof.folds)} monthly test snapshots from {proof.folds[0]} to "
              f"{proof.folds[-1]}, each predicted from what was known then.")  # fmt: skip
    render_results([r.to_dict() for r in proof.results], "Backtest (out of time)")
    out.print(f"Report with plots: {out_dir / 'backtest-90d.html'}")


@app.command("daily")
def daily_command(
    as_of: DateOption = None, db: DbOption = None, as_json: JsonOption = False
) -> None:
    """The daily job (run it once a day, e.g. from cron): score every account, evaluate the
    triggers (catching up on missed days), start and advance plays, route and send alerts and
    digests."""
    from tenure.configfile import ConfigError
    from tenure.daily import run_daily
    from tenure.health.scoring import today

    with opened(db, as_json) as tenure:
        try:
            done = run_daily(tenure.store, tenure.settings, as_of.date() if as_of else today())
        except (ConfigError, ValueError) as err:
            raise fail(str(err), as_json) from None
    if as_json:
        emit_json(done)
        return
    plays, routing = done["plays"], done["routing"]
    out.print(f"Daily job for {done['day']}: {done['scores']['accounts']:,} accounts scored; "
              f"{len(done['triggers']['alerts'])} alerts raised (evaluated from "
              f"{done['triggers']['from']}); {len(plays['started'])} plays started, "
              f"{len(plays['ended'])} ended, {len(plays['tasks'])} steps due.", markup=False)  # fmt: skip
    if routing is None:
        out.print("No routing file (TENURE_ROUTES): alerts stay in the inbox (tenure alerts).")
    else:
        sent = routing["sent"]
        out.print("Routing: " + ", ".join(f"{k} {v}" for k, v in sent.items()
                                          if isinstance(v, int)), markup=False)  # fmt: skip


@app.command("summary")
def summary_command(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Portfolio at a glance: records held, recurring revenue in force, outcomes."""
    with opened(db, as_json) as tenure:
        summary = summarise(tenure.store)
    if as_json:
        emit_json(summary.as_dict())
    else:
        render_summary(summary)


def render_summary(summary: PortfolioSummary) -> None:
    table = Table(title=f"Portfolio as of {summary.as_of}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for kind, count in summary.records.items():
        table.add_row(kind, f"{count:,}")
    table.add_row("active subscriptions", f"{summary.active_subscriptions:,}")
    table.add_row("MRR in force", f"{summary.mrr:,.2f}")
    table.add_row("ARR in force", f"{summary.arr:,.2f}")
    table.add_row("contacts who left", f"{summary.contacts_left:,}")
    table.add_row("usage from / to", f"{summary.first_event} / {summary.last_event}")
    table.add_row("open tickets", f"{summary.open_tickets:,}")
    if summary.nps is not None:
        table.add_row("NPS", f"{summary.nps:+.0f} (mean answer {summary.average_nps})")
    for kind, figures in summary.outcomes.items():
        unknown = int(figures["arr_change_unknown"])
        change = f"ARR change {figures['arr_change']:,.0f}"
        if unknown:
            change += f"; unknown for {unknown:,}"
        table.add_row(f"outcomes: {kind}", f"{int(figures['count']):,} ({change})")
    segments = ", ".join(f"{k} {v}" for k, v in summary.accounts_by_segment.items())
    table.add_row("accounts by segment", segments)
    out.print(table)


Step = Callable[[str, int, int], None]


@contextmanager
def step_progress(enabled: bool, in_bytes: bool = False) -> Iterator[Step | None]:
    """One progress bar per step label (generation, each import, checking), on stderr."""
    if not enabled:
        yield None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn()]
    columns += [DownloadColumn()] if in_bytes else []
    with Progress(*columns, TimeRemainingColumn(), console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def step(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield step


def labelled(step: Step | None, label: str) -> Callable[[int, int], None] | None:
    """A progress callback for one step, or None when progress is not shown."""
    if step is None:
        return None
    return lambda done, total: step(label, done, total)


def main() -> None:
    """Entry point of the ``tenure`` script.

    A failure that is not the input's fault (a bug) still ends in one line, not a stack trace;
    TENURE_TRACEBACK=1 shows the trace for a bug report.
    """
    try:
        app()  # usage errors and exits are handled by Typer and end in SystemExit
    except Exception as err:
        if os.environ.get("TENURE_TRACEBACK") == "1":
            raise
        console.print(
            f"[bold red]Internal error:[/] {err.__class__.__name__}: {err}. This is a "
            "bug in Tenure; run again with TENURE_TRACEBACK=1 and report what it shows.",
            markup=True,
            highlight=False,
        )
        sys.exit(70)


# Command groups in modules of their own register themselves on ``app`` when imported.
from tenure.cli import churn as _churn  # noqa: E402, F401
from tenure.cli import impact as _impact  # noqa: E402, F401
from tenure.cli import plays as _plays  # noqa: E402, F401
from tenure.cli import routing as _routing  # noqa: E402, F401
from tenure.cli import triggers as _triggers  # noqa: E402, F401
