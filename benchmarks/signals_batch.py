"""Batch signals: every signal of every account as of one day, over generated prepared sources.

The prepared source tables (the schemas of ``tenure.signals.sources.arrow_schema``) are generated
with numpy and written to Parquet: N accounts, M usage rows (5 to 200 users an account, 20
features, two years of days, rows in random order) and a few tickets, surveys, touchpoints,
milestones, subscriptions and payments per account. Then, in the same run, best of ``--repeat``,
each in a fresh process (so that its peak memory is its own):

- the reference: a plain DuckDB ``SELECT account_id, count(*), sum(count) FROM usage GROUP BY
  account_id`` over the same Parquet rows (the duckdb Python API);
- Tenure: ``BatchEngine(catalog).compute(tables, [as_of])``, every signal of every account, on
  Ibis tables read from the same Parquet files (DuckDB, through Ibis); then, timed apart, every
  account's health score from those signals (``tenure.health.score.score``, the default model);
- pandas: a straightforward hand-written implementation of the same signals (filter the windows,
  groupby, nunique, merge). It needs about 150 MiB a million usage rows (14 GiB for 100M); when
  the rows would not fit in 3/4 of the available memory (or over ``--pandas-rows``), it runs on
  the first row groups only (a uniform sample of the rows, since they are in random order) and
  its time is scaled linearly to all rows; the output says so.

Every run checks pandas against Tenure (and Tenure's incremental engine against both) on a sample
of accounts, with all of their rows; when pandas ran on every row it must also agree with Tenure on
every account. Results are appended to benchmarks/RESULTS.md with the date, the machine, the
commit measured and how busy the CPUs were. The full run takes about 6 minutes (1 to generate
the data; ``--data DIR`` keeps it for the next run).

    python benchmarks/signals_batch.py [--accounts 100000] [--rows 100000000] [--repeat 3]
    python benchmarks/signals_batch.py --quick  # 2,000 accounts, 2,000,000 rows, not recorded: 25 s
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from results import append, machine

from tenure.signals import Catalog
from tenure.signals import catalog as signal_catalog
from tenure.signals.sources import arrow_schema

ROOT = Path(__file__).resolve().parents[1]

AS_OF = (date(2026, 11, 22) - date(1970, 1, 1)).days
SPAN = 730  # days of usage history
FIRST_DAY = AS_OF - SPAN + 1
FEATURES = (
    "dashboards", "reports", "search", "workflows", "api", "exports", "alerts", "admin",
    "integrations", "billing", "comments", "sharing", "templates", "automations", "forecasts",
    "imports", "mobile", "notifications", "permissions", "audit_log",
)  # fmt: skip
KEY_FEATURES = ("workflows", "automations", "integrations")
FEATURE_WEIGHTS = 1 / np.arange(1, len(FEATURES) + 1) ** 0.9
FEATURE_CUM = np.cumsum(FEATURE_WEIGHTS) / FEATURE_WEIGHTS.sum()
CHUNK_ROWS = 4_000_000
ROW_GROUP = 1_000_000
SAMPLE_ACCOUNTS = 150
SEED = 20261122
DAY_MICROS = 86_400_000_000


def catalog() -> Catalog:
    return signal_catalog(key_features=KEY_FEATURES)


# --- generating the prepared sources -------------------------------------------------------------


@dataclass
class Portfolio:
    """Per-account shape: users, dates of activity, and how busy it is."""

    ids: pa.Array
    users: np.ndarray
    user_offset: np.ndarray
    user_names: pa.Array
    contacts: np.ndarray
    contact_offset: np.ndarray
    created: np.ndarray
    start: np.ndarray  # first day with usage
    end: np.ndarray  # last day with usage (before AS_OF for accounts that went quiet)
    quiet: np.ndarray
    cum_weight: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


def names(prefix: str, numbers: np.ndarray) -> pa.Array:
    """``prefix`` followed by each number, as an Arrow string array (vectorised)."""
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def make_portfolio(accounts: int, rng: np.random.Generator) -> Portfolio:
    users = np.clip(np.rint(np.exp(rng.normal(np.log(30), 0.9, accounts))), 5, 200).astype(np.int64)
    created = AS_OF - rng.integers(20, 1800, accounts)
    start = np.maximum(created, FIRST_DAY)
    quiet = rng.random(accounts) < 0.12
    stop = start + ((AS_OF - start) * rng.random(accounts)).astype(np.int64)
    end = np.where(quiet, stop, AS_OF)
    intensity = np.exp(rng.normal(0, 0.6, accounts))
    weight = users * intensity * (end - start + 1)
    contacts = 1 + rng.poisson(4, accounts)
    return Portfolio(
        ids=names("acct-", np.arange(accounts) + 1_000_000),
        users=users,
        user_offset=np.concatenate(([0], np.cumsum(users)[:-1])),
        user_names=names("u", np.arange(int(users.sum()))),
        contacts=contacts,
        contact_offset=np.concatenate(([0], np.cumsum(contacts)[:-1])),
        created=created,
        start=start,
        end=end,
        quiet=quiet,
        cum_weight=np.cumsum(weight),
    )


def usage_chunk(p: Portfolio, rows: int, rng: np.random.Generator) -> pa.Table:
    """``rows`` usage rows: busier accounts get more, each on a day the account was active."""
    acct = np.searchsorted(p.cum_weight, rng.random(rows) * p.cum_weight[-1], side="right")
    acct = np.minimum(acct, len(p) - 1)
    span = p.end[acct] - p.start[acct] + 1
    day = p.start[acct] + (rng.random(rows) * span).astype(np.int64)
    user = p.user_offset[acct] + (rng.random(rows) ** 2 * p.users[acct]).astype(np.int64)
    feature = np.minimum(np.searchsorted(FEATURE_CUM, rng.random(rows)), len(FEATURES) - 1)
    users = pc.take(p.user_names, pa.array(user))
    anonymous = pa.array(rng.random(rows) < 0.005)  # server-side events carry no user
    users = pc.if_else(anonymous, pa.scalar(None, pa.string()), users)
    columns = {
        "account_id": pc.take(p.ids, pa.array(acct)),
        "day": pa.array(day),
        "user": users,
        "feature": pc.take(pa.array(FEATURES), pa.array(feature)),
        "count": pa.array(rng.geometric(0.6, rows).astype(np.int64)),
    }
    return pa.table(columns).cast(schema_of("usage"))


def schema_of(source: str) -> pa.Schema:
    (found,) = [s for s in catalog().sources() if s.name == source]
    return arrow_schema(found)


def nullable(values: np.ndarray, missing: np.ndarray) -> pa.Array:
    return pa.array(values, mask=missing)


def spread(p: Portfolio, mean: np.ndarray | float, rng: np.random.Generator) -> np.ndarray:
    """Account index of each row, with a Poisson number of rows an account."""
    counts = rng.poisson(np.broadcast_to(mean, (len(p),)))
    index: np.ndarray = np.repeat(np.arange(len(p)), counts)
    return index


def uniform_day(low: np.ndarray, high: int, rng: np.random.Generator) -> np.ndarray:
    days: np.ndarray = low + (rng.random(len(low)) * (high - low + 1)).astype(np.int64)
    return days


def pick(choices: tuple[str, ...], weights: tuple[float, ...], n: int, rng: Any) -> pa.Array:
    index = np.minimum(np.searchsorted(np.cumsum(weights), rng.random(n)), len(choices) - 1)
    return pc.take(pa.array(choices), pa.array(index))


def accounts_table(p: Portfolio, rng: np.random.Generator) -> pa.Table:
    age = AS_OF - p.created
    segment = np.where(p.users < 25, "smb", np.where(p.users < 80, "mid-market", "enterprise"))
    stage = np.select(
        [age < 30, age < 120, p.quiet, age < 365], ["trial", "onboarding", "churned", "adoption"],
        "mature",
    )  # fmt: skip
    owners = names("csm-", rng.integers(0, max(1, len(p) // 200), len(p)))
    return pa.table(
        {"account_id": p.ids, "created_day": pa.array(p.created), "segment": pa.array(segment),
         "lifecycle_stage": pa.array(stage), "owner": owners}
    )  # fmt: skip


def tickets_table(p: Portfolio, rng: np.random.Generator) -> pa.Table:
    acct = spread(p, 3 * np.sqrt(p.users / 30), rng)
    n = len(acct)
    opened = uniform_day(p.start[acct], AS_OF, rng)
    resolved = opened + rng.geometric(0.25, n) - 1
    still_open = (resolved > AS_OF) | (rng.random(n) < 0.02)
    return pa.table(
        {
            "account_id": pc.take(p.ids, pa.array(acct)),
            "key": names("t", np.arange(n)),
            "opened_day": pa.array(opened),
            "resolved_day": nullable(resolved, still_open),
            "priority": pick(("P1", "P2", "P3", "P4"), (0.05, 0.2, 0.45, 0.3), n, rng),
            "csat": nullable(rng.integers(1, 6, n) * 100, rng.random(n) > 0.4),
            "sentiment": nullable(rng.integers(-10_000, 10_001, n), rng.random(n) > 0.6),
        }
    )


def surveys_table(p: Portfolio, rng: np.random.Generator) -> pa.Table:
    acct = spread(p, 2.0, rng)
    n = len(acct)
    day = uniform_day(p.start[acct], AS_OF, rng)
    nps = rng.random(n) < 0.7
    score = np.where(nps, rng.integers(0, 11, n), rng.integers(1, 6, n)) * 100
    return pa.table(
        {
            "account_id": pc.take(p.ids, pa.array(acct)),
            "key": names("s", np.arange(n)),
            "day": pa.array(day),
            "at": pa.array(day * DAY_MICROS + rng.integers(0, DAY_MICROS, n)),
            "survey": pa.array(np.where(nps, "nps", "csat")),
            "score": pa.array(score),
            "sentiment": nullable(rng.integers(-10_000, 10_001, n), rng.random(n) > 0.5),
        }
    )


def touchpoint_tables(p: Portfolio, rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    acct = spread(p, 8.0, rng)
    n = len(acct)
    day = uniform_day(p.start[acct], AS_OF, rng)
    keys = names("tp", np.arange(n))
    touchpoints = pa.table(
        {
            "account_id": pc.take(p.ids, pa.array(acct)),
            "key": keys,
            "day": pa.array(day),
            "type": pick(("email", "call", "meeting", "qbr"), (0.5, 0.25, 0.2, 0.05), n, rng),
        }
    )
    people = np.clip(1 + rng.poisson(0.7, n), 1, 4)
    parent = np.repeat(np.arange(n), people)
    who = p.contact_offset[acct[parent]] + (
        rng.random(len(parent)) * p.contacts[acct[parent]]
    ).astype(np.int64)
    taken = touchpoints.take(pa.array(parent)).select(["account_id", "key", "day"])
    return touchpoints, taken.append_column("person", names("c", who))


def milestones_table(p: Portfolio, rng: np.random.Generator) -> pa.Table:
    plan = np.array([14, 30, 60, 90, 120])
    categories = ("onboarding", "onboarding", "onboarding", "adoption", "value")
    acct = np.repeat(np.arange(len(p)), len(plan))
    n = len(acct)
    planned = p.created[acct] + np.tile(plan, len(p))
    achieved = planned + np.rint(rng.normal(3, 12, n)).astype(np.int64)
    missing = (rng.random(n) < 0.15) | (achieved > AS_OF)
    return pa.table(
        {
            "account_id": pc.take(p.ids, pa.array(acct)),
            "key": names("m", np.arange(n)),
            "planned_day": pa.array(planned),
            "achieved_day": nullable(achieved, missing),
            "category": pa.array(np.tile(np.array(categories), len(p))),
        }
    )


def subscriptions_table(p: Portfolio, rng: np.random.Generator) -> pa.Table:
    count = len(p)
    anniversary = p.created + 365 * np.ceil((AS_OF - p.created + 1) / 365).astype(np.int64)
    ended = p.quiet & (rng.random(count) < 0.7)
    end = p.end + rng.integers(0, 60, count)
    seats = np.rint(p.users * rng.uniform(0.9, 1.6, count)).astype(np.int64)
    main = {
        "acct": np.arange(count), "start": p.created, "end": end, "ended": ended,
        "renews": np.where(ended, end, anniversary), "seats": seats,
        "mrr": seats * rng.integers(3000, 9000, count), "trial": np.zeros(count, bool),
    }  # fmt: skip
    extra = np.flatnonzero(rng.random(count) < 0.3)
    addon = {
        "acct": extra, "start": uniform_day(p.start[extra], AS_OF, rng),
        "end": np.zeros(len(extra), np.int64), "ended": np.zeros(len(extra), bool),
        "renews": anniversary[extra], "seats": rng.integers(1, 20, len(extra)),
        "mrr": rng.integers(1000, 50_000, len(extra)), "trial": np.zeros(len(extra), bool),
    }  # fmt: skip
    tried = np.flatnonzero(rng.random(count) < 0.2)
    trial = {
        "acct": tried, "start": p.created[tried] - 30, "end": p.created[tried],
        "ended": np.ones(len(tried), bool), "renews": p.created[tried],
        "seats": rng.integers(5, 20, len(tried)), "mrr": np.zeros(len(tried), np.int64),
        "trial": np.ones(len(tried), bool),
    }  # fmt: skip
    parts = (main, addon, trial)
    cols = {k: np.concatenate([part[k] for part in parts]) for k in main}
    n = len(cols["acct"])
    return pa.table(
        {
            "account_id": pc.take(p.ids, pa.array(cols["acct"])),
            "key": names("sub", np.arange(n)),
            "start_day": pa.array(cols["start"]),
            "end_day": nullable(cols["end"], ~cols["ended"]),
            "renews_day": pa.array(cols["renews"]),
            "seats": pa.array(cols["seats"]),
            "mrr": pa.array(cols["mrr"]),
            "is_trial": pa.array(cols["trial"]),
        }
    )


def payments_table(p: Portfolio, rng: np.random.Generator) -> pa.Table:
    acct = spread(p, 6.0, rng)
    n = len(acct)
    return pa.table(
        {
            "account_id": pc.take(p.ids, pa.array(acct)),
            "key": names("pay", np.arange(n)),
            "day": pa.array(uniform_day(np.maximum(p.start[acct], AS_OF - 365), AS_OF, rng)),
            "status": pick(("failed", "succeeded"), (0.04, 0.96), n, rng),
        }
    )


def small_tables(p: Portfolio, rng: np.random.Generator) -> dict[str, pa.Table]:
    touchpoints, touch_people = touchpoint_tables(p, rng)
    return {
        "accounts": accounts_table(p, rng),
        "tickets": tickets_table(p, rng),
        "surveys": surveys_table(p, rng),
        "touchpoints": touchpoints,
        "touch_people": touch_people,
        "milestones": milestones_table(p, rng),
        "subscriptions": subscriptions_table(p, rng),
        "payments": payments_table(p, rng),
    }


def generate(folder: Path, accounts: int, rows: int, seed: int = SEED) -> dict[str, str]:
    """Write every prepared source to ``folder`` as Parquet (usage streamed in chunks)."""
    rng = np.random.default_rng(seed)
    portfolio = make_portfolio(accounts, rng)
    paths = {}
    for name, table in small_tables(portfolio, rng).items():
        paths[name] = str(folder / f"{name}.parquet")
        pq.write_table(table.cast(schema_of(name)), paths[name])
    paths["usage"] = str(folder / "usage.parquet")
    with pq.ParquetWriter(paths["usage"], schema_of("usage")) as writer:
        for done in range(0, rows, CHUNK_ROWS):
            chunk = usage_chunk(portfolio, min(CHUNK_ROWS, rows - done), rng)
            writer.write_table(chunk, row_group_size=ROW_GROUP)
    return paths


def dataset(folder: Path, accounts: int, rows: int) -> dict[str, Any]:
    """The generated files in ``folder`` (made unless a matching set is already there)."""
    manifest = folder / "manifest.json"
    wanted = {"accounts": accounts, "rows": rows, "seed": SEED, "as_of": AS_OF}
    if manifest.exists():
        known = json.loads(manifest.read_text())
        if known["shape"] == wanted:
            return dict(known)
    started = time.perf_counter()
    paths = generate(folder, accounts, rows)
    info = {
        "shape": wanted,
        "paths": paths,
        "seconds": round(time.perf_counter() - started, 1),
        "bytes": {name: os.path.getsize(path) for name, path in paths.items()},
        "rows": {name: pq.ParquetFile(path).metadata.num_rows for name, path in paths.items()},
        "peak_mib": peak_mib(),
    }
    manifest.write_text(json.dumps(info))
    return info


# --- the three contenders, each run in a fresh process -------------------------------------------


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stalled_us() -> int:
    """Microseconds that some runnable task waited for a CPU, since boot (Linux PSI)."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return int(next(f for f in line.split() if f.startswith("total=")).split("=")[1])
    return 0


