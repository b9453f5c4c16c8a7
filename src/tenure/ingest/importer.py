"""Importing one file of one kind: stream, validate, resolve, de-duplicate, write, report.

The whole import is one transaction: a file that turns out to be unreadable halfway leaves nothing
behind. Every row ends up counted exactly once: ``rows == accepted + rejected + duplicates``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, insert, update

from tenure.identity import DEFAULT_THRESHOLD, Match
from tenure.ingest import review
from tenure.ingest.columnar import ParsedBatch, can_take, parse_batch
from tenure.ingest.ledger import ImportReport, Ledger, RowError
from tenure.ingest.mapping import Mapping, MappingError, load_mapping
from tenure.ingest.readahead import ReadAhead
from tenure.ingest.rows import (
    AccountResolver,
    ColumnPlan,
    MissingColumns,
    RowIdentity,
)
from tenure.ingest.sources import (
    END,
    Batch,
    FastReaderGaveUp,
    RawRow,
    Source,
    SourceError,
    open_source,
)
from tenure.record import Kind, Record, kind_named
from tenure.record.columns import NeedsRowPath
from tenure.store import Store, records
from tenure.store.tables import IMPORT_ID, KIND_TABLES, ROW_HASH, imports

Progress = Callable[[int, int], None]
Engine = Literal["auto", "rows"]


class ImportRefused(ValueError):
    """The file as a whole was refused; nothing was written. The message says why."""


@dataclass
class _Batch:
    """Rows of one batch ready to write, with their row numbers and content hashes."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)


class Importer:
    """Imports files into a store; one instance per import."""

    def __init__(
        self,
        store: Store,
        kind: Kind,
        mapping: Mapping,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        max_errors: int = 1000,
        engine: Engine = "auto",
    ) -> None:
        self.engine = engine
        self.store = store
        self.kind = kind
        self.mapping = mapping
        self.threshold = threshold
        self.max_errors = max_errors
        self.table = KIND_TABLES[kind.name]
        self.columns = [c.name for c in self.table.columns]

    def run(self, source: Source, progress: Progress | None = None) -> ImportReport:
        report = ImportReport(
            self.kind.name,
            str(source.path),
            source.format,
            source.encoding,
            source.delimiter,
            warnings=list(source.warnings),
        )
        try:
            plan = ColumnPlan.build(self.kind, self.mapping, source.columns)
        except MissingColumns as err:
            raise ImportRefused(f"{source.path}: {err}") from None
        started = time.perf_counter()
        digest = _sha256(source.path)  # before the write lock is taken
        with self.store.transaction() as connection:
            report.import_id = self._open_log(connection, source, digest)
            state = _ImportState(self, connection, plan, report)
            prepared = state.prepared(source.batches())
            with closing(prepared):  # on any error, stop the read-ahead before the file closes
                for batch, parsed in prepared:
                    state.take(batch, parsed)
                    if progress:
                        read = source.size if batch.position == END else batch.position
                        progress(min(read, source.size), source.size)
            state.finish()
            report.seconds = round(time.perf_counter() - started, 3)
            self._close_log(connection, report)
        if report.rows == 0:
            report.warnings.append("the file has a header but no data rows")
        return report

    def _open_log(self, connection: Connection, source: Source, digest: str) -> int:
        result = connection.execute(
            insert(imports)
            .values(
                kind=self.kind.name,
                source=str(source.path),
                sha256=digest,
                started_at=_now(),
            )
            .returning(imports.c.import_id)
        )
        return int(result.scalar_one())

    def _close_log(self, connection: Connection, report: ImportReport) -> None:
        connection.execute(
            update(imports)
            .where(imports.c.import_id == report.import_id)
            .values(
                finished_at=_now(),
                rows=report.rows,
                accepted=report.accepted,
                rejected=report.rejected,
                duplicates=report.duplicates,
                held_for_review=report.held_for_review,
            )
        )


