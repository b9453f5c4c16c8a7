"""Incremental signals: events/s with every event re-evaluated, event-to-signal latency, state size.

Usage rows of ``--accounts`` accounts (the shapes of benchmarks/signals_batch.py: about 1,000
usage rows an account over two years) stream through ``IncrementalEngine.apply`` in time order,
5% of them one to three days late, and after each event its account is evaluated (every signal
as of the stream's clock, the latest day seen) and scored. Before the stream, the engine takes in
the year before it (every source) untimed. The engine prunes each account itself when that account
reaches a new day (inside ``apply``, so its cost is in the figures).

- Throughput: events/s over the first ``--days`` days of the stream, best of ``--repeat`` (each
  from the same warm state), with scoring, with signals only and with apply only, against a bare
  Python loop over the same row dicts that keeps per-account per-day totals in a dict
  (``totals[account][day] += count``), and one that only appends each row to a list.
- Latency: the next ``--latency-events`` events arrive at half the sustainable rate (Poisson
  arrivals); latency is the time from an event's arrival to its account's updated signals and
  score, queueing included. p50 and p99 (aim: p99 under 50 ms), twice from the same state: the
  engine as shipped, and with a full ``prune()`` of every account on each new day added to the
  event path (what a naive scheduler would cost; not needed).
- State: after pruning, each account's state as ``pickle.dumps(state, protocol=5)`` and in a
  compact encoding written below (per-day dicts packed with ``array``; aim: under 2 KB), and
  ``AccountState.size()`` entries.

At the end every account's signals are checked against the batch engine over the same rows.

    python benchmarks/signals_incremental.py [--accounts 2000] [--days 5] [--repeat 3]  # 90 s
    python benchmarks/signals_incremental.py --quick  # 200 accounts, not recorded: 10 s
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import pickle
import struct
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import append, machine
from signals_batch import (
    AS_OF,
    ROOT,
    catalog,
    make_portfolio,
    peak_mib,
    revision,
    schema_of,
    small_tables,
    stalled_us,
    usage_chunk,
)

from tenure.signals.batch import BatchEngine
from tenure.signals.declare import Aggregate, Source
from tenure.signals.incremental import AccountState, IncrementalEngine

ROWS_PER_ACCOUNT = 1_000  # 100,000,000 usage rows over 100,000 accounts in the batch benchmark
LATE_SHARE, MAX_DELAY = 0.05, 3
STREAM_DAYS = 30  # the stream is the last 30 days before AS_OF; the year before it is warm-up
SEED = 7
Row = dict[str, Any]
Scorer = Callable[[str, int, dict[str, Any], Row], Any]
EPOCH = date(1970, 1, 1)


def scorer() -> tuple[Scorer | None, str]:
    """The health scorer (the shipped default model), and how the figures name what was timed."""
    try:
        from tenure.health import default_model
        from tenure.health.score import score
    except ImportError:  # an older tree: time the signals alone, and say so
        return None, "no score (tenure.health.score is missing: signals only)"
    model = default_model()

    def run(account: str, as_of: int, signals: dict[str, Any], attributes: Row) -> Any:
        return score(model, account, EPOCH + timedelta(days=as_of), signals, attributes)

    return run, f"its health score (`tenure.health.score.score`, {model.label})"


# --- the stream ----------------------------------------------------------------------------------


class Stream:
    """Every prepared row of a generated portfolio, split into warm-up and the timed stream."""

    def __init__(self, accounts: int, rows_per_account: int, seed: int = SEED) -> None:
        rng = np.random.default_rng(seed)
        portfolio = make_portfolio(accounts, rng)
        self.tables = small_tables(portfolio, rng)
        usage = usage_chunk(portfolio, accounts * rows_per_account, rng)
        self.start = AS_OF - STREAM_DAYS + 1
        day = usage.column("day").to_numpy()
        late = rng.random(len(day)) < LATE_SHARE
        arrival = day + np.where(late, rng.integers(1, MAX_DELAY + 1, len(day)), 0)
        keep = (day > self.start - 365) & (arrival <= AS_OF)
        order = np.lexsort((rng.random(int(keep.sum())), arrival[keep]))
        usage, arrival = usage.filter(pa.array(keep)).take(order), arrival[keep][order]
        split = int(np.searchsorted(arrival, self.start))
        self.warm_usage = usage.slice(0, split).to_pylist()
        self.events = usage.slice(split).to_pylist()  # in arrival order
        self.arrival = arrival[split:]

    def warm_up(self, engine: IncrementalEngine) -> None:
        """Every record known before the stream: rows that change in full, the rest by day."""
        for name, table in self.tables.items():
            source = _source(name)
            if source.append_only:
                table = table.filter(pc.less(table.column(source.day), self.start))
            engine.apply(name, table.to_pylist())
        engine.apply("usage", self.warm_usage)
        engine.prune(self.start - 1)

    def seen(self, fed: int) -> dict[str, pa.Table]:
        """The tables of every row the engine has taken in after ``fed`` stream events."""
        tables = {}
        for name, table in self.tables.items():
            source = _source(name)
            if source.append_only:
                table = table.filter(pc.less(table.column(source.day), self.start))
            tables[name] = table.cast(schema_of(name))
        rows = self.warm_usage + self.events[:fed]
        tables["usage"] = pa.Table.from_pylist(rows, schema_of("usage"))
        return tables


def _source(name: str) -> Source:
    (found,) = [s for s in catalog().sources() if s.name == name]
    return found


class Feeder:
    """Feeds events to the engine: the clock, pruning on a new day (unless ``prune`` is off, as
    when a separate job prunes), then, by ``mode``, evaluation and scoring of the account."""

    def __init__(
        self,
        engine: IncrementalEngine,
        clock: int,
        mode: str = "score",
        prune: bool = True,
    ) -> None:
        self.engine, self.clock, self.mode, self.prune = engine, clock, mode, prune
        self.score = scorer()[0] if mode == "score" else None
        self.prunes: list[float] = []

    def one(self, row: Row) -> Any:
        day = row["day"]
        if day > self.clock:
            self.clock = day
            if self.prune:
                started = time.perf_counter()
                self.engine.prune(day)
                self.prunes.append(time.perf_counter() - started)
        account = row["account_id"]
        self.engine.apply("usage", (row,))
        if self.mode == "apply":
            return None
        signals = self.engine.evaluate(account, self.clock)
        if self.score is None:
            return signals
        attributes = self.engine.states[account].attributes
        return self.score(account, self.clock, signals, attributes)


def feed(feeder: Feeder, events: Sequence[Row]) -> None:
    for row in events:
        feeder.one(row)


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def dict_update(events: Sequence[Row]) -> dict[str, dict[int, int]]:
    totals: dict[str, dict[int, int]] = {}
    for row in events:
        per_day = totals.setdefault(row["account_id"], {})
        per_day[row["day"]] = per_day.get(row["day"], 0) + row["count"]
    return totals


def append_only(events: Sequence[Row]) -> list[Row]:
    kept: list[Row] = []
    for row in events:
        kept.append(row)
    return kept


def throughput(
    engine: IncrementalEngine,
    warm: dict[str, AccountState],
    clock: int,
    events: Sequence[Row],
    repeat: int,
) -> dict[str, Any]:
    """Events/s through the engine (each run from the same warm state) and the references."""
    runs: dict[str, list[tuple[float, ...]]] = {"apply": [], "evaluate": [], "score": []}
    for _ in range(repeat):
        for mode, times in runs.items():
            engine.states = copy.deepcopy(warm)
            feeder = Feeder(engine, clock, mode, prune=False)  # the engine prunes by itself
            stalled, cpu = stalled_us(), time.process_time()
            took = timed(partial(feed, feeder, events))
            cpu = time.process_time() - cpu
            stall = (stalled_us() - stalled) / 1e6 / took
            times.append((took, sum(feeder.prunes), stall, cpu))
    best = {mode: min(times) for mode, times in runs.items()}
    updates = min(timed(lambda: dict_update(events)) for _ in range(repeat))
    appends = min(timed(lambda: append_only(events)) for _ in range(repeat))
    n = len(events)
    seconds = {mode: b[0] for mode, b in best.items()}
    return {
        "events": n,
        "events_per_s": n / seconds["score"],
        "evaluate_per_s": n / seconds["evaluate"],
        "apply_per_s": n / seconds["apply"],
        "apply_us": seconds["apply"] / n * 1e6,
        "evaluate_us": (seconds["evaluate"] - seconds["apply"]) / n * 1e6,
        "score_us": (seconds["score"] - seconds["evaluate"]) / n * 1e6,
        "prune_share": best["score"][1] / seconds["score"],
        "cpu_stalled": best["score"][2],
        "events_per_cpu_s": n / min(t[3] for t in runs["score"]),
        "dict_update_per_s": n / updates,
        "append_per_s": n / appends,
    }


def latency(feeder: Feeder, events: Sequence[Row], rate: float, seed: int = SEED) -> dict[str, Any]:
    """Feed ``events`` with Poisson arrivals at ``rate`` a second; arrival-to-result times."""
    gaps = np.random.default_rng(seed).exponential(1 / rate, len(events))
    stalled = stalled_us()
    started = time.perf_counter() + 0.01
    arrivals = started + np.cumsum(gaps)
    took = np.empty(len(events))
    for i, row in enumerate(events):
        due = float(arrivals[i])
        ahead = due - time.perf_counter()
        if ahead > 0.002:
            time.sleep(ahead - 0.001)
        while time.perf_counter() < due:
            pass
        feeder.one(row)
        took[i] = time.perf_counter() - due
    ms = took * 1000
    wall = time.perf_counter() - started
    return {
        "cpu_stalled": (stalled_us() - stalled) / 1e6 / wall,
        "events": len(events),
        "rate_per_s": rate,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "p999_ms": float(np.percentile(ms, 99.9)),
        "max_ms": float(ms.max()),
        "prunes": len(feeder.prunes),
        "prune_ms_mean": float(np.mean(feeder.prunes) * 1000) if feeder.prunes else 0.0,
    }


# --- state size ----------------------------------------------------------------------------------


def shared_key(agg: Aggregate) -> tuple[Any, ...]:
    """How the engine files an aggregation's running state (its identity without the window)."""
    return (agg.reduction, agg.source.name, agg.column, agg.where, agg.order)