def best_of(repeat: int, run: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    """The fastest of ``repeat`` runs: wall and CPU seconds (every thread of this process), and
    the share of its wall time that some task on the machine waited for a CPU (contention)."""
    best: dict[str, float] = {}
    result = None
    for _ in range(repeat):
        stalled, cpu, started = stalled_us(), time.process_time(), time.perf_counter()
        result = run()
        wall = time.perf_counter() - started
        if not best or wall < best["seconds"]:
            best = {
                "seconds": wall,
                "cpu_seconds": time.process_time() - cpu,
                "cpu_stalled": (stalled_us() - stalled) / 1e6 / wall,
            }
    return best, result


REFERENCE_SQL = "SELECT account_id, count(*), sum(count) FROM usage GROUP BY account_id"


def run_duckdb(paths: dict[str, str], repeat: int) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"CREATE VIEW usage AS SELECT * FROM read_parquet('{paths['usage']}')")
    best, result = best_of(repeat, lambda: con.sql(REFERENCE_SQL).to_arrow_table())
    return {**best, "groups": result.num_rows, "peak_mib": peak_mib()}


def run_tenure(paths: dict[str, str], repeat: int, out: str, explain: bool) -> dict[str, Any]:
    import ibis

    from tenure.signals.batch import BatchEngine

    con = ibis.duckdb.connect()
    con.con.execute("SET enable_progress_bar = false")
    tables = {name: con.read_parquet(path, table_name=name) for name, path in paths.items()}
    engine = BatchEngine(catalog(), backend=con)
    best, result = best_of(repeat, lambda: engine.compute(tables, [AS_OF]))
    pq.write_table(result, out)
    report: dict[str, Any] = {**best, "accounts": result.num_rows}
    scoring, scores = best_of(repeat, lambda: score_all(result, paths["accounts"]))
    report["scores"] = {**scoring, "count": len(scores), "model": scores[0][1]}
    report["peak_mib"] = peak_mib()
    if explain:
        report["explain"] = profile(con, engine, tables)
    return report


