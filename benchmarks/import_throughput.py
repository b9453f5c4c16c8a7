"""Import throughput: usage events from CSV and Parquet into SQLite and PostgreSQL.

Each figure is a ratio against the database's own bulk load of the same rows, measured in the same
run: SQLite's ``.import`` (the sqlite3 shell) and PostgreSQL's ``COPY ... FROM STDIN``. Results are
written to benchmarks/RESULTS.md with the date and the machine.

    python benchmarks/import_throughput.py [--rows 500000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from results import append, machine  # noqa: E402

from postgres_server import throwaway_postgres  # noqa: E402
from tenure.ingest import import_file  # noqa: E402
from tenure.store import Store  # noqa: E402

COLUMNS = [
    "event_id",
    "account_id",
    "user_id",
    "event",
    "feature",
    "timestamp",
    "count",
    "properties",
]
REFERENCE_TABLE = (
    "CREATE TABLE events_ref (event_id TEXT PRIMARY KEY, account_id TEXT, user_id TEXT, "
    "event TEXT, feature TEXT, timestamp TEXT, count BIGINT, properties TEXT)"
)
FEATURES = ["dashboards", "reports", "search", "workflows", "api", "exports", "alerts", "admin"]


def make_files(folder: Path, rows: int, accounts: int = 1000) -> tuple[Path, Path, Path]:
    """Accounts CSV, and the same events as CSV and as Parquet (deterministic)."""
    accounts_csv = folder / "accounts.csv"
    with accounts_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["account_id", "name"])
        writer.writerows([f"acct-{i:05d}", f"Company {i}"] for i in range(accounts))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    table = {
        "event_id": [f"ev-{i:09d}" for i in range(rows)],
        "account_id": [f"acct-{(i * 7919) % accounts:05d}" for i in range(rows)],
        "user_id": [f"u-{(i * 104729) % (accounts * 20):06d}" for i in range(rows)],
        "event": [f"{FEATURES[i % 8]}_used" for i in range(rows)],
        "feature": [FEATURES[i % 8] for i in range(rows)],
        "timestamp": [
            (start + timedelta(seconds=17 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(rows)
        ],
        "count": [1 + i % 5 for i in range(rows)],
        "properties": [json.dumps({"platform": "web" if i % 3 else "ios"}) for i in range(rows)],
    }
    events_csv, events_parquet = folder / "events.csv", folder / "events.parquet"
    arrow = pa.table(table)
    pq.write_table(arrow, events_parquet)
    with events_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(zip(*(table[c] for c in COLUMNS), strict=True))
    return accounts_csv, events_csv, events_parquet


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def sqlite_reference(folder: Path, events_csv: Path) -> float:
    database = folder / "reference.db"
    database.unlink(missing_ok=True)
    script = f"{REFERENCE_TABLE};\n.mode csv\n.import --skip 1 {events_csv} events_ref\n"
    return timed(
        lambda: subprocess.run(["sqlite3", str(database)], input=script, text=True, check=True)
    )


def postgres_reference(url: str, events_csv: Path) -> float:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    def load() -> None:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute("DROP TABLE IF EXISTS events_ref")
            connection.execute(REFERENCE_TABLE)
            with (
                connection.cursor() as cursor,
                cursor.copy("COPY events_ref FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
                events_csv.open("rb") as handle,
            ):
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)

    return timed(load)


def tenure_import(url: str, accounts_csv: Path, events: Path) -> float:
    store = Store(url)
    store.upgrade()
    import_file(store, "accounts", accounts_csv)
    seconds = timed(lambda: _check(import_file(store, "events", events)))
    store.close()
    return seconds


def _check(report: object) -> None:
    assert getattr(report, "rejected", 1) == 0, report


def fresh_postgres_db(url: str, name: str) -> str:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def best(times: list[float]) -> float:
    return min(times)


def measure(rows: int, repeat: int) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="tenure-bench-") as scratch, throwaway_postgres() as pg:
        folder = Path(scratch)
        accounts_csv, events_csv, events_parquet = make_files(folder, rows)
        sqlite_ref = best([sqlite_reference(folder, events_csv) for _ in range(repeat)])
        pg_ref = best([postgres_reference(pg, events_csv) for _ in range(repeat)])
        for backend, reference in (("sqlite", sqlite_ref), ("postgresql", pg_ref)):
            for source in (events_csv, events_parquet):
                times = []
                for attempt in range(repeat):
                    if backend == "sqlite":
                        url = f"sqlite:///{folder / f'tenure-{attempt}.db'}"
                        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
                    else:
                        url = fresh_postgres_db(pg, f"bench_{attempt}")
                    times.append(tenure_import(url, accounts_csv, source))
                seconds = best(times)
                results.append(
                    {
                        "backend": backend,
                        "source": source.suffix.lstrip("."),
                        "rows": rows,
                        "tenure_seconds": round(seconds, 3),
                        "tenure_rows_per_s": round(rows / seconds),
                        "reference_seconds": round(reference, 3),
                        "reference_rows_per_s": round(rows / reference),
                        "ratio": round(seconds / reference, 2),
                    }
                )
                print(json.dumps(results[-1]), flush=True)
    return results


# VmHWM is this process's own peak (ru_maxrss would carry the parent's peak across exec).
MEMORY_PROBE = """
import sys
from pathlib import Path
from tenure.ingest import import_file
from tenure.store import Store
store = Store(sys.argv[1]); store.upgrade()
import_file(store, "accounts", sys.argv[2])
import_file(store, "events", sys.argv[3])
status = Path("/proc/self/status").read_text().splitlines()
print(next(line.split()[1] for line in status if line.startswith("VmHWM")))
"""


def peak_memory_mib(folder: Path, rows: int) -> float:
    """Peak resident memory of a fresh process importing ``rows`` events from CSV."""
    sub = folder / f"mem-{rows}"
    sub.mkdir()
    accounts_csv, events_csv, _ = make_files(sub, rows)
    url = f"sqlite:///{sub / 'tenure.db'}"
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, url, str(accounts_csv), str(events_csv)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout.split()[-1]) / 1024


def write_results(results: list[dict[str, object]], memory: dict[int, float], path: Path) -> None:
    references = {"sqlite": "sqlite3 shell `.import`", "postgresql": "`COPY ... FROM STDIN`"}
    lines = [
        "",
        f"## Import throughput, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}.",
        "",
        "Usage events with ids, imported with `tenure.ingest.import_file` (parse, validate, resolve "
        "the account, de-duplicate, write, in one transaction) against the database's own bulk "
        "load of the same rows into a plain table. Best of the runs; ratio = Tenure time / "
        "reference time (lower is better; the aim is 2 or less).",
        "",
        "| backend | source | rows | Tenure rows/s | reference | reference rows/s | ratio |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    lines += [
        f"| {r['backend']} | {r['source']} | {r['rows']:,} | {r['tenure_rows_per_s']:,} | "
        f"{references[str(r['backend'])]} | {r['reference_rows_per_s']:,} | {r['ratio']} |"
        for r in results
    ]
    small, large = sorted(memory)
    lines += [
        "",
        "Peak memory of a fresh process importing events from CSV into SQLite (streaming: it "
        "should not grow with the file):",
        "",
        "| rows | peak resident memory | ratio to the smaller file |",
        "|---:|---:|---:|",
        f"| {small:,} | {memory[small]:.0f} MiB | 1.00 |",
        f"| {large:,} | {memory[large]:.0f} MiB | {memory[large] / memory[small]:.2f} |",
    ]
    append(path, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    if shutil.which("sqlite3") is None:
        sys.exit("the sqlite3 shell is needed for the reference: apt-get install sqlite3")
    results = measure(args.rows, args.repeat)
    with tempfile.TemporaryDirectory(prefix="tenure-mem-") as scratch:
        memory = {n: peak_memory_mib(Path(scratch), n) for n in (args.rows // 4, args.rows)}
    print(json.dumps({"peak_memory_mib": memory}))
    write_results(results, memory, args.results)
    print(f"written to {args.results}")


if __name__ == "__main__":
    main()
