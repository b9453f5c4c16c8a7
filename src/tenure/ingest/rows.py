"""From a raw row of a foreign file to a record: column plan, account resolution and row identity."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, select

from tenure.identity import AccountDirectory, Match
from tenure.ingest.mapping import Mapping, translate
from tenure.ingest.sources import RawRow
from tenure.record import KINDS, Field, Kind, Record
from tenure.record.columns import canonical_value
from tenure.record.fields import is_blank
from tenure.record.kinds import parse_into
from tenure.store import records
from tenure.store.tables import KIND_TABLES

EMAIL_FIELDS = ("email", "user_email", "contact_email")


class MissingColumns(ValueError):
    """The file lacks a column the kind needs."""


@dataclass(frozen=True)
class ColumnPlan:
    """Which file column feeds which field, and which columns are kept as extra attributes."""

    kind: Kind
    mapping: Mapping
    sources: dict[str, str]
    extras: tuple[str, ...]
    present: frozenset[str] = frozenset()

    @classmethod
    def build(cls, kind: Kind, mapping: Mapping, columns: list[str]) -> ColumnPlan:
        present = set(columns)
        sources = {name: col for name, col in mapping.columns.items() if col in present}
        missing_mapped = [f"{n} <- {c!r}" for n, c in mapping.columns.items() if c not in present]
        if missing_mapped:
            raise MissingColumns(
                f"the mapping names columns the file does not have: {', '.join(missing_mapped)}; "
                f"the file has: {', '.join(columns)}"
            )
        used = set(sources.values())
        for name in kind.field_names:  # a column named like a field feeds it, even one first
            if name not in sources and name not in used and name not in mapping.ignore:
                sources[name] = name  # seen deep in a JSON Lines file
        used = set(sources.values())
        extras = tuple(c for c in columns if c not in used and c not in mapping.ignore)
        plan = cls(kind, mapping, sources, extras, frozenset(columns))
        plan.check_required(columns)
        return plan

    def check_required(self, columns: list[str]) -> None:
        present = set(columns)
        fed = {name for name, column in self.sources.items() if column in present}
        for group in self.kind.column_groups():
            if not any(name in fed or name in self.mapping.defaults for name in group):
                need = group[0] if len(group) == 1 else "one of " + ", ".join(group)
                raise MissingColumns(
                    f"required column missing: {self.kind.name} needs {need}; the file has: "
                    f"{', '.join(columns)} (a mapping file can rename columns)"
                )

    def steps(self) -> list[tuple[Field, str | None, Any, Any]]:
        """Per field: (field, source column, value vocabulary, default when blank)."""
        found = []
        for spec in self.kind.fields:
            column = self.sources.get(spec.name)
            default = self.mapping.defaults.get(spec.name, spec.default)
            if column is not None or default is not None:
                found.append((spec, column, self.mapping.values.get(spec.name), default))
        return found

    def parser(self) -> Callable[[RawRow], tuple[Record, list[tuple[str, str]]]]:
        """A function from a raw row to (record, errors), compiled once per import."""
        steps, ctx, kind = self.steps(), self.mapping.context, self.kind

        def parse(row: RawRow) -> tuple[Record, list[tuple[str, str]]]:
            record: Record = {}
            errors: list[tuple[str, str]] = []
            for spec, column, vocabulary, default in steps:
                value = None if column is None else row.get(column)
                if vocabulary is not None and value is not None:
                    value = translate(vocabulary, value)
                if default is not None and is_blank(value):
                    value = default
                parse_into(record, errors, spec, value, ctx)
            return kind.complete(record, errors)

        return parse

    def extra_values(self, row: RawRow) -> dict[str, Any] | None:
        """The row's values in columns the record does not name (kept, never dropped).

        Taken from the row itself, so a JSON Lines key first seen deep in the file is kept too.
        """
        skip = self.consumed
        found = {c: jsonable(v) for c, v in row.items() if c not in skip and not is_blank(v)}
        return found or None

    @property
    def carried(self) -> frozenset[str]:
        """Fields this file speaks for: fed by one of its columns or by a mapping default."""
        fed = {name for name, column in self.sources.items() if column in self.present}
        extra = {self.kind.extra_field} if self.extras else set()
        return frozenset(fed | set(self.mapping.defaults) | extra)

    @property
    def consumed(self) -> frozenset[str]:
        """Columns that feed a field or are ignored by the mapping."""
        return frozenset(self.sources.values()) | self.mapping.ignore


def jsonable(value: Any) -> Any:
    """A value JSON can hold (dates become ISO text, everything odd becomes text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def content_hash(record: Record) -> str:
    """A stable 32-hex-digit digest of a record's content (independent of key order).

    Made of the canonical text of every non-empty value, so the column-wise engine
    (:func:`tenure.ingest.columnar.content_hashes`) computes the very same digest.
    """
    text = "\x1f".join(
        f"{name}={canonical_value(value)}"
        for name, value in sorted(record.items())
        if value is not None
    )
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def derived_key(kind: Kind, digest: str) -> str:
    """The id of a row that has none: the kind's prefix and its content hash."""
    return f"{kind.name[:2]}_{digest[:24]}"


@dataclass
class RowIdentity:
    """Gives each record its key and content hash; spots rows seen before in the same file."""

    kind: Kind
    keep_identical: bool = False
    _occurrences: Counter[str] = field(default_factory=Counter)
    _seen: dict[str, tuple[str, int]] = field(default_factory=dict)

    def assign(self, record: Record) -> str:
        """Set the key when the row has none; return the content hash."""
        digest = content_hash(record)
        if record.get(self.kind.key) is None:
            record[self.kind.key] = self._derived_key(digest)
        return digest

    def _derived_key(self, digest: str) -> str:
        if self.keep_identical:
            self._occurrences[digest] += 1
            nth = self._occurrences[digest]
            if nth > 1:
                digest = hashlib.blake2b(f"{digest}#{nth}".encode(), digest_size=16).hexdigest()
        return derived_key(self.kind, digest)

    @property
    def identical_repeats(self) -> int:
        """Rows kept although identical to an earlier row of the file (``identical_rows: keep``)."""
        return sum(n - 1 for n in self._occurrences.values())

    def repeat_of(self, record: Record, digest: str, row: int) -> tuple[str, int] | None:
        """For entities: (hash, row) of an earlier row with the same key in this file, if any."""
        if self.kind.append_only:
            return None
        key = str(record[self.kind.key])
        earlier = self._seen.get(key)
        if earlier is None:
            self._seen[key] = (digest, row)
        return earlier


@dataclass
class AccountResolver:
    """Finds the account of each record: by id, by subscription, or by email and company."""

    connection: Connection
    threshold: float
    _accounts: set[str] | None = None
    _subscriptions: dict[str, Any] | None = None
    _directory: AccountDirectory | None = None
    _account_array: pa.Array | None = None
    _subscription_arrays: tuple[pa.Array, pa.Array] | None = None

    def accounts(self) -> set[str]:
        if self._accounts is None:
            table = KIND_TABLES["accounts"]
            self._accounts = set(self.connection.execute(select(table.c.account_id)).scalars())
        return self._accounts

    def subscriptions(self) -> dict[str, Any]:
        """Subscription id -> account id, for every stored subscription."""
        if self._subscriptions is None:
            self._subscriptions = records.column_map(
                self.connection, KINDS["subscriptions"], "account_id"
            )
        return self._subscriptions

    def subscription_account(self, subscription_id: str) -> str | None:
        found = self.subscriptions().get(subscription_id)
        return None if found is None else str(found)

    def preload(self) -> None:
        """Load every lookup now, so that later calls never touch the database."""
        self.account_array()
        self.subscriptions()

    def account_array(self) -> pa.Array:
        """The known account ids as an Arrow array (for the column-wise engine)."""
        if self._account_array is None:
            self._account_array = pa.array(sorted(self.accounts()), pa.string())
        return self._account_array

    def subscription_column(self, subscription_ids: pa.Array) -> pa.Array:
        """The account of each subscription id (null where unknown)."""
        if self._subscription_arrays is None:
            known = self.subscriptions()
            self._subscription_arrays = (
                pa.array(list(known), pa.string()),
                pa.array([str(v) for v in known.values()], pa.string()),
            )
        keys, owners = self._subscription_arrays
        return owners.take(pc.index_in(subscription_ids.cast(pa.string()), value_set=keys))

    def directory(self) -> AccountDirectory:
        if self._directory is None:
            table = KIND_TABLES["accounts"]
            query = select(table.c.account_id, table.c.name, table.c.domains)
            self._directory = AccountDirectory(threshold=self.threshold)
            for account_id, name, domains in self.connection.execute(query):
                self._directory.add(account_id, name, domains)
        return self._directory

    def resolve(self, kind: Kind, record: Record) -> tuple[str, str] | Match | None:
        """None when the record's account is settled; an error (field, reason); or a Match to hold."""
        if not kind.has("account_id") or kind.name == "accounts":
            return None
        account = record.get("account_id")
        if account is not None:
            if account not in self.accounts():
                return "account_id", f"unknown account {account!r} (import accounts first)"
            return None
        if record.get("subscription_id") is not None:
            return self._from_subscription(record)
        return self._from_email(kind, record)

    def _from_subscription(self, record: Record) -> tuple[str, str] | None:
        found = self.subscription_account(record["subscription_id"])
        if found is None:
            return "subscription_id", f"unknown subscription {record['subscription_id']!r}"
        record["account_id"] = found
        return None

    def _from_email(self, kind: Kind, record: Record) -> tuple[str, str] | Match:
        email = next((record[f] for f in EMAIL_FIELDS if record.get(f)), None)
        company = record.get("company")
        if email is None and company is None:
            return "account_id", "is empty, and there is no email or company to match it by"
        match = self.directory().match(email, company)
        if match.matched:
            record["account_id"] = match.account_id
        return match
