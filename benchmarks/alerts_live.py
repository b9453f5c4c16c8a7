"""From an event to its alert: triggers evaluated on every import, and the daily run.

On a copy of the demo portfolio (500 accounts, 24 months), one long-running process imports
``--events`` one-row files, each a failed payment for a random customer, as a Segment-style
stream would arrive. Each import is timed in three stages:

- import: validate, match and store the row durably (the reference: what an event costs anyway);
- scores: the incremental engine updates the account's signals and health score;
- triggers: every trigger in force steps its episode on those live signals and stores the alert.

The daily run (``tenure triggers run``: every customer, every trigger, one day) is compared with
the batch engine computing that day's signals alone. Results go to benchmarks/RESULTS.md.

    python benchmarks/alerts_live.py [--db tenure.db] [--events 200]
"""

from __future__ import annotations

import argparse
import datetime
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from results import append, machine, open_demo
from sqlalchemy import select

from tenure.health.scoring import (
    LiveScores,
    active_model,
    batch_engine,
    day_number,
    load_tables,
    score_portfolio_quiet,
    today,
)
from tenure.ingest import import_file
from tenure.store import Store
from tenure.store.tables import health_current
from tenure.triggers.definitions import default_triggers
from tenure.triggers.live import HISTORY_DAYS, after_import, run

RESULTS = Path(__file__).with_name("RESULTS.md")


def copy_of(path: Path) -> Store:
    """A private copy of the demo database, so the alerts raised here stay here."""
    open_demo(path).close()
    folder = Path(tempfile.mkdtemp())
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            shutil.copy(f"{path}{suffix}", folder / f"tenure.db{suffix}")
    return Store(f"sqlite:///{folder / 'tenure.db'}")


def customers(store: Store) -> tuple[list[str], datetime.date]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(health_current.c.account_id, health_current.c.as_of))
        found = [(r.account_id, r.as_of) for r in rows]
    return sorted(a for a, _ in found), max(d for _, d in found)


def stream(store: Store, events: int) -> dict[str, list[float]]:
    """Import ``events`` one-row files; milliseconds per stage per event. The daily job has
    kept the health history up to today (health_band_drop reads the band a week before)."""
    score_portfolio_quiet(store, active_model(store), today(), HISTORY_DAYS + 1)
    accounts, day = customers(store)
    live, triggers = LiveScores(store), default_triggers()
    folder = Path(tempfile.mkdtemp())
    rng = random.Random(5)
    stages: dict[str, list[float]] = {"import": [], "scores": [], "triggers": [], "alerts": []}
    for n in range(events + 10):  # the first ten warm the engine's per-account state up
        account = rng.choice(accounts)
        path = folder / f"payment-{n}.csv"
        path.write_text("payment_id,account_id,amount,status,attempted_at\n"
                        f"bench-{n},{account},100.00,failed,{day}T09:00:00Z\n")  # fmt: skip
        t0 = time.perf_counter()
        report = import_file(store, "payments", path)
        t1 = time.perf_counter()
        live.after_import("payments", report.import_id or 0, report.accounts)
        t2 = time.perf_counter()
        raised = after_import(store, triggers, live, report.accounts)
        t3 = time.perf_counter()
        if n >= 10:
            for stage, took in zip(("import", "scores", "triggers"), (t1 - t0, t2 - t1, t3 - t2),
                                   strict=True):  # fmt: skip
                stages[stage].append(took * 1000)
            stages["alerts"].append(len(raised))
    return stages


def daily(store: Store) -> tuple[float, float, int]:
    """Seconds for the daily run and for the batch signals of that day alone; alerts raised."""
    _, day = customers(store)
    catalog = active_model(store).catalog()
    t0 = time.perf_counter()
    batch_engine(catalog).compute(load_tables(store, catalog), [day_number(day)])
    t1 = time.perf_counter()
    raised = run(store, default_triggers(), day)
    t2 = time.perf_counter()
    return t2 - t1, t1 - t0, len(raised)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("tenure.db"))
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    store = copy_of(args.db)
    run_s, signals_s, daily_alerts = daily(store)
    stages = stream(store, args.events)
    reference = statistics.median(stages["import"])
    lines = [
        "",
        f"## From an event to its alert, {datetime.date.today()}",
        "",
        f"Machine: {machine()}. Demo portfolio, default triggers "
        f"({len(default_triggers().triggers)}), {args.events} one-row imports of a failed "
        f"payment in one process; {sum(stages['alerts']):.0f} alerts raised.",
        "",
        "| stage | p50 ms | p99 ms | p50 against the import |",
        "|---|---|---|---|",
    ]
    for stage in ("import", "scores", "triggers"):
        values = stages[stage]
        lines.append(f"| {stage} | {statistics.median(values):.1f} | {p99(values):.1f} | "
                     f"{statistics.median(values) / reference:.2f}x |")  # fmt: skip
    total = [sum(v) for v in zip(stages["import"], stages["scores"], stages["triggers"],
                                 strict=True)]  # fmt: skip
    lines += [
        f"| event to alert | {statistics.median(total):.1f} | {p99(total):.1f} | "
        f"{statistics.median(total) / reference:.2f}x |",
        "",
        f"Daily run (every customer, every trigger, one day): {run_s:.1f} s, against {signals_s:.1f}"
        f" s for that day's batch signals alone ({run_s / signals_s:.1f}x); {daily_alerts} alerts.",
    ]
    append(RESULTS, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