def score_all(signals: pa.Table, accounts: str) -> list[tuple[str, str]]:
    """Every account's health score from its signals (the shipped default model)."""
    from tenure.health import default_model
    from tenure.health.score import score

    model = default_model()
    attributes = {r["account_id"]: r for r in pq.read_table(accounts).to_pylist()}
    day = date(1970, 1, 1) + timedelta(days=AS_OF)
    scored = []
    for row in signals.to_pylist():
        account = row["account_id"]
        result = score(model, account, day, row, attributes[account])
        scored.append((account, result.model))
    return scored


def profile(con: Any, engine: Any, tables: dict[str, Any]) -> list[str]:
    """The costliest operators of Tenure's query (DuckDB's profiler; CPU seconds, all threads)."""
    days = con.create_table("_explain_days", pa.table({"as_of": pa.array([AS_OF])}))
    sql = con.compile(engine.expression(tables, days))
    with tempfile.NamedTemporaryFile(suffix=".json") as output:
        con.con.execute("PRAGMA enable_profiling = 'json'")
        con.con.execute(f"PRAGMA profiling_output = '{output.name}'")
        con.con.sql(sql).to_arrow_table()
        con.con.execute("PRAGMA disable_profiling")
        tree = json.loads(Path(output.name).read_text())
    found: list[tuple[float, str]] = []

    def walk(node: dict[str, Any]) -> None:
        info = json.dumps(node.get("extra_info", {}))[:140]
        rows = node.get("operator_cardinality", 0)
        found.append(
            (node.get("operator_timing", 0.0), f"{node.get('operator_name')} {rows:,} rows {info}")
        )
        for child in node.get("children", []):
            walk(child)

    walk(tree)
    return [f"{sec:6.2f} s  {what}" for sec, what in sorted(found, reverse=True)[:8]]


