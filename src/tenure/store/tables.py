"""SQL tables, derived from the record's kind declarations, plus the store's own bookkeeping."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

from tenure.record import KINDS, Kind
from tenure.record.fields import Identifier, Storage

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    }
)

_STORAGE: dict[Storage, TypeEngine[Any] | type[TypeEngine[Any]]] = {
    "text": Text,
    "integer": BigInteger,
    "float": Double,
    "boolean": Boolean,
    "date": Date,
    "timestamp": DateTime,
    "json": JSON(none_as_null=True),
}

ROW_HASH = "_row_hash"
IMPORT_ID = "_import_id"


def _kind_table(kind: Kind) -> Table:
    columns: list[Column[Any]] = []
    for spec in kind.fields:
        sql_type: TypeEngine[Any] | type[TypeEngine[Any]] = _STORAGE[spec.type.storage]
        if isinstance(spec.type, Identifier):
            sql_type = String(spec.type.max_length)
        columns.append(Column(spec.name, sql_type, primary_key=spec.name == kind.key))
    if not kind.has(kind.extra_field):
        columns.append(Column(kind.extra_field, JSON(none_as_null=True)))
    columns.append(Column(ROW_HASH, String(32), nullable=False))
    columns.append(Column(IMPORT_ID, Integer))
    table = Table(kind.name, metadata, *columns, comment=kind.description)
    if kind.has("account_id") and kind.name != "accounts":
        Index(None, table.c.account_id, table.c[kind.time_field])
    return table


KIND_TABLES: dict[str, Table] = {name: _kind_table(kind) for name, kind in KINDS.items()}

imports = Table(
    "imports",
    metadata,
    Column("import_id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),
    Column("source", Text, nullable=False),
    Column("sha256", String(64)),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("rows", BigInteger, nullable=False, default=0),
    Column("accepted", BigInteger, nullable=False, default=0),
    Column("rejected", BigInteger, nullable=False, default=0),
    Column("duplicates", BigInteger, nullable=False, default=0),
    Column("held_for_review", BigInteger, nullable=False, default=0),
    comment="One row per file import: what came in and what happened to it.",
)

rejections = Table(
    "rejections",
    metadata,
    Column("rejection_id", Integer, primary_key=True, autoincrement=True),
    Column("import_id", Integer, nullable=False, index=True),
    Column("row", BigInteger, nullable=False),
    Column("field", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    comment="Every rejected row of every import, with the field and the reason.",
)

match_reviews = Table(
    "match_reviews",
    metadata,
    Column("review_id", Integer, primary_key=True, autoincrement=True),
    Column("import_id", Integer),
    Column("kind", String(40), nullable=False),
    Column("record", JSON, nullable=False),
    Column("row_hash", String(32), nullable=False),
    Column("email", String(320)),
    Column("company", Text),
    Column("candidate_account_id", String(200)),
    Column("confidence", Double),
    Column("method", String(40)),
    Column("candidates", JSON),
    Column("status", String(20), nullable=False, default="pending"),
    Column("created_at", DateTime, nullable=False),
    Column("resolved_at", DateTime),
    Column("resolved_account_id", String(200)),
    Index("ix_match_reviews_status", "status"),
    Index("ix_match_reviews_kind_row_hash", "kind", "row_hash"),
    comment="Records that could not be matched to an account with confidence: they wait here.",
)

health_models = Table(
    "health_models",
    metadata,
    Column("model_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("version", String(100), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    Column("text", Text, nullable=False),
    Column("registered_at", DateTime, nullable=False),
    Column("active", Boolean, nullable=False, default=False),
    comment="Every health model file ever used to score, verbatim, so any score can be explained.",
)

health_scores = Table(
    "health_scores",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("model_id", Integer, primary_key=True),
    Column("score", Double),
    Column("band", String(20)),
    Column("variant", String(200)),
    Index("ix_health_scores_model_id_day", "model_id", "day"),
    comment="Daily health history per account and model (the score as of the end of each day).",
)

health_current = Table(
    "health_current",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("score", Double),
    Column("band", String(20)),
    Column("breakdown", JSON, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    comment="Each account's current score with its full breakdown, updated as records arrive.",
)

churn_models = Table(
    "churn_models",
    metadata,
    Column("model_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("outcome", String(40), nullable=False),
    Column("horizon_days", Integer, nullable=False),
    Column("trained_at", DateTime, nullable=False),
    Column("train_from", Date, nullable=False),
    Column("train_to", Date, nullable=False),
    Column("data_end", Date, nullable=False),
    Column("health_model", String(300), nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("left_out", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("card", Text, nullable=False),
    Column("artifact", LargeBinary, nullable=False),
    Column("digest", String(64), nullable=False),
    Index("ix_churn_models_name_version", "name", "version", unique=True),
    comment="Trained churn models: each version with its window, inputs, backtest and model card.",
)

trigger_state = Table(
    "trigger_state",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("trigger", String(200), primary_key=True),
    Column("held_since", Date),
    Column("armed", Boolean, nullable=False, default=True),
    Column("last_fired", Date),
    Column("last_day", Date),
    comment="Each trigger's episode on each account: so it fires once per episode, live or daily.",
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=True),
    Column("trigger", String(200), nullable=False),
    Column("account_id", String(200), nullable=False),
    Column("day", Date, nullable=False),
    Column("severity", String(20), nullable=False),
    Column("direction", String(20), nullable=False),
    Column("playbook", String(200)),
    Column("condition", Text, nullable=False),
    Column("values", JSON, nullable=False),
    Column("status", String(20), nullable=False, default="open"),
    Column("raised_at", DateTime, nullable=False),
    Column("triggers_digest", String(64), nullable=False),
    Index("ix_alerts_trigger_account_id_day", "trigger", "account_id", "day", unique=True),
    Index("ix_alerts_status_day", "status", "day"),
    Index("ix_alerts_account_id", "account_id"),
    comment="Alerts raised by triggers, with the values that raised them: the in-app inbox.",
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("delivery_id", Integer, primary_key=True, autoincrement=True),
    Column("route", String(200), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("target", String(500), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(20), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", DateTime, nullable=False),
    Column("next_attempt_at", DateTime),
    Column("sent_at", DateTime),
    Index("ix_deliveries_route_subject", "route", "subject", unique=True),
    Index("ix_deliveries_status", "status"),
    comment="Each alert, digest or play step sent (or being retried) on a route; dead ones stay.",
)

plays = Table(
    "plays",
    metadata,
    Column("play_id", Integer, primary_key=True, autoincrement=True),
    Column("playbook", String(200), nullable=False),
    Column("playbooks_digest", String(64), nullable=False),
    Column("account_id", String(200), nullable=False),
    Column("started_day", Date, nullable=False),
    Column("started_by", String(200), nullable=False),
    Column("alert_id", Integer),
    Column("status", String(20), nullable=False, default="running"),
    Column("ended_day", Date),
    Column("outcome", Text),
    Column("baseline", JSON, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Index("ix_plays_account_id", "account_id"),
    Index("ix_plays_playbook_started_day", "playbook", "started_day"),
    comment="Playbooks started on accounts, by a trigger or by hand, with the signals at the start.",
)

tasks = Table(
    "tasks",
    metadata,
    Column("task_id", Integer, primary_key=True, autoincrement=True),
    Column("play_id", Integer, nullable=False),
    Column("account_id", String(200), nullable=False),
    Column("step", String(200), nullable=False),
    Column("title", String(500), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("owner_role", String(40), nullable=False),
    Column("owner", String(200)),
    Column("persona", String(40)),
    Column("contact_id", String(200)),
    Column("due_day", Date, nullable=False),
    Column("automated", Boolean, nullable=False, default=False),
    Column("content", Text, nullable=False),
    Column("status", String(20), nullable=False, default="open"),
    Column("note", Text),
    Column("done_at", DateTime),
    Index("ix_tasks_play_id_step", "play_id", "step", unique=True),
    Index("ix_tasks_status_due_day", "status", "due_day"),
    Index("ix_tasks_owner", "owner"),
    comment="The steps of running plays: human tasks with owners and due dates, automated sends.",
)