class _ImportState:
    """The moving parts of one running import."""

    def __init__(
        self, importer: Importer, connection: Connection, plan: ColumnPlan, report: ImportReport
    ) -> None:
        self.importer = importer
        self.kind = importer.kind
        self.connection = connection
        self.plan = plan
        self.report = report
        self.identity = RowIdentity(self.kind, importer.mapping.identical_rows == "keep")
        self.resolver = AccountResolver(connection, importer.threshold)
        self.columnar = (
            importer.engine == "auto" and can_take(plan) and records.supports_bulk(connection)
        )
        self.parse = plan.parser()
        self.ledger = Ledger(connection, self.kind, report, importer.max_errors)

    def prepared(
        self, batches: Iterator[Batch]
    ) -> Generator[tuple[Batch, ParsedBatch | None], None, None]:
        """Batches with their column-wise parse (None: take the row path), read ahead."""
        if not self.columnar:
            yield from ((batch, None) for batch in batches)
            return
        self.resolver.preload()  # the read-ahead worker must not touch the database
        yield from ReadAhead(batches, self.parse_columns)

    def parse_columns(self, batch: Batch) -> ParsedBatch | None:
        try:
            return parse_batch(self.plan, batch, self.resolver)
        except NeedsRowPath:
            return None  # the row path takes it, and names every problem

    def take(self, batch: Batch, parsed: ParsedBatch | None) -> None:
        self.report.rows += len(batch)
        if parsed is not None:
            self.write_parsed(batch.numbers, parsed)
            return
        for number, reason in batch.broken:
            self.ledger.reject(RowError(number, "_row", reason))
        ready = _Batch()
        for number, row in zip(batch.numbers, batch.rows(), strict=True):
            self.take_row(number, row, ready)
        self.write(ready)
        self.ledger.flush()

    def write_parsed(self, numbers: list[int], parsed: ParsedBatch) -> None:
        """Write a batch the column-wise engine took; count duplicates and conflicts."""
        fresh = self.ledger.fresh(numbers, parsed.keys, parsed.hashes)
        table = parsed.table(fresh, {IMPORT_ID: self.report.import_id})
        if "account_id" in table.column_names:
            self.report.accounts.update(a for a in table["account_id"].unique().to_pylist() if a)
        written = records.insert_new(self.connection, self.kind, table)
        self.ledger.accepted(written)
        self.ledger.duplicate(len(fresh) - written)  # another writer got there first
        self.ledger.flush()

    def take_row(self, number: int, row: RawRow, ready: _Batch) -> None:
        record, problems = self.parse(row)
        if problems:
            self.ledger.reject(*(RowError(number, name, reason) for name, reason in problems))
            return
        extras = self.plan.extra_values(row)
        if extras:
            record[self.kind.extra_field] = {**(record.get(self.kind.extra_field) or {}), **extras}
        digest = self.identity.assign(record)  # from the file's content, before resolving
        earlier = self.identity.repeat_of(record, digest, number)
        if earlier is not None:
            self.repeat(number, record, digest, earlier)
            return
        settled = self.resolver.resolve(self.kind, record)
        if isinstance(settled, tuple):
            self.ledger.reject(RowError(number, *settled))
        elif isinstance(settled, Match) and not settled.matched:
            self.hold(number, record, settled, digest)
        else:
            self.stage(number, record, settled, digest, ready)

    def stage(
        self, number: int, record: Record, match: Match | None, digest: str, ready: _Batch
    ) -> None:
        if match is not None:
            extra = record.get(self.kind.extra_field) or {}
            extra.update(matched_by=match.method, match_confidence=match.confidence)
            record[self.kind.extra_field] = extra
        ready.rows.append(self.complete(record, digest))
        ready.numbers.append(number)

    def repeat(self, number: int, record: Record, digest: str, earlier: tuple[str, int]) -> None:
        first_hash, first_row = earlier
        if first_hash == digest:
            self.ledger.duplicate()
            return
        key = self.kind.key
        reason = (
            f"{key} {record[key]!r} appears again (first at row {first_row}) with "
            "different values; the first stays"
        )
        self.ledger.reject(RowError(number, key, reason))

    def complete(self, record: Record, digest: str) -> dict[str, Any]:
        row = {name: record.get(name) for name in self.importer.columns}
        row[ROW_HASH] = digest
        row[IMPORT_ID] = self.report.import_id
        return row

    def write(self, ready: _Batch) -> None:
        """Write new and changed rows of the row path."""
        key = self.kind.key
        keys = [row[key] for row in ready.rows]
        hashes = [row[ROW_HASH] for row in ready.rows]
        fresh = [ready.rows[i] for i in self.ledger.fresh(ready.numbers, keys, hashes)]
        self.report.accounts.update(r["account_id"] for r in fresh if r.get("account_id"))
        if (
            not self.kind.append_only
            and self.kind.has("account_id")
            and self.kind.key != "account_id"
        ):
            # a record moving to another account changes the one it leaves too
            before = records.stored_values(self.connection, self.kind, [r[key] for r in fresh],
                                           "account_id")  # fmt: skip
            self.report.accounts.update(a for a in before.values() if a)
        update = self.kind.spoken_for(self.plan.carried) | {ROW_HASH, IMPORT_ID}
        written = records.write(self.connection, self.kind, fresh, update)
        self.ledger.accepted(written)
        self.ledger.duplicate(len(fresh) - written)  # another writer got there first

    def hold(self, number: int, record: Record, match: Match, digest: str) -> None:
        """Keep a record whose account is unsure for review (once, however often it comes)."""
        key = record[self.kind.key]
        stored = records.stored_hashes(self.connection, self.kind, [key]).get(key)
        if stored is not None:
            self.ledger.settle(number, key, digest, stored)
        elif review.hold(self.connection, self.report.import_id, self.kind, record, match, digest):
            self.ledger.accepted(held=True)
        else:
            self.ledger.duplicate()

    def finish(self) -> None:
        self.ledger.flush()
        repeats = self.identity.identical_repeats
        if repeats:
            self.report.warnings.append(
                f"{repeats:,} rows repeat an earlier row of this file exactly and carry no id; "
                "they were kept as separate records (identical_rows: keep)"
            )


