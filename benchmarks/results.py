"""What every benchmark shares: the machine it ran on, and appending to benchmarks/RESULTS.md."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
from pathlib import Path

from tenure.demo import PortfolioSpec
from tenure.demo.load import load_demo
from tenure.store import Store

HEADER = "# Benchmark results\n\nAppended by `make bench`; newest last.\n"


def machine() -> str:
    """Kernel, CPU model, cores, memory and Python, in one line."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, "
        f"{memory:.0f} GiB, Python {platform.python_version()}"
    )


def append(path: Path, lines: list[str]) -> None:
    """Append a section to the results file (created with its header when missing)."""
    existing = path.read_text() if path.exists() else HEADER
    path.write_text(existing.rstrip("\n") + "\n" + "\n".join(lines) + "\n")


def open_demo(path: Path) -> Store:
    """The demo portfolio's database at ``path``, generated there first when it is not."""
    store = Store(f"sqlite:///{path}")
    store.ensure_schema()
    if not path.exists() or path.stat().st_size < 1_000_000:
        print("generating the demo portfolio first", file=sys.stderr)
        load_demo(store, PortfolioSpec(), Path(tempfile.mkdtemp()))
    return store
