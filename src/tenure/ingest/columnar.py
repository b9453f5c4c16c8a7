"""The column-wise import engine: a clean batch of an append-only kind, parsed with Arrow.

It applies the same column plan, field types, rules, account resolution and content hash as the row
path (:mod:`tenure.ingest.importer`), a whole column at a time. Anything it cannot take exactly
(a bad value, an unknown account, a row to match by email, extra columns) raises
:class:`NeedsRowPath` and the batch goes row by row instead, which names every problem.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tenure.ingest.mapping import translate
from tenure.ingest.rows import AccountResolver, ColumnPlan, derived_key
from tenure.ingest.sources import Batch
from tenure.record import Kind
from tenure.record.columns import (
    ARROW_TYPES,
    NeedsRowPath,
    blank_mask,
    canonical_column,
    parse_column,
)
from tenure.record.kinds import FillFrom
from tenure.store.tables import ROW_HASH


@dataclass
class ParsedBatch:
    """A batch after the column-wise engine: one Arrow column per table column, ready to write."""

    keys: list[str]
    hashes: list[str]
    values: dict[str, pa.Array]

    def table(self, rows: list[int], extra: dict[str, Any]) -> pa.Table:
        """The chosen rows, with ``extra`` columns (content hash, import id) added."""
        columns = dict(self.values)
        columns[ROW_HASH] = pa.array(self.hashes, pa.string())
        for name, value in extra.items():
            columns[name] = pa.array([value] * len(self.hashes))
        return pa.table(columns).take(pa.array(rows, pa.int64()))


def can_take(plan: ColumnPlan) -> bool:
    """Whether batches of this plan may try the column-wise engine at all."""
    kind = plan.kind
    return (
        kind.append_only
        and not plan.extras
        and plan.mapping.identical_rows == "merge"
        and all(isinstance(rule, FillFrom) for rule in kind.derive)
    )


def parse_batch(plan: ColumnPlan, batch: Batch, resolver: AccountResolver) -> ParsedBatch:
    """Parse, check and identify a whole batch, or raise NeedsRowPath."""
    if batch.broken:
        raise NeedsRowPath("some rows could not be read")
    if not set(batch.columns) <= plan.consumed:
        raise NeedsRowPath("some rows carry columns the record does not name")
    try:
        return _parse(plan, batch, resolver)
    except pa.ArrowException as err:  # a shape Arrow cannot take column-wise (nested, mixed...)
        raise NeedsRowPath(str(err)) from None


def _parse(plan: ColumnPlan, batch: Batch, resolver: AccountResolver) -> ParsedBatch:
    raw = batch.column_arrays()
    size = len(batch.numbers)
    kind = plan.kind
    columns = {
        spec.name: parse_column(
            spec.type, _prepared(raw, column, vocabulary, default, size), plan.mapping.context
        )
        for spec, column, vocabulary, default in plan.steps()
    }
    for rule in kind.derive:
        if not isinstance(rule, FillFrom):  # can_take lets only column-wise rules through
            raise NeedsRowPath(f"{kind.name} has a rule with no column-wise form")
        rule.on_columns(columns)
    _require(kind, columns)
    keys, hashes = _identify(kind, columns, size)  # from the file's content, before resolving
    _resolve_accounts(kind, columns, resolver)
    values = {name: _stored(kind, name, column) for name, column in columns.items()}
    values[kind.key] = pa.array(keys, pa.string())
    return ParsedBatch(keys, hashes, values)


def _prepared(
    raw: dict[str, pa.Array], column: str | None, vocabulary: Any, default: Any, size: int
) -> pa.Array:
    values = raw.get(column) if column is not None else None
    if values is None:  # a field no row of this batch carries
        values = pa.nulls(size, pa.string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if vocabulary is not None:
        values = _translate(values, vocabulary)
    if default is not None:
        text = values.cast(pa.string()) if not pa.types.is_string(values.type) else values
        values = pc.if_else(blank_mask(text), pa.scalar(str(default)), text)
    return values


def _translate(values: pa.Array, vocabulary: dict[str, Any]) -> pa.Array:
    distinct = pc.unique(values)
    mapped = [None if v is None else translate(vocabulary, v) for v in distinct.to_pylist()]
    try:
        table = pa.array(mapped)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise NeedsRowPath(str(err)) from None
    return table.take(pc.index_in(values, value_set=distinct))


def _require(kind: Kind, columns: dict[str, pa.Array]) -> None:
    for spec in kind.fields:
        if spec.required and spec.name != kind.key and columns.get(spec.name) is None:
            raise NeedsRowPath(f"{spec.name} is missing")
        if spec.required and spec.name != kind.key and columns[spec.name].null_count:
            raise NeedsRowPath(f"{spec.name} is empty in some rows")


def _resolve_accounts(kind: Kind, columns: dict[str, pa.Array], resolver: AccountResolver) -> None:
    if not kind.has("account_id"):
        return
    accounts = columns.get("account_id")
    if (accounts is None or accounts.null_count) and "subscription_id" in columns:
        by_subscription = resolver.subscription_column(columns["subscription_id"])
        accounts = by_subscription if accounts is None else pc.coalesce(accounts, by_subscription)
        columns["account_id"] = accounts
    if accounts is None or accounts.null_count:
        raise NeedsRowPath("some rows name no account")
    if not pc.all(pc.is_in(accounts, value_set=resolver.account_array())).as_py():
        raise NeedsRowPath("some rows name an unknown account")


def _identify(kind: Kind, columns: dict[str, pa.Array], size: int) -> tuple[list[str], list[str]]:
    """Each row's key (its own, or derived from its content) and content hash."""
    key = columns.get(kind.key)
    derived = key is None or key.null_count == size
    if not derived and key is not None and key.null_count:
        raise NeedsRowPath("some rows have an id and some do not")
    hashed = {n: c for n, c in columns.items() if not (derived and n == kind.key)}
    hashes = content_hashes(kind, hashed, size)
    if derived or key is None:
        return [derived_key(kind, h) for h in hashes], hashes
    return list(key.to_pylist()), hashes


def content_hashes(kind: Kind, columns: dict[str, pa.Array], size: int) -> list[str]:
    """Per row, the same digest as :func:`tenure.ingest.rows.content_hash` of its record."""
    parts = [
        pc.binary_join_element_wise(
            pa.scalar(f"{name}="), canonical_column(kind.field(name).type.storage, column), ""
        )
        for name, column in sorted(columns.items())
    ]
    if not parts:
        joined = [""] * size
    else:
        joined = pc.binary_join_element_wise(*parts, "\x1f", null_handling="skip").to_pylist()
    return [hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest() for text in joined]


def _stored(kind: Kind, name: str, column: pa.Array) -> pa.Array:
    """The column as the store writes it (dates and times as ISO text)."""
    storage = kind.field(name).type.storage
    if storage in ("date", "timestamp"):
        return column.cast(pa.string())
    return column if column.type == ARROW_TYPES[storage] else column.cast(ARROW_TYPES[storage])
