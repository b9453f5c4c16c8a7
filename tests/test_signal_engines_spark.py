"""The same batch expressions on PySpark (local mode) give exactly what they give on DuckDB.

The batch engine is written as Ibis expressions so that it can run where the data lives; this runs
one random history (every source, rows on every window edge) through both backends.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ibis
import pytest

from tenure.signals.batch import BatchEngine
from test_signal_engines import AS_OF, CATALOG, EDGES, _arrow, account_rows


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("tenure-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={warehouse}")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _history(seed: int) -> dict[str, list[dict[str, Any]]]:
    """Random rows for every source, many on window edges (reproducible from ``seed``)."""
    rnd = random.Random(seed)
    accounts = ["a1", "a2", "a3"]

    def day() -> int:
        return rnd.choice(EDGES) if rnd.random() < 0.5 else rnd.randint(AS_OF - 420, AS_OF)

    def maybe() -> int | None:
        return rnd.choice([None, day(), AS_OF + rnd.randint(1, 400)])

    def pick(*values: Any) -> Any:
        return rnd.choice(values)

    makers = {
        "usage": lambda: {"day": day(), "user": pick("u1", "u2", None),
                          "feature": pick("reports", "api"), "count": rnd.randint(0, 4)},
        "tickets": lambda: {"opened_day": day(), "resolved_day": maybe(),
                            "priority": pick("P1", "P2", "P3", None),
                            "csat": pick(None, 300, 450), "sentiment": pick(None, -5000, 2500)},
        "surveys": lambda: {"day": (d := day()), "at": d * 86_400 + rnd.randint(0, 86_399),
                            "survey": pick("nps", "csat"), "score": 100 * rnd.randint(0, 10),
                            "sentiment": pick(None, 4000)},
        "touchpoints": lambda: {"day": day(), "type": pick("email", "qbr")},
        "touch_people": lambda: {"day": day(), "person": pick("c1", "c2")},
        "milestones": lambda: {"planned_day": maybe(), "achieved_day": maybe(),
                               "category": pick("onboarding", "value")},
        "subscriptions": lambda: {"start_day": day(), "end_day": maybe(), "renews_day": maybe(),
                                  "seats": rnd.randint(0, 20), "mrr": rnd.randint(0, 90_000),
                                  "is_trial": pick(True, False)},
        "payments": lambda: {"day": day(), "status": pick("succeeded", "failed")},
        "contacts": lambda: {"left_day": maybe(), "persona": pick("champion", "executive_sponsor",
                                                                  "end_user", None)},
    }  # fmt: skip
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, make in makers.items():
        rows = [make() | {"account_id": rnd.choice(accounts)} for _ in range(rnd.randint(5, 25))]
        for number, row in enumerate(rows):
            row["key"] = f"{name}-{number}"
        tables[name] = rows
    tables["accounts"] = account_rows(accounts)
    return tables


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_pyspark_gives_what_duckdb_gives(spark: Any) -> None:
    seed = random.randrange(1_000_000)
    arrow = _arrow(_history(seed))
    days = [AS_OF, AS_OF + 45]
    on_duckdb = BatchEngine(CATALOG).compute(arrow, days).to_pylist()
    backend = ibis.pyspark.connect(spark)
    on_spark = BatchEngine(CATALOG, backend).compute(_views(spark, backend, arrow), days)
    assert len(on_duckdb) == 6
    assert on_spark.to_pylist() == on_duckdb, f"seed {seed}"


def _views(spark: Any, backend: Any, arrow: dict[str, Any]) -> dict[str, Any]:
    """Spark views of the Arrow tables, built from Arrow (through pandas, an integer column
    with nulls would turn into floats with NaN, which Spark does not treat as null)."""
    tables = {}
    for name, table in arrow.items():
        spark.createDataFrame(table).createOrReplaceTempView(name)
        tables[name] = backend.table(name)
    return tables


def test_the_spark_warehouse_stays_out_of_the_working_directory() -> None:
    assert not (Path.cwd() / "spark-warehouse").exists()