def run_pandas(paths: dict[str, str], repeat: int, usage_rows: int, out: str) -> dict[str, Any]:
    usage = pq.ParquetFile(paths["usage"])
    groups, taken = 0, 0
    while groups < usage.num_row_groups and taken < usage_rows:
        taken += usage.metadata.row_group(groups).num_rows
        groups += 1

    def run() -> pd.DataFrame:
        frames = {name: pd.read_parquet(path) for name, path in paths.items() if name != "usage"}
        if groups == usage.num_row_groups:
            frames["usage"] = pd.read_parquet(paths["usage"])
        else:
            frames["usage"] = usage.read_row_groups(range(groups)).to_pandas()
        return pandas_signals(frames, AS_OF)

    best, result = best_of(repeat, run)
    result.reset_index().to_parquet(out)
    return {**best, "usage_rows": taken, "peak_mib": peak_mib()}


def check_sample(paths: dict[str, str], tenure_out: str, sample: list[str]) -> dict[str, Any]:
    """pandas and the incremental engine against Tenure's batch output, on whole accounts."""
    from tenure.signals.incremental import evaluate_rows

    frames = {
        name: pq.read_table(path, filters=[("account_id", "in", sample)])
        for name, path in paths.items()
    }
    by_pandas = pandas_signals({k: t.to_pandas() for k, t in frames.items()}, AS_OF)
    rows = {name: table.to_pylist() for name, table in frames.items()}
    incremental = evaluate_rows(catalog(), rows, AS_OF)
    tenure = pq.read_table(tenure_out, filters=[("account_id", "in", sample)]).to_pandas()
    tenure = tenure.set_index("account_id")
    return {
        "accounts": len(sample),
        "usage_rows": frames["usage"].num_rows,
        "pandas_vs_tenure": differences(by_pandas, tenure),
        "incremental_vs_tenure": differences(pd.DataFrame.from_dict(incremental, "index"), tenure),
    }


