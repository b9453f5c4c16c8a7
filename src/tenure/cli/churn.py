"""Commands that predict and prove: train, models, backtest, calibrate, whatif, diagnose, forecast.

Each parses, makes one core call (tenure.churn), and renders; ``--json`` prints one object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tenure.cli import (
    DateOption,
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

HorizonOption = Annotated[
    int, typer.Option("--horizon", min=7, max=730, help="Days after a snapshot to look for it.")
]
OutcomeOption = Annotated[
    str, typer.Option("--outcome", help="What to predict: churn, or contraction (incl. churn).")
]
EveryOption = Annotated[
    int | None,
    typer.Option(
        "--every", min=1, max=365, show_default=False,
        help="Days between snapshots (default: the first of each month).",
    ),
]  # fmt: skip
FoldsOption = Annotated[
    int, typer.Option("--folds", min=1, max=120, help="Most recent test snapshots to backtest.")
]
AllowOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow", show_default=False,
        help="Keep an input the leakage guard flagged (repeat for more). Think twice.",
    ),
]  # fmt: skip
METRICS = {
    "auc": "AUC", "pr_auc": "PR-AUC", "brier": "Brier", "ece": "ECE",
    "lift_top_decile": "lift top 10%", "median_lead_days": "lead days", "caught": "caught",
}  # fmt: skip


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render_results(results: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("contender")
    for header in METRICS.values():
        table.add_column(header, justify="right")
    for r in results:
        table.add_row(r["name"], *[_number(r[m]) for m in METRICS])
    out.print(table)
    if results:
        out.print(f"{results[0]['rows']:,} test snapshots, {results[0]['positives']:,} with the "
                  "outcome. Lead days: median days from first flag (riskiest 10%) to the outcome; "
                  "caught: share of outcomes flagged before they came.")  # fmt: skip


def render_guard(flags: list[dict[str, Any]]) -> None:
    """Flags grouped by input (``account.country=US`` and ``=UK`` are one attribute)."""
    if not flags:
        out.print("Leakage guard: no input flagged.")
        return
    grouped: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    for f in flags:
        grouped.setdefault((f["input"].partition("=")[0], f["reason"], f["kept"]), []).append(f)
    out.print(f"Leakage guard: {len(flags)} inputs flagged.")
    for (name, reason, kept), found in grouped.items():
        verdict = "kept at your request" if kept else "left out"
        many = f" ({len(found)} values)" if len(found) > 1 else ""
        worst = max(found, key=lambda f: f["separation"])
        out.print(f"  {name}{many}: {reason}, {verdict}; {worst['input']}: {worst['evidence']}")


@app.command("train")
def train_command(
    horizon: HorizonOption = 90,
    outcome: OutcomeOption = "churn",
    every: EveryOption = None,
    folds: FoldsOption = 12,
    allow: AllowOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train the logistic, boosting and time-to-churn models on point-in-time snapshots,
    backtest them, and register them as a new version with model cards."""
    from tenure.churn.training import train

    with opened(db, as_json) as tenure, step_progress(not as_json) as step:
        try:
            done = train(tenure.store, horizon, outcome, every, allow or (), folds, step)
        except (ValueError, KeyError) as err:
            raise fail(str(err.args[0]), as_json) from None
    if as_json:
        emit_json(done.to_dict())
        return
    first = done.models[0]
    out.print(f"Trained version {first.version} on {first.metrics['rows']:,} snapshots from "
              f"{first.train_from} to {first.train_to} ({first.metrics['positives']:,} "
              f"with {outcome} within {horizon} days).")  # fmt: skip
    render_results([r.to_dict() for r in done.backtest.results], "Backtest (out of time)")
    render_guard([f.to_dict() for f in done.backtest.guard.flags])
    out.print("Registered: " + ", ".join(f"{m.name}:{m.version} (id {m.model_id})"
                                         for m in done.models))  # fmt: skip


