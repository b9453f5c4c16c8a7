"""The ledger of one import: every row counted exactly once, every rejection kept with its reason.

``rows == accepted + rejected + duplicates`` holds because rows only ever leave through here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, insert

from tenure.record import Kind
from tenure.store import records
from tenure.store.tables import rejections


@dataclass(frozen=True)
class RowError:
    """Why one row was rejected: its number (1 is the first data row), the field, the reason."""

    row: int
    field: str
    reason: str


@dataclass
class ImportReport:
    """What happened to every row of one import."""

    kind: str
    source: str
    format: str = ""
    encoding: str | None = None
    delimiter: str | None = None
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    held_for_review: int = 0
    errors: list[RowError] = field(default_factory=list)
    errors_shown: int = 0
    warnings: list[str] = field(default_factory=list)
    import_id: int | None = None
    seconds: float = 0.0
    accounts: set[str] = field(default_factory=set)  # accounts whose records were written

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("accounts")
        data["errors"] = [asdict(e) for e in self.errors]
        return data


class Ledger:
    """Counts the rows of one import and keeps its rejections (in the report and the store)."""

    def __init__(
        self, connection: Connection, kind: Kind, report: ImportReport, max_errors: int
    ) -> None:
        self.connection = connection
        self.kind = kind
        self.report = report
        self.max_errors = max_errors
        self.pending: list[RowError] = []

    def accepted(self, count: int = 1, held: bool = False) -> None:
        self.report.accepted += count
        if held:
            self.report.held_for_review += count

    def duplicate(self, count: int = 1) -> None:
        self.report.duplicates += count

    def reject(self, *errors: RowError) -> None:
        """One rejected row, with every problem found in it."""
        self.report.rejected += 1
        room = max(self.max_errors - self.report.errors_shown, 0)
        self.report.errors.extend(errors[:room])
        self.report.errors_shown += min(room, len(errors))
        self.pending.extend(errors)

    def settle(self, number: int, key: str, digest: str, stored_hash: str) -> None:
        """A row not written: a duplicate of what is stored, or an id taken by something else."""
        if stored_hash == digest:
            self.duplicate()
        else:
            name = self.kind.key
            reason = f"{name} {key!r} is already stored with different values"
            self.reject(RowError(number, name, reason))

    def fresh(self, numbers: list[int], keys: list[str], hashes: list[str]) -> list[int]:
        """Indexes of the rows to write; every other row is settled here."""
        first: dict[str, int] = {}
        later: list[int] = []
        for index, key in enumerate(keys):
            if key in first:
                later.append(index)
            else:
                first[key] = index
        stored = records.stored_hashes(self.connection, self.kind, first)
        chosen = []
        for key, index in first.items():
            previous = stored.get(key)
            if previous is None or (previous != hashes[index] and not self.kind.append_only):
                chosen.append(index)
            else:
                self.settle(numbers[index], key, hashes[index], previous)
        for index in later:
            self.settle(numbers[index], keys[index], hashes[index], hashes[first[keys[index]]])
        return chosen

    def flush(self) -> None:
        """Store the rejections noted since the last flush."""
        if not self.pending:
            return
        self.connection.execute(
            insert(rejections),
            [
                {
                    "import_id": self.report.import_id,
                    "row": e.row,
                    "field": e.field,
                    "reason": e.reason[:2000],
                }
                for e in self.pending
            ],
        )
        self.pending = []