def running_keys() -> list[tuple[Any, ...]]:
    """Every running state an account can hold, in a fixed order (so no key is stored)."""
    keys = {shared_key(a) for s in catalog() for a in s.aggregates() if a.source.append_only}
    return sorted(keys, key=repr)


def pack_value(value: Any) -> bytes:
    """One tagged value: None, bool, 32/64-bit int, float, or a length-prefixed UTF-8 string."""
    if value is None:
        return b"\x00"
    if isinstance(value, bool):
        return b"\x02" if value else b"\x01"
    if isinstance(value, int):
        return b"\x03" + struct.pack("<i", value) if -(2**31) <= value < 2**31 else (
            b"\x04" + struct.pack("<q", value))  # fmt: skip
    if isinstance(value, float):
        return b"\x05" + struct.pack("<d", value)
    text = str(value).encode()
    size = (
        struct.pack("<B", len(text)) if len(text) < 255 else b"\xff" + struct.pack("<I", len(text))
    )
    return b"\x06" + size + text


def pack_days(days: Iterable[int], base: int) -> bytes:
    """Days as unsigned 16-bit offsets from ``base`` (pruned state spans about a year)."""
    return array("H", (day - base for day in days)).tobytes()


def pack_state(state: AccountState, keys: Sequence[tuple[Any, ...]]) -> bytes:
    """A compact encoding of one account's state (its account id, the key, is not included)."""
    days = [d for acc in state.running.values() for d in (*acc.by_day, *acc.last_seen.values())]
    base = min(days, default=0)
    out = bytearray(struct.pack("<i", base))
    for key in keys:
        acc = state.running.get(key)
        if acc is None:
            out += struct.pack("<HHB", 0, 0, 0)
            continue
        out += struct.pack("<HHB", len(acc.by_day), len(acc.last_seen), acc.latest is not None)
        out += pack_days(acc.by_day, base)
        values = list(acc.by_day.values())
        wide = any(not -(2**31) <= v < 2**31 for v in values)
        out += array("q" if wide else "i", values).tobytes()
        out += pack_days(acc.last_seen.values(), base)
        out += b"\x00".join(str(v).encode() for v in acc.last_seen) + b"\x00"
        if acc.latest is not None:
            out += b"".join(pack_value(v) for v in acc.latest)
    for source in sorted(state.rows):
        rows = state.rows[source]
        out += pack_value(source) + struct.pack("<H", len(rows))
        for row in rows.values():
            out += b"".join(pack_value(v) for k, v in row.items() if k != "account_id")
    out += b"".join(pack_value(v) for k, v in state.attributes.items() if k != "account_id")
    return bytes(out)