def compare_all(tenure_out: str, pandas_out: str) -> list[str]:
    tenure = pd.read_parquet(tenure_out).set_index("account_id")
    by_pandas = pd.read_parquet(pandas_out).set_index("account_id")
    return differences(by_pandas, tenure)


def differences(left: pd.DataFrame, right: pd.DataFrame, limit: int = 20) -> list[str]:
    """Cells that differ (nulls equal, floats to 1e-9 relative), as readable lines."""
    found: list[str] = []
    missing = sorted(set(right.index) ^ set(left.index))
    if missing:
        found.append(f"accounts on one side only: {missing[:5]}")
    accounts = sorted(set(right.index) & set(left.index))
    for name in catalog().names():
        a = pd.to_numeric(left.loc[accounts, name], errors="coerce").astype("float64").to_numpy()
        b = pd.to_numeric(right.loc[accounts, name], errors="coerce").astype("float64").to_numpy()
        same = (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=1e-9, atol=1e-12)
        for i in np.flatnonzero(~same)[: max(0, limit - len(found))]:
            found.append(f"{accounts[i]} {name}: {a[i]!r} against Tenure's {b[i]!r}")
    return found


# --- the pandas implementation -------------------------------------------------------------------


def pandas_signals(t: dict[str, pd.DataFrame], d: int) -> pd.DataFrame:
    """Every signal as of day ``d``, the way one writes it in a notebook."""
    out = t["accounts"].set_index("account_id")[["created_day"]]
    out = out[out.created_day.isna() | (out.created_day <= d)].copy()
    commercial(out, t["subscriptions"], t["payments"], d)
    activity(out, t["usage"], d)
    engagement(out, t["usage"], t["touchpoints"], t["touch_people"], d)
    milestones(out, t["milestones"], d)
    recency(out, t["usage"], t["touchpoints"], d)
    support(out, t["tickets"], t["surveys"], d)
    voice(out, t["surveys"], d)
    return out[list(catalog().names())]


def window(df: pd.DataFrame, d: int, days: int, skip: int = 0, on: str = "day") -> pd.DataFrame:
    return df[(df[on] > d - skip - days) & (df[on] <= d - skip)]


def ratio(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a / b.where(b != 0)).astype("float64")


def per_account(out: pd.DataFrame, counts: pd.Series) -> pd.Series:
    return counts.reindex(out.index).fillna(0)


def commercial(out: pd.DataFrame, subs: pd.DataFrame, payments: pd.DataFrame, d: int) -> None:
    paid = subs[subs.is_trial == False]  # noqa: E712 (a null is neither)

    def in_force(point: int, ends: tuple[str, ...] = ("end_day",)) -> pd.DataFrame:
        live = paid[paid.start_day <= point]
        for end in ends:
            live = live[live[end].isna() | (live[end] > point)]
        return live

    started = subs[subs.start_day <= d]
    out["subscriptions_started"] = per_account(out, started.groupby("account_id").size())
    every = started[started.end_day.isna() | (started.end_day > d)]
    out["subscriptions_in_force"] = per_account(out, every.groupby("account_id").size())
    now = in_force(d)
    out["seats"] = per_account(out, now.groupby("account_id").seats.sum())
    mrr_now = per_account(out, now.groupby("account_id").mrr.sum()) / 100
    mrr_then = per_account(out, in_force(d - 90).groupby("account_id").mrr.sum()) / 100
    out["mrr"] = mrr_now
    out["mrr_change_90d"] = ratio(mrr_now, mrr_then) - 1
    renewing = in_force(d, ("end_day", "renews_day"))
    out["days_to_renewal"] = renewing.groupby("account_id").renews_day.min() - d
    failed = window(payments[payments.status == "failed"], d, 90)
    out["failed_payments_90d"] = per_account(out, failed.groupby("account_id").size())


