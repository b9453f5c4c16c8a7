"""Loading the demo portfolio: generate the files, then import them the way a user would."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tenure.demo.portfolio import FEATURES, PortfolioSpec, generate_portfolio
from tenure.health import default_model, load_model
from tenure.health.explain import Explanation
from tenure.health.scoring import Ranked, ScoreRun, movers, ranked, register, score_portfolio
from tenure.ingest import ImportReport, import_file
from tenure.portfolio import PortfolioSummary, summarise
from tenure.store import Store

if TYPE_CHECKING:
    from tenure.churn.backtest import Backtest
    from tenure.plays.impact import ImpactReport
    from tenure.triggers.replay import Alert

Step = Callable[[str, int, int], None]


@dataclass
class DemoReport:
    """The files written, what each import did, and the resulting portfolio."""

    files: dict[str, list[str]]
    imports: list[ImportReport] = field(default_factory=list)
    summary: PortfolioSummary | None = None
    scores: ScoreRun | None = None
    lowest: list[Ranked] = field(default_factory=list)
    movers: list[Explanation] = field(default_factory=list)
    proof: Backtest | None = None  # does the score predict churn? (None: too little history)
    proof_note: str = ""
    alerts: list[Alert] = field(default_factory=list)  # raised by the default triggers
    plays: dict[str, Any] = field(default_factory=dict)  # started, ended, tasks, by playbook
    tasks: list[dict[str, Any]] = field(default_factory=list)  # open tasks on the last day
    impact: ImpactReport | None = None

    def as_dict(self) -> dict[str, Any]:
        imports = [
            {k: v for k, v in report.as_dict().items() if k != "errors"}
            | {"errors": [e.__dict__ for e in report.errors[:5]]}
            for report in self.imports
        ]
        summary = None if self.summary is None else self.summary.as_dict()
        health = None
        if self.scores is not None:
            health = self.scores.to_dict() | {
                "lowest": [asdict(r) for r in self.lowest],
                "movers": [m.to_dict() for m in self.movers],
            }
        proof = None if self.proof is None else self.proof.to_dict()
        return {"files": self.files, "imports": imports, "summary": summary, "health": health,
                "backtest": proof, "backtest_note": self.proof_note,
                "alerts": [a.to_dict() for a in self.alerts], "plays": self.plays,
                "impact": None if self.impact is None else self.impact.to_dict()}  # fmt: skip


def load_demo(
    store: Store, spec: PortfolioSpec, out_dir: Path, step: Step | None = None
) -> DemoReport:
    """Generate the portfolio into ``out_dir`` and import every file into ``store``.

    ``step(label, done, total)`` reports progress of generation and of each import.
    """

    def generating(done: int, total: int) -> None:
        if step:
            step("generate portfolio", done, total)

    files = generate_portfolio(spec, out_dir, progress=generating)
    report = DemoReport({kind: [str(p) for p in paths] for kind, paths in files.items()})
    for kind, paths in files.items():
        for path in paths:
            report.imports.append(_import_one(store, kind, path, step))
    report.summary = summarise(store, as_of=last_day(spec))
    _score(store, spec, out_dir, report, step)
    _prove(store, out_dir, report, step)
    _raise_alerts(store, spec, report, step)
    _run_plays(store, spec, out_dir, report, step)
    return report


ALERT_DAYS = 90  # the demo evaluates its triggers daily over the scored history


def _raise_alerts(store: Store, spec: PortfolioSpec, report: DemoReport, step: Step | None) -> None:
    """The default triggers, evaluated on each of the last 90 days in order, as a daily schedule
    would have (the first day is a first evaluation: every condition holding raises its alert),
    stored in the inbox."""
    from tenure.triggers.definitions import default_triggers
    from tenure.triggers.live import run

    if step:
        step("evaluate triggers daily", 0, 1)
    last = last_day(spec)
    report.alerts = run(store, default_triggers(), last, last - timedelta(days=ALERT_DAYS - 1))
    if step:
        step("evaluate triggers daily", 1, 1)


OUTBOX = "outbox.jsonl"  # the demo's automated email and Slack steps, instead of sending them


def _run_plays(
    store: Store, spec: PortfolioSpec, out_dir: Path, report: DemoReport, step: Step | None
) -> None:
    """The default playbooks run day by day over the same 90 days (as a daily `tenure plays
    advance` would: plays started from the alerts, steps carried out or turned into tasks, plays
    ended by their criteria), then each playbook's measured impact. Automated email and Slack
    steps are written to ``outbox.jsonl`` in ``out_dir`` (with TENURE_ROUTES they are sent)."""
    from tenure.plays.facts import SignalHistory
    from tenure.plays.impact import impact_report
    from tenure.plays.playbooks import default_playbooks
    from tenure.plays.running import run_day
    from tenure.plays.tasks import list_plays, list_tasks

    last = last_day(spec)
    first = last - timedelta(days=ALERT_DAYS - 1)
    books = default_playbooks()
    if step:
        step("run plays daily", 0, ALERT_DAYS)
    history = SignalHistory.compute(store, first, last, books.names())
    outbox = out_dir / OUTBOX
    outbox.write_text("", encoding="utf-8")
    for n in range(ALERT_DAYS):
        run_day(store, first + timedelta(days=n), playbooks=books, signals=history,
                send=_outbox(outbox))  # fmt: skip
        if step:
            step("run plays daily", n + 1, ALERT_DAYS)
    report.plays = _tally(list_plays(store, limit=100_000)) | {"outbox": str(outbox)}
    report.tasks = [_plain(t) for t in list_tasks(store, status="open", due_by=last)]
    if step:
        step("measure playbook impact", 0, 1)
    report.impact = impact_report(store, as_of=last)
    if step:
        step("measure playbook impact", 1, 1)


def _outbox(path: Path) -> Callable[[dict[str, Any]], str]:
    """A play's ``send`` that writes email and Slack steps to ``path`` as JSON lines."""
    from tenure.plays.running import inbox_only

    def send(task: dict[str, Any]) -> str:
        if task["channel"] not in ("email", "slack"):
            return inbox_only(task)
        keys = ("task_id", "account_id", "channel", "owner", "persona", "contact_id", "title",
                "content")  # fmt: skip
        with path.open("a", encoding="utf-8") as file:
            file.write(json.dumps({k: task.get(k) for k in keys}, default=str) + "\n")
        return "sent"

    return send