def state_sizes(engine: IncrementalEngine) -> dict[str, Any]:
    keys = running_keys()
    states = list(engine.states.values())
    pickled = np.array([len(pickle.dumps(s, protocol=5)) for s in states])
    compact = np.array([len(pack_state(s, keys)) for s in states])
    entries = np.array([s.size() for s in states])
    held = np.array([sum(len(r) for r in s.rows.values()) for s in states])

    def stats(values: np.ndarray) -> dict[str, float]:
        return {"mean": float(values.mean()), "p99": float(np.percentile(values, 99)),
                "max": float(values.max())}  # fmt: skip

    return {
        "accounts": len(states),
        "pickle_bytes": stats(pickled),
        "compact_bytes": stats(compact),
        "entries": stats(entries),
        "live_rows": stats(held),
    }


# --- the check against the batch engine ----------------------------------------------------------


def check(engine: IncrementalEngine, stream: Stream, fed: int, clock: int) -> list[str]:
    """Every account's signals against the batch engine over the same rows (first differences)."""
    batch = BatchEngine(catalog()).compute(stream.seen(fed), [clock]).to_pylist()
    found = []
    for row in batch:
        mine = engine.evaluate(row["account_id"], clock)
        for name in catalog().names():
            a, b = mine[name], row[name]
            if not (a == b or (a is not None and b is not None and np.isclose(a, b, 1e-9))):
                found.append(f"{row['account_id']} {name}: incremental {a!r}, batch {b!r}")
    return found[:20]


