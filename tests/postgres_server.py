"""Throwaway PostgreSQL servers for tests.

``throwaway_postgres()`` starts a private cluster in a temporary directory, listening on a free
loopback port with trust authentication and durability switched off for speed, and removes it
again on exit. Set ``TENURE_TEST_POSTGRES_URL`` to use an already-running server instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg

ENV_URL = "TENURE_TEST_POSTGRES_URL"
"""Environment variable naming an existing server URL to use instead of starting one."""

STARTUP_TIMEOUT_S = 30.0
_POLL_INTERVAL_S = 0.05
_COMMAND_TIMEOUT_S = 120.0
_LOG_TAIL_LINES = 40
_OS_USER = "postgres"

_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
}

_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


def find_bin_dir() -> Path:
    """Return the newest ``/usr/lib/postgresql/<version>/bin`` that contains ``initdb``."""
    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    if not candidates:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return max(candidates, key=_version_key)


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    """Sort key for a ``.../<version>/bin`` path: numeric version parts, non-numeric last."""
    parts = bin_dir.parent.name.split(".")
    return tuple(int(p) if p.isdigit() else -1 for p in parts)


def free_port() -> int:
    """Ask the kernel for an unused loopback TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user(argv: Sequence[str]) -> list[str]:
    """Prefix *argv* to run as the ``postgres`` OS user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", _OS_USER, "--", *argv]
    return list(argv)


class _Cluster:
    """A PostgreSQL data directory plus the commands to initialise, start and stop it."""

    def __init__(self, base: Path, port: int) -> None:
        self.base = base
        self.port = port
        self.bin_dir = find_bin_dir()
        self.data = base / "data"
        self.log = base / "server.log"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the cluster's default database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run a server binary (as the server user if needed) in the cluster dir; capture output."""
        cmd = _as_server_user([str(self.bin_dir / argv[0]), *argv[1:]])
        return subprocess.run(
            cmd,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
        )

    def _run_checked(self, *argv: str) -> None:
        """Like ``_run`` but raise RuntimeError with the command's output on failure."""
        result = self._run(*argv)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise RuntimeError(f"{argv[0]} failed (exit {result.returncode}):\n{output}")

    def init(self) -> None:
        """Create the data directory with trust auth and fast, non-durable settings."""
        self._run_checked(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        settings = {**_SERVER_SETTINGS, "port": str(self.port)}
        settings["unix_socket_directories"] = f"'{self.base}'"
        conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as fh:
            fh.write("\n# throwaway_postgres\n" + conf)
        (self.data / "pg_hba.conf").write_text(_HBA, encoding="utf-8")

    def start(self) -> None:
        """Launch the server and block until it accepts connections.

        ``pg_ctl -w`` notices a postmaster that dies during startup, so bad configs fail fast;
        the psycopg poll then confirms the TCP listener actually serves queries.
        """
        timeout = str(int(STARTUP_TIMEOUT_S))
        argv = ("pg_ctl", "start", "-w", "-t", timeout, "-D", str(self.data), "-l", str(self.log))
        result = self._run(*argv)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise RuntimeError(
                f"PostgreSQL failed to start on port {self.port}:\n{output}\n"
                f"--- server log tail ---\n{self.log_tail()}"
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Poll with psycopg until a connection succeeds or the startup timeout expires."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self._conninfo(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                last_error = exc
                time.sleep(_POLL_INTERVAL_S)
        raise RuntimeError(
            f"PostgreSQL on port {self.port} did not accept connections within "
            f"{STARTUP_TIMEOUT_S:.0f}s (last error: {last_error})\n"
            f"--- server log tail ---\n{self.log_tail()}"
        )

    def _conninfo(self) -> str:
        """libpq connection string for the cluster's TCP listener."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def log_tail(self) -> str:
        """Last lines of the server log, or a note if there is none."""
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            return f"<no server log: {exc}>"
        return "\n".join(lines[-_LOG_TAIL_LINES:])

    def stop(self) -> None:
        """Fast shutdown; a no-op if the server never started."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))


@contextlib.contextmanager
def _server_owned_tempdir() -> Iterator[Path]:
    """A fresh temp dir, owned by the ``postgres`` user when we are root; deleted on exit."""
    base = Path(tempfile.mkdtemp(prefix="tenure-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(base, user=_OS_USER, group=_OS_USER)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a fresh PostgreSQL cluster in a temp dir on a free loopback port.

    Yields a SQLAlchemy URL ``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres``; on exit
    (also on exceptions) the server is stopped with ``pg_ctl stop -m fast`` and the dir deleted.

    If ``TENURE_TEST_POSTGRES_URL`` is set, that URL is yielded and no server is started.
    """
    existing = os.environ.get(ENV_URL)
    if existing:
        yield existing
        return
    with _server_owned_tempdir() as base:
        cluster = _Cluster(base, free_port())
        cluster.init()
        try:
            cluster.start()
            yield cluster.url
        finally:
            cluster.stop()