def activity(out: pd.DataFrame, usage: pd.DataFrame, d: int) -> None:
    u30 = window(usage, d, 30)
    u7 = u30[u30.day > d - 7]
    u90 = window(usage, d, 90)
    used = per_account(out, u90.groupby("account_id").size())
    named = per_account(out, u90[u90.user.notna()].groupby("account_id").size())
    unknown = (used > 0) & (named == 0)  # usage names no user: active users are not known
    users7 = per_account(out, u7.groupby("account_id").user.nunique())
    users30 = per_account(out, u30.groupby("account_id").user.nunique())
    out["active_users_7d"] = users7.where(~unknown)
    out["active_users_30d"] = users30.where(~unknown)
    out["seat_headroom"] = out.seats - out.active_users_30d
    out["active_users_per_seat"] = ratio(out.active_users_7d, out.seats)
    out["events_30d"] = per_account(out, u30.groupby("account_id")["count"].sum())
    out["events_per_active_user"] = ratio(out.events_30d, out.active_users_30d)
    recent = per_account(out, window(usage, d, 14).groupby("account_id")["count"].sum())
    before = per_account(out, window(usage, d, 90, skip=14).groupby("account_id")["count"].sum())
    out["usage_trend_14d"] = ratio(recent / 14, before / 90) - 1


def engagement(
    out: pd.DataFrame, usage: pd.DataFrame, touch: pd.DataFrame, people: pd.DataFrame, d: int
) -> None:
    u30 = window(usage, d, 30)
    out["feature_breadth"] = per_account(out, u30.groupby("account_id").feature.nunique())
    key = u30[u30.feature.isin(KEY_FEATURES)].groupby("account_id")["count"].sum()
    out["key_feature_depth"] = ratio(per_account(out, key), out.events_30d)
    out["seat_utilisation"] = ratio(out.active_users_30d, out.seats)
    out["touchpoints_30d"] = per_account(out, window(touch, d, 30).groupby("account_id").size())
    out["touchpoints_90d"] = per_account(out, window(touch, d, 90).groupby("account_id").size())
    engaged = window(people, d, 90).groupby("account_id").person.nunique()
    out["people_engaged_90d"] = per_account(out, engaged)


def milestones(out: pd.DataFrame, ms: pd.DataFrame, d: int) -> None:
    onboarding = ms[ms.category == "onboarding"]
    achieved = onboarding[onboarding.achieved_day <= d].groupby("account_id").size()
    planned = onboarding.groupby("account_id").size()
    out["onboarding_progress"] = ratio(per_account(out, achieved), per_account(out, planned))
    overdue = ms[(ms.planned_day <= d) & (ms.achieved_day.isna() | (ms.achieved_day > d))]
    behind = d - overdue.groupby("account_id").planned_day.min()
    out["days_behind_plan"] = behind.reindex(out.index).fillna(0)
    value = ms[(ms.category == "value") & (ms.achieved_day <= d)]
    first = value.groupby("account_id").achieved_day.min().reindex(out.index)
    out["time_to_first_value"] = first - out.created_day


def recency(out: pd.DataFrame, usage: pd.DataFrame, touch: pd.DataFrame, d: int) -> None:
    last_use = window(usage, d, 365).groupby("account_id").day.max()
    out["days_since_activity"] = (d - last_use).reindex(out.index).fillna(365)
    last_touch = window(touch, d, 365).groupby("account_id").day.max()
    out["days_since_touchpoint"] = (d - last_touch).reindex(out.index).fillna(365)


def support(out: pd.DataFrame, tickets: pd.DataFrame, surveys: pd.DataFrame, d: int) -> None:
    open_ = tickets[
        (tickets.opened_day <= d) & (tickets.resolved_day.isna() | (tickets.resolved_day > d))
    ]
    by_priority = open_.groupby(["account_id", "priority"]).size().unstack(fill_value=0)
    for priority in ("P1", "P2", "P3", "P4"):
        counts = by_priority[priority] if priority in by_priority else pd.Series(dtype="int64")
        out[f"open_tickets_{priority.lower()}"] = per_account(out, counts)
    out["open_tickets"] = per_account(out, open_.groupby("account_id").size())
    oldest = d - open_[open_.priority == "P1"].groupby("account_id").opened_day.min()
    out["oldest_open_p1_days"] = oldest.reindex(out.index).fillna(0)
    recent = per_account(out, window(tickets, d, 14, on="opened_day").groupby("account_id").size())
    before = window(tickets, d, 90, skip=14, on="opened_day").groupby("account_id").size()
    out["ticket_spike"] = (recent * 90 / 14 + 1) / (per_account(out, before) + 1)
    t90 = window(tickets, d, 90, on="opened_day")
    rated = t90[t90.csat.notna()].groupby("account_id").csat
    out["csat_90d"] = ratio(per_account(out, rated.sum()), per_account(out, rated.size())) / 100
    felt_t = t90[t90.sentiment.notna()].groupby("account_id").sentiment
    s90 = window(surveys, d, 90)
    felt_s = s90[s90.sentiment.notna()].groupby("account_id").sentiment
    feeling = per_account(out, felt_t.sum()) + per_account(out, felt_s.sum())
    said = per_account(out, felt_t.size()) + per_account(out, felt_s.size())
    out["sentiment_90d"] = ratio(feeling, said) / 10000


