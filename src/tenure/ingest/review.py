"""The match review list: records held because their account could not be told with confidence.

A person accepts a held record (for the suggested account or another one) or rejects it. Accepting
writes it exactly as an import would have; nothing is ever guessed silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from tenure.identity import Match
from tenure.ingest.rows import EMAIL_FIELDS, jsonable
from tenure.record import KINDS, Kind, Record
from tenure.record.fields import parse_date, parse_timestamp
from tenure.store import Store, records
from tenure.store.tables import IMPORT_ID, KIND_TABLES, ROW_HASH, match_reviews


class ReviewError(ValueError):
    """A review action cannot be done (unknown id, already resolved, unknown account)."""


@dataclass(frozen=True)
class Review:
    review_id: int
    kind: str
    email: str | None
    company: str | None
    candidate_account_id: str | None
    confidence: float | None
    method: str | None
    status: str
    resolved_account_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def hold(
    connection: Connection,
    import_id: int | None,
    kind: Kind,
    record: Record,
    match: Match,
    digest: str,
) -> bool:
    """Put a record on the review list; False when the same record already waits there."""
    waiting = select(match_reviews.c.review_id).where(
        match_reviews.c.kind == kind.name,
        match_reviews.c.row_hash == digest,
        match_reviews.c.status == "pending",
    )
    if connection.execute(waiting).first() is not None:
        return False
    connection.execute(
        insert(match_reviews).values(
            import_id=import_id,
            kind=kind.name,
            record=jsonable(record),
            row_hash=digest,
            email=next((record[f] for f in EMAIL_FIELDS if record.get(f)), None),
            company=record.get("company"),
            candidate_account_id=match.candidates[0][0] if match.candidates else None,
            confidence=match.confidence,
            method=match.method,
            candidates=[list(c) for c in match.candidates],
            status="pending",
            created_at=_now(),
        )
    )
    return True


STATUSES = ("pending", "accepted", "rejected")


def list_reviews(store: Store, status: str | None = "pending", limit: int = 1000) -> list[Review]:
    query = select(*(match_reviews.c[f] for f in Review.__dataclass_fields__)).order_by(
        match_reviews.c.review_id
    )
    if status is not None and status not in STATUSES:
        raise ReviewError(f"unknown status {status!r}; choose one of: {', '.join(STATUSES)}, all")
    if status:
        query = query.where(match_reviews.c.status == status)
    with store.engine.connect() as connection:
        rows = connection.execute(query.limit(limit)).mappings().all()
    return [Review(**row) for row in rows]


def accept(store: Store, review_id: int, account_id: str | None = None) -> Review:
    """Write the held record for ``account_id`` (default: the best candidate)."""
    with store.transaction() as connection:
        held = _pending(connection, review_id)
        chosen = account_id or held["candidate_account_id"]
        if chosen is None:
            raise ReviewError(f"review {review_id} has no candidate; say which account (--account)")
        _require_account(connection, chosen)
        kind = KINDS[held["kind"]]
        record = _restore(held["kind"], held["record"]) | {"account_id": chosen}
        row = {c.name: record.get(c.name) for c in KIND_TABLES[kind.name].columns}
        row[kind.extra_field] = jsonable(row.get(kind.extra_field))
        row |= {ROW_HASH: held["row_hash"], IMPORT_ID: held["import_id"]}
        records.write(connection, kind, [row])
        _resolve(connection, review_id, "accepted", chosen)
    return _one(store, review_id)


def reject(store: Store, review_id: int) -> Review:
    with store.transaction() as connection:
        _pending(connection, review_id)
        _resolve(connection, review_id, "rejected", None)
    return _one(store, review_id)


def _pending(connection: Connection, review_id: int) -> dict[str, Any]:
    query = select(match_reviews).where(match_reviews.c.review_id == review_id)
    held = connection.execute(query).mappings().first()
    if held is None:
        raise ReviewError(f"no review with id {review_id}")
    if held["status"] != "pending":
        raise ReviewError(f"review {review_id} is already {held['status']}")
    return dict(held)


def _require_account(connection: Connection, account_id: str) -> None:
    table = KIND_TABLES["accounts"]
    found = connection.execute(select(table.c.account_id).where(table.c.account_id == account_id))
    if found.first() is None:
        raise ReviewError(f"unknown account {account_id!r}")


def _restore(kind_name: str, stored: dict[str, Any]) -> Record:
    """Turn the JSON-held record back into typed values."""
    kind = KINDS[kind_name]
    record: Record = {}
    for name, value in stored.items():
        storage = kind.field(name).type.storage if kind.has(name) else "json"
        if value is not None and storage == "date":
            value = parse_date(value)
        elif value is not None and storage == "timestamp":
            value = parse_timestamp(value)
        record[name] = value
    return record


def _resolve(connection: Connection, review_id: int, status: str, account: str | None) -> None:
    connection.execute(
        update(match_reviews)
        .where(match_reviews.c.review_id == review_id)
        .values(
            status=status,
            resolved_account_id=account,
            resolved_at=_now(),
        )
    )


def _one(store: Store, review_id: int) -> Review:
    columns = (match_reviews.c[f] for f in Review.__dataclass_fields__)
    query = select(*columns).where(match_reviews.c.review_id == review_id)
    with store.engine.connect() as connection:
        row = connection.execute(query).mappings().one()
    return Review(**row)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