@app.command("models")
def models_command(
    card: Annotated[
        str | None,
        typer.Option("--card", show_default=False,
                     help="Print one model's card: id, name (newest) or name:version."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """The model registry: every trained churn model version, or one model's card."""
    from tenure.churn import registry

    with opened(db, as_json) as tenure:
        if card is not None:
            try:
                found = registry.find(tenure.store, card)
            except KeyError as err:
                raise fail(str(err.args[0]), as_json) from None
            emit_json(found.to_dict(card=True)) if as_json else out.print(found.card)
            return
        listed = registry.versions(tenure.store)
    if as_json:
        emit_json({"models": [m.to_dict() for m in listed]})
        return
    table = Table(title=f"{len(listed)} churn models", title_justify="left")
    for column in ("id", "model", "outcome", "trained", "window", "inputs", "auc", "brier"):
        table.add_column(column)
    for m in listed:
        table.add_row(str(m.model_id), f"{m.name}:{m.version}",
                      f"{m.outcome} in {m.horizon_days}d", f"{m.trained_at:%Y-%m-%d %H:%M}",
                      f"{m.train_from} to {m.train_to}", str(len(m.inputs)),
                      _number(m.metrics.get("auc")), _number(m.metrics.get("brier")))  # fmt: skip
    out.print(table)


@app.command("backtest")
def backtest_command(
    horizon: HorizonOption = 90,
    outcome: OutcomeOption = "churn",
    every: EveryOption = None,
    folds: FoldsOption = 12,
    allow: AllowOption = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", show_default=False,
                     help="Where to write the HTML report (default: backtest-<horizon>d.html)."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Backtest the health score, a baseline and each churn model side by side on a rolling
    time split: AUC, PR-AUC, Brier, calibration, lift and lead time, plus an HTML report."""
    from tenure.churn import backtest
    from tenure.churn.report import html
    from tenure.churn.training import prepare

    target = report or Path(f"backtest-{horizon}d.html")
    if not target.parent.is_dir():
        raise fail(f"cannot write the report to {target}: no folder {target.parent}", as_json)
    with opened(db, as_json) as tenure, step_progress(not as_json) as step:
        try:
            snapshots, guarded = prepare(tenure.store, horizon, outcome, every, allow or (),
                                         folds=folds)  # fmt: skip
            result = backtest.run(snapshots, guarded, max_folds=folds,
                                  progress=labelled(step, "backtest"))  # fmt: skip
        except (ValueError, KeyError) as err:
            raise fail(str(err.args[0]), as_json) from None
    try:
        target.write_text(html(result), encoding="utf-8")
    except OSError as err:
        raise fail(f"cannot write the report to {target}: {err.strerror}", as_json) from None
    data = result.to_dict() | {"report": str(target)}
    if as_json:
        emit_json(data)
        return
    out.print(f"{outcome.capitalize()} within {horizon} days, {len(result.folds)} test "
              f"snapshots from {result.folds[0]} to {result.folds[-1]}.")  # fmt: skip
    render_results(data["results"], "Backtest (out of time)")
    render_guard(data["leakage_guard"])
    out.print(f"Report: {target}")


@app.command("whatif")
def whatif_command(
    account: Annotated[str, typer.Argument(help="The account id.")],
    changes: Annotated[
        list[str],
        typer.Option("--set", help="SIGNAL=VALUE, or SIGNAL=-20% relative (repeat for more)."),
    ],
    model: Annotated[
        str, typer.Option("--model", help="Churn model: name (newest), name:version or id.")
    ] = "logistic",
    as_of: DateOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change an account's signals: the new health score and churn probability, with a 95%
    bootstrap interval."""
    from tenure.churn.whatif import whatif

    with opened(db, as_json) as tenure:
        try:
            result = whatif(tenure.store, account, changes, as_of.date() if as_of else None, model)
        except (ValueError, KeyError) as err:
            raise fail(str(err.args[0]), as_json) from None
    if as_json:
        emit_json(result.to_dict())
        return
    data = result.to_dict()
    out.print(
        f"{account} as of {result.as_of}, "
        + ", ".join(
            f"{c['signal']} {_number(c['was'])} -> {_number(c['now'])}" for c in result.changes
        )
    )
    out.print(f"Health score: {_number(result.score_before, 2)} ({result.band_before}) -> "
              f"{_number(result.score_after, 2)} ({result.band_after}), "
              f"change {_number(data['score_change'], 2)}")  # fmt: skip
    b, a, d = result.churn_before, result.churn_after, result.churn_change
    out.print(f"Churn within {result.horizon_days} days ({result.model}): "
              f"{b.estimate:.2%} -> {a.estimate:.2%}, "
              f"change {d.estimate:+.2%} (95% interval {d.low:+.2%} to {d.high:+.2%}; "
              f"{result.note})")  # fmt: skip
    for note in result.notes:
        out.print(f"Note: {note}")


@app.command("calibrate")
def calibrate_command(
    horizon: HorizonOption = 90,
    every: EveryOption = None,
    folds: FoldsOption = 12,
    output: Annotated[
        Path | None,
        typer.Option("--out", show_default=False,
                     help="Where to write the proposed model (default: <name>-v<version>.yaml)."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Propose health-model weights from outcomes as a new version, backtested beside the
    model in force."""
    from tenure.churn.calibrate import calibrate

    with opened(db, as_json) as tenure, step_progress(not as_json):
        try:
            done = calibrate(tenure.store, output, horizon, every, folds)
        except (ValueError, KeyError, OSError) as err:
            raise fail(str(err.args[-1]), as_json) from None
    if as_json:
        emit_json(done.to_dict())
        return
    table = Table(title=f"Weights: {done.current} -> {done.proposed}", title_justify="left")
    for column in ("component", "current", "proposed", "risk change per 10 points"):
        table.add_column(column, justify="left" if column == "component" else "right")
    for w in done.weights:
        table.add_row(w["component"], f"{w['current']:g}", f"{w['proposed']:g}",
                      f"{-w['effect_per_10_points']:+.3f} log-odds")  # fmt: skip
    out.print(table)
    out.print(f"Fitted on {done.fitted_on}.")
    render_results([r.to_dict() for r in done.backtest.results], "Backtest, same test snapshots")
    out.print(f"Proposed model written to {done.path} (not active). Try it: tenure rescore "
              f"--model {done.path} --from DATE; use it: tenure score --model {done.path}")  # fmt: skip


@app.command("forecast")
def forecast_command(
    horizons: Annotated[
        list[int] | None,
        typer.Option("--horizon", min=7, max=730, show_default=False,
                     help="Days ahead (repeat for more; default 90 and 180)."),
    ] = None,
    as_of: DateOption = None,
    backtest: Annotated[
        bool, typer.Option(help="Also backtest the forecast at earlier month starts.")
    ] = True,
    accounts: Annotated[int, typer.Option(min=0, help="Accounts to list per horizon.")] = 10,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Renewal forecast (expected renewing ARR with an 80% interval, per account and in total)
    and NRR forecast, each backtested against what happened."""
    from tenure.churn.forecast import forecast

    with opened(db, as_json) as tenure, step_progress(not as_json):
        try:
            done = forecast(tenure.store, horizons or [90, 180],
                            as_of.date() if as_of else None, backtest)  # fmt: skip
        except (ValueError, KeyError) as err:
            raise fail(str(err.args[0]), as_json) from None
    data = done.to_dict()
    if as_json:
        emit_json(data)
        return
    for h in data["horizons"]:
        r, n = h["expected_renewing_arr"], h["nrr"]
        out.print(f"Next {h['horizon_days']} days from {data['as_of']} ({data['model']}): "
                  f"{len(h['accounts'])} renewals, ARR {h['arr_up_for_renewal']:,.0f} up; expected "
                  f"to renew {r['expected']:,.0f} (80% interval {r['low']:,.0f} to {r['high']:,.0f})."
                  f" NRR {n['expected']:.1%} ({n['low']:.1%} to {n['high']:.1%}).")  # fmt: skip
        render_renewals(h["accounts"][:accounts])
    for days, s in data["backtest_summary"].items():
        out.print(f"Backtest, {days} days, {s['folds']} month starts: renewing ARR off by "
                  f"{_number(s['renewing_arr_mape'])} on average (interval held "
                  f"{_number(s['renewing_arr_coverage'])}); NRR off by {s['nrr_mae_points']} "
                  f"points (interval held {_number(s['nrr_coverage'])}).")  # fmt: skip


def render_renewals(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = Table(title="Most ARR at risk first", title_justify="left")
    for column in ("account", "ARR", "days to renewal", "renews", "expected ARR"):
        table.add_column(column, justify="left" if column == "account" else "right")
    for a in rows:
        table.add_row(a["account_id"], f"{a['arr']:,.0f}", str(a["days_to_renewal"]),
                      f"{a['renewal_probability']:.0%}", f"{a['expected_renewing_arr']:,.0f}")  # fmt: skip
    out.print(table)


@app.command("diagnose")
def diagnose_command(
    account: Annotated[str, typer.Argument(help="The account id.")],
    as_of: DateOption = None,
    count: Annotated[int, typer.Option("--count", min=1, max=50, help="Lookalikes per group.")] = 5,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """An account against its most similar accounts (same segment, nearest in signal space)
    that renewed and that churned, and where it differs from each."""
    from tenure.churn.lookalikes import diagnose_account

    with opened(db, as_json) as tenure, step_progress(not as_json):
        try:
            found = diagnose_account(tenure.store, account, as_of.date() if as_of else None, count)
        except (ValueError, KeyError) as err:
            raise fail(str(err.args[0]), as_json) from None
    data = found.to_dict()
    if as_json:
        emit_json(data)
        return
    out.print(f"{account} ({data['segment']}) as of {data['as_of']}.")
    for group in ("renewed", "churned"):
        near = data[group]["neighbours"]
        out.print(f"\nMost similar that {group}: " + ", ".join(
            f"{n['account_id']} ({n['distance']:.2f})" for n in near) if near else
            f"\nNo account in the segment {group}.")  # fmt: skip
        for d in data[group]["differences"]:
            out.print(f"  {d['sentence']}")
    for note in data["notes"]:
        out.print(f"Note: {note}")
