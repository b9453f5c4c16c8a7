"""Scoring the portfolio: register models, compute histories in batch, keep scores current live.

- :func:`score_portfolio` recomputes every account's daily history with the batch engine.
- :class:`LiveScores` updates the scores of the accounts an import touched, through the
  incremental engine (a few accounts) or the batch engine (many); both give the same numbers.
- :func:`explain_account` and :func:`rescore` recompute signals for the days asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlalchemy import Connection, delete, func, insert, select, update

from tenure.health.explain import Explanation, explain
from tenure.health.model import HealthModel, default_model, parse_model
from tenure.health.score import HealthScore, score
from tenure.readiness import HealthFacts
from tenure.record import KINDS
from tenure.signals import Catalog, Source, catalog
from tenure.signals.incremental import IncrementalEngine
from tenure.signals.sources import fetch
from tenure.store import Store
from tenure.store.tables import churn_models, health_current, health_models, health_scores

if TYPE_CHECKING:
    from tenure.signals.batch import BatchEngine

AS_OF = "as_of"  # the batch engine's column of as-of day numbers
EPOCH = date(1970, 1, 1)
CHUNK_DAYS = 31
LIVE_LIMIT = 50  # above this many accounts an import's scores are refreshed in batch
Progress = Callable[[int, int], None]


def batch_engine(cat: Catalog) -> BatchEngine:
    """The batch engine on DuckDB (loaded on first use: Ibis and DuckDB take a while to import,
    and live scoring of a few accounts does not need them)."""
    from tenure.signals.batch import BatchEngine

    return BatchEngine(cat)


def day_number(day: date) -> int:
    return (day - EPOCH).days


def from_day_number(number: int) -> date:
    return EPOCH + timedelta(days=number)


def today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class RegisteredModel:
    model_id: int
    model: HealthModel

    def catalog(self) -> Catalog:
        return catalog(self.model.key_features)


def register(store: Store, model: HealthModel, activate: bool = True) -> RegisteredModel:
    """Keep the model's text in the store (once per digest); make it the active one."""
    with store.transaction() as connection:
        found = connection.execute(
            select(health_models.c.model_id).where(health_models.c.digest == model.digest)
        ).scalar()
        if found is None:
            found = connection.execute(
                insert(health_models).values(
                    name=model.name,
                    version=model.version,
                    digest=model.digest,
                    text=model.text,
                    registered_at=datetime.now(UTC).replace(tzinfo=None),
                    active=False,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        if activate:
            connection.execute(
                update(health_models).values(active=health_models.c.model_id == found)
            )
    return RegisteredModel(int(found), model)


def active_model(store: Store) -> RegisteredModel:
    """The model in force: the last one activated, or the shipped default (registered now)."""
    with store.engine.connect() as connection:
        row = connection.execute(
            select(health_models.c.model_id, health_models.c.text, health_models.c.name).where(
                health_models.c.active
            )
        ).first()
    if row is None:
        return register(store, default_model())
    return RegisteredModel(row.model_id, parse_model(row.text, f"stored model {row.name}"))


def load_tables(
    store: Store, cat: Catalog, accounts: Sequence[str] | None = None
) -> dict[str, pa.Table]:
    return {source.name: fetch(store, source, accounts) for source in cat.sources()}


def signal_rows(
    store: Store, cat: Catalog, days: Sequence[int], accounts: Sequence[str] | None = None,
    tables: dict[str, pa.Table] | None = None, engine: BatchEngine | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Signals per (account, day) from the batch engine, as dictionaries."""
    tables = tables if tables is not None else load_tables(store, cat, accounts)
    engine = engine or batch_engine(cat)
    return list(engine.compute(tables, days).to_pylist())


def _attributes(tables: dict[str, pa.Table]) -> dict[str, dict[str, Any]]:
    return {row["account_id"]: row for row in tables["accounts"].to_pylist()}


@dataclass
class ScoreRun:
    """What ``tenure score`` did."""

    model: str
    model_id: int
    first_day: date
    last_day: date
    accounts: int = 0
    scores: int = 0
    bands: dict[str, int] = field(default_factory=dict)
    current: list[HealthScore] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(), "accounts": self.accounts,
            "scores": self.scores, "bands": self.bands,
        }  # fmt: skip


def score_portfolio(
    store: Store,
    registered: RegisteredModel,
    as_of: date | None = None,
    history_days: int = 180,
    progress: Progress | None = None,
    write_current: bool = True,
) -> ScoreRun:
    """Every account's daily scores for ``history_days`` up to ``as_of``, and the current ones."""
    last = as_of or today()
    first = last - timedelta(days=history_days - 1)
    cat = registered.catalog()
    tables = load_tables(store, cat)
    attributes = _attributes(tables)
    engine = batch_engine(cat)
    days = list(range(day_number(first), day_number(last) + 1))
    run = ScoreRun(registered.model.label, registered.model_id, first, last)
    history: list[dict[str, Any]] = []
    for start in range(0, len(days), CHUNK_DAYS):  # computed first: writers wait only for the write
        chunk = days[start : start + CHUNK_DAYS]
        rows = signal_rows(store, cat, chunk, tables=tables, engine=engine)
        scores = [_score_row(registered.model, row, attributes) for row in rows]
        history += _history_rows(registered.model_id, scores)
        run.scores += len(scores)
        run.current = [s for s in scores if s.as_of == last] or run.current
        if progress:
            progress(min(start + CHUNK_DAYS, len(days)), len(days))
    with store.transaction() as connection:
        connection.execute(delete(health_scores).where(
            (health_scores.c.model_id == registered.model_id)
            & (health_scores.c.day >= first) & (health_scores.c.day <= last)
        ))  # fmt: skip
        if history:
            connection.execute(insert(health_scores), history)
        if write_current:
            _write_current(connection, registered.model_id, run.current)
    run.accounts = len(run.current)
    for current in run.current:
        band = current.band or "not scored"
        run.bands[band] = run.bands.get(band, 0) + 1
    return run


def _score_row(
    model: HealthModel, row: dict[str, Any], attributes: dict[str, dict[str, Any]]
) -> HealthScore:
    account = row["account_id"]
    return score(model, account, from_day_number(row[AS_OF]), row, attributes.get(account, {}))


def _history_rows(model_id: int, scores: Iterable[HealthScore]) -> list[dict[str, Any]]:
    return [
        {"account_id": s.account_id, "day": s.as_of, "model_id": model_id, "score": s.score,
         "band": s.band, "variant": s.variant}
        for s in scores
    ]  # fmt: skip


def _write_current(connection: Connection, model_id: int, scores: Iterable[HealthScore]) -> None:
    """Replace each account's current score, unless the stored one is of a later day."""
    now = datetime.now(UTC).replace(tzinfo=None)
    newer = dict(
        connection.execute(select(health_current.c.account_id, health_current.c.as_of)).all()
    )
    for s in scores:
        if newer.get(s.account_id) is not None and newer[s.account_id] > s.as_of:
            continue
        connection.execute(
            delete(health_current).where(health_current.c.account_id == s.account_id)
        )
        connection.execute(
            insert(health_current).values(
                account_id=s.account_id,
                model_id=model_id,
                as_of=s.as_of,
                score=s.score,
                band=s.band,
                breakdown=s.to_dict(),
                updated_at=now,
            )
        )


def account_scores(
    store: Store, registered: RegisteredModel, account: str, days: Sequence[date]
) -> dict[date, HealthScore]:
    """One account's scores as of each of ``days``, recomputed from its records."""
    tables = _account_tables(store, registered.catalog(), account)
    return {s.as_of: s for s in scores_on(store, registered, [account], days, tables)}


def _account_tables(store: Store, cat: Catalog, account: str) -> dict[str, pa.Table]:
    tables = load_tables(store, cat, [account])
    if tables["accounts"].num_rows == 0:
        raise KeyError(f"no account {account!r}")
    return tables


def scores_on(
    store: Store, registered: RegisteredModel, accounts: Sequence[str], days: Sequence[date],
    tables: dict[str, pa.Table] | None = None,
) -> list[HealthScore]:  # fmt: skip
    """Scores of ``accounts`` as of each of ``days``, recomputed from their records."""
    return [s for _, s in signals_and_scores(store, registered, accounts, days, tables)]


def signals_and_scores(
    store: Store, registered: RegisteredModel, accounts: Sequence[str], days: Sequence[date],
    tables: dict[str, pa.Table] | None = None,
) -> list[tuple[dict[str, Any], HealthScore]]:  # fmt: skip
    """:func:`scores_on`, each score with the signal row it was computed from."""
    cat = registered.catalog()
    tables = tables if tables is not None else load_tables(store, cat, accounts)
    attributes = _attributes(tables)
    rows = signal_rows(store, cat, [day_number(d) for d in days], tables=tables)
    return [(row, _score_row(registered.model, row, attributes)) for row in rows]


def account_signals(
    store: Store, registered: RegisteredModel, account: str, day: date
) -> dict[str, Any]:
    """One account's signal values as of ``day`` (the key features of the model in force)."""
    cat = registered.catalog()
    tables = _account_tables(store, cat, account)
    rows = signal_rows(store, cat, [day_number(day)], tables=tables)
    if not rows:
        raise KeyError(f"account {account!r} did not exist on {day}")
    return {k: v for k, v in rows[0].items() if k not in ("account_id", AS_OF)}


def explain_account(
    store: Store, account: str, start: date, end: date, registered: RegisteredModel | None = None
) -> Explanation:
    """Why ``account``'s score changed from ``start`` to ``end``, under the model in force."""
    registered = registered or active_model(store)
    scores = account_scores(store, registered, account, [start, end])
    if start not in scores or end not in scores:
        raise KeyError(f"account {account!r} did not exist on {min(start, end)}")
    for day in (start, end):
        if scores[day].not_scored:
            raise KeyError(f"account {account!r} has no score on {day}: {scores[day].not_scored}")
    return explain(scores[start], scores[end], registered.catalog())


class LiveScores:
    """Keeps current scores as imports land: one incremental engine per running process."""

    def __init__(self, store: Store, registered: RegisteredModel | None = None) -> None:
        self.store = store
        self.registered = registered or active_model(store)
        self.catalog = self.registered.catalog()
        self.engine = IncrementalEngine(self.catalog)
        self.latest: dict[str, tuple[int, dict[str, Any]]] = {}  # account: (day, signals)

    def after_import(
        self, kind: str, import_id: int, accounts: Iterable[str] | None = None
    ) -> list[HealthScore]:
        """Update the scores of every account the import touched (``accounts`` when the caller
        knows them, else read from the store); the new scores."""
        sources = [s for s in self.catalog.sources() if s.kind == kind]
        touched = sorted(accounts) if accounts is not None else self._touched(sources, import_id)
        if not touched:
            return []
        if len(touched) > LIVE_LIMIT:
            return self._refresh_in_batch(touched)
        unknown = [a for a in touched if a not in self.engine.states]
        known = [a for a in touched if a in self.engine.states]
        for source in sources if known else ():
            rows = fetch(self.store, source, known, import_id=import_id).to_pylist()
            self.engine.apply(source.name, rows)
        if unknown:
            for name, table in load_tables(self.store, self.catalog, unknown).items():
                self.engine.apply(name, table.to_pylist())
        return self._write(touched)

    def _touched(self, sources: Sequence[Source], import_id: int) -> list[str]:
        found = {
            r
            for s in sources
            for r in fetch(self.store, s, import_id=import_id)["account_id"].to_pylist()
        }
        return sorted(found)

    def _write(self, accounts: Sequence[str]) -> list[HealthScore]:
        now = day_number(today())
        scores = []
        for account in accounts:
            state = self.engine.state(account)
            as_of = max(now, state.seen_until or now)
            signals = self.engine.evaluate(account, as_of)
            self.latest[account] = (as_of, signals)
            scores.append(score(self.registered.model, account, from_day_number(as_of), signals,
                                state.attributes))  # fmt: skip
        self._store(scores)
        return scores

    def _refresh_in_batch(self, accounts: Sequence[str]) -> list[HealthScore]:
        found = signals_and_scores(self.store, self.registered, accounts, [today()])
        self.latest.update({row["account_id"]: (row[AS_OF], row) for row, _ in found})
        scores = [s for _, s in found]
        self._store(scores)
        return scores

    def _store(self, scores: Sequence[HealthScore]) -> None:
        """Current scores only: the daily history is the end-of-day record `tenure score` keeps."""
        with self.store.transaction() as connection:
            _write_current(connection, self.registered.model_id, scores)


def account_scores_many(
    store: Store, registered: RegisteredModel, accounts: Sequence[str], day: date
) -> list[HealthScore]:
    """The scores of ``accounts`` as of one day (what live scoring must equal)."""
    return scores_on(store, registered, accounts, [day])


def kinds_scored() -> tuple[str, ...]:
    """Record kinds whose arrival can move a score."""
    return tuple(k for k in KINDS if any(s.kind == k for s in catalog().sources()))


@dataclass(frozen=True)
class Ranked:
    account_id: str
    score: float | None
    band: str | None
    as_of: date


def ranked(store: Store) -> list[Ranked]:
    """Current scores, worst first (accounts without a score last)."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(health_current.c.account_id, health_current.c.score,
                   health_current.c.band, health_current.c.as_of)
        ).all()  # fmt: skip
    found = [Ranked(r.account_id, r.score, r.band, r.as_of) for r in rows if r.score is not None]
    return sorted(found, key=lambda r: (r.score or 0.0, r.account_id))


def movers(
    store: Store, registered: RegisteredModel, days: int = 30, count: int = 5
) -> list[Explanation]:
    """The accounts whose stored score moved most over the last ``days`` days, explained."""
    scores = health_scores.c
    with store.engine.connect() as connection:
        last = connection.execute(
            select(func.max(scores.day)).where(scores.model_id == registered.model_id)
        ).scalar()
        if last is None:
            return []
        start = last - timedelta(days=days)
        rows = connection.execute(
            select(scores.account_id, scores.day, scores.score).where(
                (scores.model_id == registered.model_id) & scores.day.in_([start, last])
            )
        ).all()
    pairs: dict[str, dict[date, float]] = {}
    for row in rows:
        if row.score is not None:
            pairs.setdefault(row.account_id, {})[row.day] = row.score
    moved = [(abs(p[last] - p[start]), a) for a, p in pairs.items() if len(p) == 2]
    top = [account for _, account in sorted(moved, reverse=True)[:count]]
    return [explain_account(store, a, start, last, registered) for a in top]


def latest_day(store: Store, registered: RegisteredModel) -> date | None:
    """The last day scored under ``registered``."""
    scores = health_scores.c
    with store.engine.connect() as connection:
        found: date | None = connection.execute(
            select(func.max(scores.day)).where(scores.model_id == registered.model_id)
        ).scalar()
    return found


def health_facts(store: Store) -> HealthFacts:
    """What the readiness report needs to know about scoring."""
    with store.engine.connect() as connection:
        row = connection.execute(
            select(
                func.count(),
                func.max(health_current.c.as_of),
                func.max(health_models.c.name + " v" + health_models.c.version),
            )
            .select_from(health_current)
            .join(health_models, health_models.c.model_id == health_current.c.model_id)
        ).one()
        trained = connection.execute(select(func.count()).select_from(churn_models)).scalar()
    count, latest, name = row
    return HealthFacts(
        model_version=name, accounts_scored=int(count), latest_as_of=latest,
        live=count > 0,  # once scored, every import updates the scores it moves
        backtested=bool(trained),  # `tenure train` backtests the health score beside its models
    )  # fmt: skip


@dataclass
class Comparison:
    """History under another model beside the model in force."""

    current: str
    other: str
    first_day: date
    last_day: date
    accounts: int
    mean_change: float
    band_changes: int
    biggest: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current, "other": self.other,
            "from": self.first_day.isoformat(), "to": self.last_day.isoformat(),
            "accounts": self.accounts, "mean_change": self.mean_change,
            "band_changes": self.band_changes, "biggest": self.biggest,
        }  # fmt: skip


def rescore(
    store: Store, other: HealthModel, start: date, as_of: date | None = None,
    progress: Progress | None = None,
) -> Comparison:  # fmt: skip
    """Score history from ``start`` under ``other`` (stored, not made active) and compare."""
    current = active_model(store)
    trial = register(store, other, activate=False)
    register(store, current.model)  # keep the model in force active
    last = as_of or latest_day(store, current) or today()
    days = (last - start).days + 1
    if days < 1:
        raise ValueError(f"--from {start} is after {last}")
    mine = score_portfolio_quiet(store, current, last, days, progress)
    theirs = score_portfolio_quiet(store, trial, last, days, progress)
    now = {s.account_id: s for s in mine}
    pairs = [(now[s.account_id], s) for s in theirs if s.account_id in now]
    diffs: list[dict[str, Any]] = [
        {"account_id": a.account_id, "current": a.score, "other": b.score,
         "difference": round((b.score or 0) - (a.score or 0), 2)}
        for a, b in pairs if a.score is not None and b.score is not None
    ]  # fmt: skip
    diffs.sort(key=lambda d: -abs(float(d["difference"])))
    mean = sum(float(d["difference"]) for d in diffs) / len(diffs) if diffs else 0.0
    changed = sum(1 for a, b in pairs if a.band != b.band)
    return Comparison(current.model.label, other.label, start, last, len(pairs), round(mean, 2),
                      changed, diffs[:10])  # fmt: skip


def score_portfolio_quiet(
    store: Store, registered: RegisteredModel, last: date, days: int,
    progress: Progress | None = None,
) -> list[HealthScore]:  # fmt: skip
    """History for ``registered`` (current scores untouched when it is not the model in force)."""
    run = score_portfolio(store, registered, last, days, progress, write_current=False)
    return run.current


def refresh_scores(
    store: Store, kind: str, import_id: int | None, accepted: int,
    accounts: Iterable[str] | None = None,
) -> list[HealthScore]:  # fmt: skip
    """After an import: the touched accounts' scores, brought up to date (once scoring began)."""
    return live_scores(store, kind, import_id, accepted, accounts)[0]


def live_scores(
    store: Store, kind: str, import_id: int | None, accepted: int,
    accounts: Iterable[str] | None = None,
) -> tuple[list[HealthScore], LiveScores | None]:  # fmt: skip
    """:func:`refresh_scores`, with the live scorer (its ``latest`` signals) when it ran."""
    if not accepted or import_id is None or kind not in kinds_scored():
        return [], None
    with store.engine.connect() as connection:
        if connection.execute(select(func.count()).select_from(health_current)).scalar() == 0:
            return [], None  # nothing scored yet: `tenure score` computes the first scores
    live = LiveScores(store)
    return live.after_import(kind, import_id, accounts), live
