"""``tenure plays impact``: the measured impact of each playbook (tenure.plays.impact does the
work). Importing this module registers the command on ``tenure plays``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tenure.cli import DbOption, JsonOption, emit_json, fail, opened, out
from tenure.cli.plays import plays_app

if TYPE_CHECKING:
    from tenure.plays.impact import Effect, ImpactReport, PlaybookImpact

AsOfOption = Annotated[
    datetime | None,
    typer.Option("--as-of", formats=["%Y-%m-%d"], show_default=False,
                 help="Measure as the data stood on this day (default: the last day of the data)."),
]  # fmt: skip
PlaybookOption = Annotated[
    list[str] | None,
    typer.Option("--playbook", show_default=False,
                 help="Only this playbook (repeat for more; default: every playbook with plays)."),
]  # fmt: skip
CaliperOption = Annotated[
    float,
    typer.Option(min=0.01, max=10.0,
                 help="Largest root-mean-square standardised difference between a play and its "
                 "control (wider: more plays matched, less alike)."),
]  # fmt: skip


@plays_app.command("impact")
def plays_impact(
    as_of: AsOfOption = None,
    playbook: PlaybookOption = None,
    caliper: CaliperOption = 0.5,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Outcomes of the accounts that got each playbook (health change at 30/60/90 days, renewal,
    expansion) against matched accounts that did not, with 95% confidence intervals."""
    from tenure.plays.impact import impact_report

    with opened(db, as_json) as tenure:
        try:
            found = impact_report(tenure.store, as_of.date() if as_of else None, playbook,
                                  caliper=caliper)  # fmt: skip
        except ValueError as err:
            raise fail(str(err), as_json) from None
    if as_json:
        emit_json(found.to_dict())
        return
    render_impact(found)


def render_impact(report: ImpactReport) -> None:
    if not report.playbooks:
        out.print(f"No plays started by {report.as_of}: nothing to measure yet.")
        return
    for found in report.playbooks:
        out.print(_table(found, report))
        for note in found.notes:
            out.print(f"Note: {note}")


def _table(found: PlaybookImpact, report: ImpactReport) -> Table:
    table = Table(title=f"{found.playbook}: {found.plays} plays, {found.matched} matched, "
                  f"{found.unmatched} unmatched (as of {report.as_of})", title_justify="left")  # fmt: skip
    for column in ("outcome", "pairs", "treated", "control", "difference", "95% CI"):
        table.add_column(column, justify="left" if column == "outcome" else "right")
    for label, effect in found.outcomes():
        rate = label.startswith(("renewal", "expansion"))
        table.add_row(label, str(effect.n), *_cells(effect, rate))
    return table


def _cells(effect: Effect, rate: bool) -> tuple[str, str, str, str]:
    def shown(value: float | None, signed: bool = True) -> str:
        if value is None:
            return "-"
        if rate:
            value = round(value, 2) + 0.0  # no "-0%"
            return f"{value:+.0%}" if signed else f"{value:.0%}"
        return f"{round(value, 1) + 0.0:+.1f}"  # health: changes in points

    means = shown(effect.treated, False), shown(effect.control, False)
    if not effect.enough or effect.ci is None:
        return *means, "too few plays to say", "-"
    low, high = effect.ci
    return *means, shown(effect.difference), f"{shown(low)} to {shown(high)}"