def voice(out: pd.DataFrame, surveys: pd.DataFrame, d: int) -> None:
    nps = surveys[surveys.survey == "nps"]
    last_year = window(nps, d, 365).sort_values(["day", "at", "key"])
    latest = last_year.groupby("account_id").score.last() / 100
    out["nps_latest"] = latest.reindex(out.index)

    def mean(skip: int) -> pd.Series:
        scores = window(nps, d, 90, skip=skip).groupby("account_id").score
        return ratio(per_account(out, scores.sum()), per_account(out, scores.size())) / 100

    out["nps_trend"] = mean(0) - mean(90)
    out["detractor"] = (out.nps_latest <= 6).astype("float64").where(out.nps_latest.notna())


# --- running it all and writing the results ------------------------------------------------------


@contextlib.contextmanager
def fresh_process() -> Iterator[Callable[..., Any]]:
    """Run each call in a new process (spawned, so that its peak memory is its own)."""
    context = multiprocessing.get_context("spawn")

    def call(function: Callable[..., Any], *args: Any) -> Any:
        with ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1) as pool:
            return pool.submit(function, *args).result()

    yield call


PANDAS_MIB_PER_MILLION = 150  # measured: 14.4 GiB peak for 100M usage rows


def pandas_budget(rows: int, asked: int | None) -> int:
    """Usage rows pandas runs on: ``asked``, else as many as fit in 3/4 of the available memory."""
    if asked is not None:
        return min(rows, asked)
    available = 0.0
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/meminfo").read_text().splitlines()
        available = int(next(x for x in lines if x.startswith("MemAvailable")).split()[1]) / 1024
    fits = int(max(0.0, 0.75 * available - 1000) / PANDAS_MIB_PER_MILLION * 1e6)
    return min(rows, max(fits, ROW_GROUP))


def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    with fresh_process() as call:
        info = call(dataset, folder, args.accounts, args.rows)
        paths = info["paths"]
        print(f"data: {json.dumps(info['rows'])} in {info['seconds']} s", flush=True)
        before = call(run_duckdb, paths, args.repeat)
        print(f"duckdb group by: {before}", flush=True)
        tenure_out, pandas_out = str(folder / "tenure.parquet"), str(folder / "pandas.parquet")
        tenure = call(run_tenure, paths, args.repeat, tenure_out, args.explain)
        explain = tenure.pop("explain", None)
        print(f"tenure batch: {tenure}", flush=True)
        print("\n".join(explain or []), flush=True)
        after = call(run_duckdb, paths, args.repeat)  # again, in case the machine was busy
        print(f"duckdb group by, again: {after}", flush=True)
        reference = min(before, after, key=lambda r: r["seconds"])
        reference["peak_mib"] = max(before["peak_mib"], after["peak_mib"])
        pandas_rows = pandas_budget(args.rows, args.pandas_rows)
        by_pandas = call(run_pandas, paths, args.repeat, pandas_rows, pandas_out)
        print(f"pandas: {by_pandas}", flush=True)
        ids = pq.read_table(paths["accounts"], columns=["account_id"]).column(0).to_pylist()
        rng = np.random.default_rng(1)
        sample = sorted(rng.choice(ids, min(SAMPLE_ACCOUNTS, len(ids)), replace=False).tolist())
        check = call(check_sample, paths, tenure_out, sample)
    full = by_pandas["usage_rows"] == args.rows
    check["pandas_all_accounts"] = compare_all(tenure_out, pandas_out) if full else None
    problems = check["pandas_vs_tenure"] + check["incremental_vs_tenure"]
    problems += check["pandas_all_accounts"] or []
    print(f"check: {json.dumps(check)}", flush=True)
    assert not problems, "\n".join(problems)
    scale = info["rows"]["usage"] / by_pandas["usage_rows"]
    scaled = {k: by_pandas[k] * scale for k in ("seconds", "cpu_seconds")}
    return {
        "accounts": args.accounts,
        "rows": info["rows"],
        "bytes": info["bytes"],
        "generate_seconds": info["seconds"],
        "reference": reference,
        "tenure": tenure,
        "pandas": {**by_pandas, "scaled": scaled, "scale": scale},
        "check": check,
        "repeat": args.repeat,
    }


