"""Plays and tasks as people see them: lists, and a task completed or skipped by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select, update

from tenure.plays.running import FINISHED, PlayError
from tenure.store import Store
from tenure.store.tables import plays, tasks

OPEN_TO_PEOPLE = ("pending", "open")  # what a person may complete or skip


def list_plays(
    store: Store, status: str | None = None, account: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Plays newest first (without their baselines), each with how many of its tasks are in
    each status."""
    columns = [c for c in plays.c if c.name != "baseline"]  # tenure.plays.running.play_with_tasks
    query = (select(*columns).order_by(plays.c.started_day.desc(), plays.c.play_id.desc())
             .limit(limit))  # fmt: skip
    if status is not None:
        query = query.where(plays.c.status == status)
    if account is not None:
        query = query.where(plays.c.account_id == account)
    with store.engine.connect() as connection:
        found = [dict(r._mapping) for r in connection.execute(query)]
        ids = [p["play_id"] for p in found]
        counts: dict[int, dict[str, int]] = {}
        if ids:
            tally = (select(tasks.c.play_id, tasks.c.status, func.count())
                     .where(tasks.c.play_id.in_(ids))
                     .group_by(tasks.c.play_id, tasks.c.status))  # fmt: skip
            for play_id, task_status, n in connection.execute(tally):
                counts.setdefault(play_id, {})[task_status] = int(n)
    return [p | {"tasks": counts.get(p["play_id"], {})} for p in found]


def list_tasks(
    store: Store, *, owner: str | None = None, status: str | None = "open",
    due_by: date | None = None, account: str | None = None, play_id: int | None = None,
    role: str | None = None, limit: int = 500,
) -> list[dict[str, Any]]:  # fmt: skip
    """Tasks by due day (``status`` None: every status), each with its playbook's name."""
    query = (select(tasks, plays.c.playbook).join(plays, plays.c.play_id == tasks.c.play_id)
             .order_by(tasks.c.due_day, tasks.c.task_id).limit(limit))  # fmt: skip
    for column, value in ((tasks.c.owner, owner), (tasks.c.status, status),
                          (tasks.c.account_id, account), (tasks.c.play_id, play_id),
                          (tasks.c.owner_role, role)):  # fmt: skip
        if value is not None:
            query = query.where(column == value)
    if due_by is not None:
        query = query.where(tasks.c.due_day <= due_by)
    with store.engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(query)]


def complete(store: Store, task_id: int, note: str | None = None) -> dict[str, Any]:
    """Mark an open (or not yet due) task done; PlayError if there is none or it is finished."""
    return _finish(store, task_id, "done", note)


def skip(store: Store, task_id: int, reason: str) -> dict[str, Any]:
    """Skip an open (or not yet due) task, saying why; PlayError as :func:`complete`."""
    if not reason.strip():
        raise PlayError("say why the task is skipped (--reason)")
    return _finish(store, task_id, "skipped", reason.strip())


def _finish(store: Store, task_id: int, status: str, note: str | None) -> dict[str, Any]:
    changes: dict[str, Any] = {"status": status, "done_at": datetime.now(UTC).replace(tzinfo=None)}
    if note:
        changes["note"] = note
    with store.transaction() as connection:
        row = connection.execute(select(tasks).where(tasks.c.task_id == task_id)).first()
        if row is None:
            raise PlayError(f"no task {task_id}")
        if row.status not in OPEN_TO_PEOPLE:
            when = f" on {row.done_at:%Y-%m-%d}" if row.done_at and row.status in FINISHED else ""
            raise PlayError(f"task {task_id} is already {row.status}{when}")
        connection.execute(
            update(tasks).where(tasks.c.task_id == task_id, tasks.c.status == row.status)
            .values(**changes)
        )  # fmt: skip
        found = connection.execute(select(tasks).where(tasks.c.task_id == task_id)).one()
    return dict(found._mapping)