def _sha256(path: Path) -> str:
    """The file's SHA-256, kept in the import log so a re-import can be traced to the same file."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def import_file(
    store: Store,
    kind: str,
    path: str | Path,
    mapping: str | Path | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    progress: Progress | None = None,
    max_errors: int = 1000,
    engine: Engine = "auto",
) -> ImportReport:
    """Import ``path`` as ``kind`` (optionally through a mapping file) and report on every row.

    ``engine="rows"`` takes every row through the row-by-row engine, the reference the faster
    column-wise engine is tested against; ``"auto"`` uses the column-wise engine where it can.
    Raises :class:`ImportRefused` when the file as a whole cannot be imported; then nothing is written.
    """
    try:
        target = kind_named(kind)
    except KeyError as err:
        raise ImportRefused(str(err.args[0])) from None
    try:
        rules = load_mapping(mapping, target) if mapping is not None else Mapping(kind=target.name)
    except MappingError as err:
        raise ImportRefused(str(err)) from None
    importer = Importer(
        store, target, rules, threshold=threshold, max_errors=max_errors, engine=engine
    )
    try:
        return _run(importer, Path(path), rules, progress, fast=engine == "auto")
    except FastReaderGaveUp:  # the whole import was rolled back: read it the reference way
        return _run(importer, Path(path), rules, progress, fast=False)


def _run(
    importer: Importer, path: Path, rules: Mapping, progress: Progress | None, fast: bool
) -> ImportReport:
    try:
        source = open_source(path, rules.format, rules.delimiter, rules.encoding, fast)
    except SourceError as err:
        raise ImportRefused(str(err)) from None
    try:
        return importer.run(source, progress)
    except SourceError as err:
        raise ImportRefused(str(err)) from None
    finally:
        source.close()