def _tally(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Plays by playbook and status, and their tasks by status."""
    by_playbook: dict[str, dict[str, int]] = {}
    tasks: dict[str, int] = {}
    for play in rows:
        counts = by_playbook.setdefault(play["playbook"], {})
        counts[play["status"]] = counts.get(play["status"], 0) + 1
        for status, n in play["tasks"].items():
            tasks[status] = tasks.get(status, 0) + n
    return {"plays": len(rows), "by_playbook": by_playbook, "tasks": tasks}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}


PROOF_FOLDS = 6


def _prove(store: Store, out_dir: Path, report: DemoReport, step: Step | None) -> None:
    """Backtest the health score against the outcomes (and the churn models beside it), with the
    HTML report in ``out_dir``; a portfolio too short to backtest gets a note instead."""
    from tenure.churn import backtest
    from tenure.churn.report import html
    from tenure.churn.training import prepare

    def testing(done: int, total: int) -> None:
        if step:
            step("backtest churn predictions", done, total)

    try:
        snapshots, guarded = prepare(store, 90)
        report.proof = backtest.run(snapshots, guarded, max_folds=PROOF_FOLDS, progress=testing)
    except ValueError as err:
        report.proof_note = str(err)
        return
    (out_dir / "backtest-90d.html").write_text(html(report.proof), encoding="utf-8")


def demo_model(out_dir: Path) -> Path:
    """The default health model with the demo product's key features named, written out."""
    key = [name for name, is_key, *_ in FEATURES if is_key]
    text = default_model().text.replace("model: default", "model: demo", 1)
    text = text.replace("key_features: []", f"key_features: [{', '.join(key)}]", 1)
    path = out_dir / "health-model.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _score(
    store: Store, spec: PortfolioSpec, out_dir: Path, report: DemoReport, step: Step | None
) -> None:
    registered = register(store, load_model(demo_model(out_dir)))

    def scoring(done: int, total: int) -> None:
        if step:
            step("score 90 days of history", done, total)

    report.scores = score_portfolio(store, registered, last_day(spec), 90, scoring)
    report.lowest = ranked(store)[:10]
    report.movers = movers(store, registered, days=30, count=5)


def last_day(spec: PortfolioSpec) -> date:
    """The last day the portfolio covers (the demo's "today")."""
    month = spec.start.month - 1 + spec.months
    return date(spec.start.year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def _import_one(store: Store, kind: str, path: Path, step: Step | None) -> ImportReport:
    def importing(done: int, total: int) -> None:
        if step:
            step(f"import {kind} ({path.name})", done, total)

    return import_file(store, kind, path, progress=importing)