# --- running it all ------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    stream = Stream(args.accounts, args.rows_per_account)
    engine = IncrementalEngine(catalog())
    stream.warm_up(engine)
    ready = time.perf_counter() - started
    timed_events = stream.events[: int(np.searchsorted(stream.arrival, stream.start + args.days))]
    print(f"{len(stream.warm_usage):,} warm-up usage rows, {len(stream.events):,} in the stream; "
          f"ready in {ready:.1f} s", flush=True)  # fmt: skip
    warm = copy.deepcopy(engine.states)
    rates = throughput(engine, warm, stream.start - 1, timed_events, args.repeat)
    print(f"throughput: {json.dumps(rates)}", flush=True)
    # the engine now holds the state after the timed events (the last run scored them)
    clock = max(r["day"] for r in timed_events)
    rest = stream.events[len(timed_events) : len(timed_events) + args.latency_events]
    rate = rates["events_per_s"] / 2
    before = copy.deepcopy(engine.states)
    delays = {}
    for prune in (False, True):  # pruning off the event path, then inline
        engine.states = copy.deepcopy(before)
        feeder = Feeder(engine, clock, "score", prune)
        gc.collect()
        delays["inline" if prune else "separate"] = latency(feeder, rest, rate)
    print(f"latency: {json.dumps(delays)}", flush=True)
    engine.prune(feeder.clock)
    sizes = state_sizes(engine)
    print(f"state: {json.dumps(sizes)}", flush=True)
    problems = check(engine, stream, len(timed_events) + len(rest), feeder.clock)
    assert not problems, "\n".join(problems)
    return {
        "accounts": args.accounts,
        "rows_per_account": args.rows_per_account,
        "what": scorer()[1],
        "warm_rows": len(stream.warm_usage),
        "throughput": rates,
        "latency": delays,
        "state": sizes,
        "days": args.days,
        "repeat": args.repeat,
        "peak_mib": peak_mib(),
    }


def latency_line(label: str, lat: dict[str, Any]) -> str:
    prunes = (
        f"{lat['prunes']} prunes, {lat['prune_ms_mean']:.0f} ms each" if lat["prunes"] else "none"
    )
    return (
        f"| {label} | {lat['p50_ms']:.2f} ms | {lat['p99_ms']:.2f} ms | {lat['p999_ms']:.1f} ms "
        f"| {lat['max_ms']:.1f} ms | {prunes} |"
    )


