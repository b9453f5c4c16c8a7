"""Training plus backtest on the demo portfolio: where the time goes, against references.

Phases, each timed once on the demo portfolio (500 accounts, 24 months, 3.3 M usage events):

- Snapshots: monthly point-in-time signals for every account, labelled, with health scores.
  Reference: the batch engine computing the same days' signals alone (what labelling, health
  scoring and the attribute columns add).
- Backtest: five contenders refitted on each of 12 rolling folds. Reference: the same five fitted
  once on every labelled snapshot (the backtest costs about that times the folds, less because
  early folds are smaller).
- Final fit: the three churn models on every labelled snapshot plus 100 bootstrap refits of the
  logistic model, as ``tenure train`` does.

Peak memory is the process's maximum resident set. The database is ``--db`` (default: the demo's
``tenure.db``); when it does not exist the demo portfolio is generated into it first.

    python benchmarks/churn_training.py [--db tenure.db] [--folds 12]
"""

from __future__ import annotations

import argparse
import datetime
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from results import append, machine, open_demo

from tenure.churn import backtest as bt
from tenure.churn.guard import guard
from tenure.churn.snapshots import build, snapshot_days
from tenure.churn.training import BOOTSTRAPS, bootstrap
from tenure.health.scoring import active_model, batch_engine, day_number, load_tables

RESULTS = Path(__file__).with_name("RESULTS.md")
T = TypeVar("T")


def timed(label: str, work: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = work()
    took = time.perf_counter() - start
    print(f"{label}: {took:.1f} s", file=sys.stderr)
    return took, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("tenure.db"))
    parser.add_argument("--folds", type=int, default=bt.MAX_FOLDS)
    args = parser.parse_args()
    store = open_demo(args.db)
    days = snapshot_days(store)
    cat = active_model(store).catalog()
    ref_signals, _ = timed("reference: signals alone", lambda: batch_engine(cat).compute(
        load_tables(store, cat), [day_number(d) for d in days]))  # fmt: skip
    t_snap, snapshots = timed("snapshots", lambda: build(store, days, 90))
    guarded = guard(snapshots, known_by=bt.test_days(snapshots, args.folds)[0])
    labelled = snapshots.labelled()
    chosen = bt.contenders(guarded.inputs, 90)
    ref_fit, _ = timed("reference: five contenders fitted once", lambda: [
        bt.fit(c, snapshots, labelled, snapshots.data_end) for c in chosen])  # fmt: skip
    t_backtest, result = timed("backtest", lambda: bt.run(snapshots, guarded, chosen, args.folds))
    logistic = next(c for c in chosen if c.name == "logistic")
    t_final, _ = timed("final fit and bootstrap", lambda: [
        [bt.fit(c, snapshots, labelled, snapshots.data_end) for c in chosen[2:]],
        bootstrap(logistic, snapshots, labelled)])  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record(snapshots, result, t_snap, ref_signals, t_backtest, ref_fit, t_final, peak)


def record(
    snapshots: Any, result: Any, t_snap: float, ref_signals: float, t_backtest: float,
    ref_fit: float, t_final: float, peak: float,
) -> None:  # fmt: skip
    rows, labelled = len(snapshots.frame), len(snapshots.labelled())
    total = t_snap + t_backtest + t_final
    lines = [
        "",
        f"## Churn training and backtest, {datetime.date.today()}",
        "",
        f"Machine: {machine()}. Demo portfolio, {len(snapshots.days)} monthly snapshot days, "
        f"{rows:,} snapshots ({labelled:,} labelled), {len(result.folds)} test folds, "
        "5 contenders.",
        "",
        "| phase | seconds | reference | reference s | ratio |",
        "|---|---|---|---|---|",
        f"| snapshots (signals, labels, health) | {t_snap:.1f} | signals alone | "
        f"{ref_signals:.1f} | {t_snap / ref_signals:.2f}x |",
        f"| backtest ({len(result.folds)} folds) | {t_backtest:.1f} | each contender fitted once "
        f"| {ref_fit:.1f} | {t_backtest / ref_fit:.1f}x |",
        f"| final fit + {BOOTSTRAPS} bootstraps | {t_final:.1f} | | | |",
        f"| total (`tenure train`) | {total:.1f} | | | |",
        "",
        f"Peak resident memory {peak:,.0f} MiB. Out-of-time AUC: "
        + ", ".join(f"{q.name} {q.auc:.3f}" for q in result.results)
        + ".",
    ]
    append(RESULTS, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