def revision() -> str:
    """The commit measured, and whether the engines' sources had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "src/tenure"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"
    return f"commit {head}" + (" with uncommitted changes in src/tenure" if dirty else "")


def summary(r: dict[str, Any]) -> dict[str, Any]:
    ref, ten, pan = r["reference"], r["tenure"], r["pandas"]
    usage = r["rows"]["usage"]
    return {
        "accounts": r["accounts"],
        "usage_rows": usage,
        "duckdb_groupby_s": round(ref["seconds"], 2),
        "tenure_s": round(ten["seconds"], 2),
        "scores_s": round(ten["scores"]["seconds"], 2),
        "scores_us_each": round(ten["scores"]["seconds"] / ten["scores"]["count"] * 1e6),
        "with_scores_over_duckdb": round(
            (ten["seconds"] + ten["scores"]["seconds"]) / ref["seconds"], 2
        ),
        "pandas_s": round(pan["scaled"]["seconds"], 1),
        "pandas_usage_rows": pan["usage_rows"],
        "tenure_rows_per_s": round(usage / ten["seconds"]),
        "tenure_over_duckdb": round(ten["seconds"] / ref["seconds"], 2),
        "pandas_over_tenure": round(pan["scaled"]["seconds"] / ten["seconds"], 1),
        "cpu_s": {
            "duckdb_groupby": round(ref["cpu_seconds"], 2),
            "tenure": round(ten["cpu_seconds"], 2),
            "pandas": round(pan["scaled"]["cpu_seconds"], 2),
        },
        "cpu_tenure_over_duckdb": round(ten["cpu_seconds"] / ref["cpu_seconds"], 2),
        "cpu_pandas_over_tenure": round(pan["scaled"]["cpu_seconds"] / ten["cpu_seconds"], 1),
        "cpu_stalled": {
            k: round(r[k]["cpu_stalled"], 2) for k in ("reference", "tenure", "pandas")
        },
        "peak_mib": {k: round(r[k]["peak_mib"]) for k in ("reference", "tenure", "pandas")},
    }


def write_results(r: dict[str, Any], path: Path) -> None:
    s = summary(r)
    pan = r["pandas"]
    scaled = pan["usage_rows"] < s["usage_rows"]
    pandas_note = (
        f"pandas ran on the first {pan['usage_rows']:,} usage rows (a uniform sample: rows are in "
        f"random order) in {pan['seconds']:.1f} s and is scaled linearly to all rows "
        f"(x{pan['scale']:.1f}), since all of them would not fit in memory; linear scaling "
        "flatters pandas, whose sorts and hash tables grow faster than linearly."
        if scaled
        else "pandas ran on every row and agreed with Tenure on every account."
    )
    others = {k: v for k, v in r["rows"].items() if k not in ("usage", "accounts")}
    stalled = s["cpu_stalled"]
    lines = [
        "",
        f"## Batch signals, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}. Tenure at {r['revision']}.",
        "",
        f"All {len(catalog())} signals of every account as of one day, through "
        "`BatchEngine.compute` on Ibis tables read from Parquet (DuckDB), against a plain DuckDB "
        "`SELECT account_id, count(*), sum(count) FROM usage GROUP BY account_id` over the same "
        "Parquet usage rows, and against a hand-written pandas implementation of the same "
        f"signals. Generated data: {s['accounts']:,} accounts, {s['usage_rows']:,} usage rows "
        f"({r['bytes']['usage'] / 2**20:,.0f} MiB of Parquet, two years, random order), and "
        + ", ".join(f"{n:,} {k}" for k, n in others.items())
        + f". Best of {r['repeat']}, each contender in a fresh process (the DuckDB reference "
        "twice, before and after Tenure, and the better kept); the Parquet files are in the page "
        "cache for all three. Aims: Tenure / DuckDB group-by 1.5 or less; pandas / Tenure 20 "
        "or more.",
        "",
        "| accounts | usage rows | DuckDB group-by | Tenure batch | pandas | Tenure / DuckDB "
        "| pandas / Tenure |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s['accounts']:,} | {s['usage_rows']:,} | {s['duckdb_groupby_s']:.2f} s "
        f"| {s['tenure_s']:.2f} s | {s['pandas_s']:,.1f} s{' (scaled)' if scaled else ''} "
        f"| {s['tenure_over_duckdb']} | {s['pandas_over_tenure']} |",
        f"| CPU seconds (all threads) | | {s['cpu_s']['duckdb_groupby']:.2f} "
        f"| {s['cpu_s']['tenure']:.2f} | {s['cpu_s']['pandas']:.2f} | {s['cpu_tenure_over_duckdb']} "
        f"| {s['cpu_pandas_over_tenure']} |",
        "",
        f"Peak resident memory (getrusage, each process): DuckDB group-by "
        f"{s['peak_mib']['reference']:,} MiB, Tenure {s['peak_mib']['tenure']:,} MiB, pandas "
        f"{s['peak_mib']['pandas']:,} MiB. {pandas_note} Checked each run: pandas and Tenure's "
        f"incremental engine equal Tenure's batch output on {r['check']['accounts']} sampled "
        f"accounts with all their rows ({r['check']['usage_rows']:,} usage rows).",
        "",
        f"Scores: turning the {s['accounts']:,} accounts' signals into health scores "
        f"(`tenure.health.score.score`, {r['tenure']['scores']['model']}, in Python) takes "
        f"{s['scores_s']:.2f} s more ({s['scores_us_each']} µs an account); signals and scores "
        f"together are {s['with_scores_over_duckdb']} times the DuckDB group-by.",
        "",
        "Share of the "
        "best run's wall time that some task waited for a CPU (Linux PSI; above about 0.1 the "
        f"machine was busy with something else): DuckDB {stalled['reference']:.2f}, Tenure "
        f"{stalled['tenure']:.2f}, pandas {stalled['pandas']:.2f}.",
    ]
    append(path, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pandas-rows", type=int, default=None,
                        help="run pandas on at most this many usage rows and scale linearly "
                        "(default: as many as fit in memory)")  # fmt: skip
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2,000 accounts, 2,000,000 rows; prints, does not write RESULTS.md",
    )
    parser.add_argument("--data", type=Path, help="keep the generated files here (reused)")
    parser.add_argument("--explain", action="store_true", help="print DuckDB's profile")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.accounts, args.rows = 2_000, 2_000_000
    with contextlib.ExitStack() as stack:
        if args.data is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tenure-bench-")))
        else:
            folder = args.data
            folder.mkdir(parents=True, exist_ok=True)
        measured = revision()
        results = {**measure(args, folder), "revision": measured}
    print(json.dumps(summary(results)))
    if not (args.no_write or args.quick):
        write_results(results, args.results)
        print(f"written to {args.results}")


if __name__ == "__main__":
    main()