def write_results(r: dict[str, Any], path: Path) -> None:
    t, lat, st = r["throughput"], r["latency"], r["state"]
    rate = lat["inline"]["rate_per_s"]
    lines = [
        "",
        f"## Incremental signals, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}. Tenure at {r['revision']}.",
        "",
        f"Usage events of {r['accounts']:,} accounts (about {r['rows_per_account']:,} usage rows "
        "an account over two years, as in the batch benchmark) through "
        "`IncrementalEngine.apply`, in time order with 5% of them one to three days late, each "
        f"followed by `evaluate()` of its account as of the stream's clock and {r['what']}. "
        f"The engine first took in the year before the stream ({r['warm_rows']:,} usage rows and "
        "every other source); it prunes each account as that account reaches a new day. "
        "Throughput over "
        f"the first {r['days']} days of the stream ({t['events']:,} events), best of "
        f"{r['repeat']} from the same warm state; the reference is a bare Python loop over the "
        "same row dicts that keeps per-account per-day totals in a dict "
        "(`totals[account][day] += count`). Every account's signals at the end equal the batch "
        "engine's over the same rows.",
        "",
        "| events/s, with scoring | signals only | apply only | dict-update loop "
        "| loop / Tenure | list-append loop |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {t['events_per_s']:,.0f} | {t['evaluate_per_s']:,.0f} | {t['apply_per_s']:,.0f} "
        f"| {t['dict_update_per_s']:,.0f} | {t['dict_update_per_s'] / t['events_per_s']:,.0f} "
        f"| {t['append_per_s']:,.0f} |",
        "",
        f"An event costs {t['apply_us']:.0f} µs to apply, {t['evaluate_us']:.0f} µs to evaluate "
        f"its account's {len(catalog())} signals and {t['score_us']:.0f} µs to score them "
        "(pruning included, inside apply). Share of the best run's "
        "wall time that some task waited for a CPU (Linux PSI; above about 0.1 the machine was "
        f"busy with something else): {t['cpu_stalled']:.2f}; counted in CPU time instead, "
        f"{t['events_per_cpu_s']:,.0f} events with scoring a CPU-second.",
        "",
        f"Latency from an event's arrival to its account's new score, {lat['inline']['events']:,} "
        f"events arriving at half the sustainable rate ({rate:,.0f}/s, Poisson), queueing "
        "included (aim: p99 under 50 ms):",
        "",
        "| engine | p50 | p99 | p99.9 | max | full prunes in the event path |",
        "|---|---:|---:|---:|---:|---|",
        latency_line("as shipped (each account pruned as it reaches a new day)", lat["separate"]),
        latency_line("plus a full prune() of every account on each new day", lat["inline"]),
        "",
        "CPU stall share during the latency runs: "
        f"{lat['separate']['cpu_stalled']:.2f} (as shipped), {lat['inline']['cpu_stalled']:.2f} "
        "(with full prunes).",
        "",
        f"State per account after pruning ({st['accounts']:,} accounts; aim under 2 KB):",
        "",
        "| measure | mean | p99 | max |",
        "|---|---:|---:|---:|",
        *(
            f"| {label} | {st[key]['mean']:,.0f} | {st[key]['p99']:,.0f} | {st[key]['max']:,.0f} |"
            for label, key in (
                ("`pickle.dumps(state, protocol=5)`, bytes", "pickle_bytes"),
                ("compact encoding (in the benchmark), bytes", "compact_bytes"),
                ("entries (`AccountState.size()`)", "entries"),
                ("of which live rows (tickets, milestones, subscriptions)", "live_rows"),
            )
        ),
        "",
        f"Peak resident memory of the benchmark process: {r['peak_mib']:,.0f} MiB.",
    ]
    append(path, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--rows-per-account", type=int, default=ROWS_PER_ACCOUNT)
    parser.add_argument("--days", type=int, default=5, help="days of the stream timed")
    parser.add_argument("--latency-events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="200 accounts, a short stream; prints, does not write RESULTS.md",
    )
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.accounts, args.days, args.latency_events = 200, 5, 2_000
    measured = revision()
    results = {**measure(args), "revision": measured}
    print(json.dumps({k: results[k] for k in ("throughput", "latency", "state", "peak_mib")}))
    if not (args.no_write or args.quick):
        write_results(results, args.results)
        print(f"written to {args.results}")


if __name__ == "__main__":
    main()
