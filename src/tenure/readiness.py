"""Data readiness: the maturity level (L0 to L5) that the connected data supports, object by object.

For each customer-success object (account, health score, usage event, support ticket, onboarding,
expansion opportunity) the assessment measures what the store holds (volume, coverage of accounts,
completeness of the fields that matter, links, freshness, consistency), climbs a ladder of explicit
requirements, one rung per level, and names the capabilities the data cannot support yet and why.
The levels follow the CMC maturity levels (L0 nothing, L1 scattered, L2 recorded, L3 connected,
L4 formal, L5 real-time); docs/readiness.md lists every requirement and threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Select, func, select, union

from tenure.quality import OBSERVED_FIELD, Finding, run_checks
from tenure.record import KINDS
from tenure.store import KIND_TABLES, Store

Unit = Literal["share", "count", "days", "flag", "text"]
Value = bool | int | float | str | None

LEVELS = ("none", "scattered", "recorded", "connected", "formal", "real-time")

# Thresholds of the level rules (docs/readiness.md explains each one).
SPARSE = 0.2  # coverage below this is scattered (L1)
RECORDED_FIELDS = 0.5  # mean completeness of the fields that matter for L2
CONNECTED = 0.8  # coverage of accounts for L3
SOURCE_CONNECTED = 0.5  # a source counts as connected to accounts from this coverage on
SOURCES_NEEDED = 3  # sources connected for a connected account (L3)
LINKED = 0.95  # records linked to an existing account for L3
FORMAL_FIELDS = 0.9  # mean completeness for L4
CONSISTENT = 0.95  # share of records `tenure check` has nothing against, for L4
LINKED_FORMAL = 0.99  # records linked to an existing account for L4
FRESH_DAYS = 1  # newest record at most this old for L5
SCORES_CURRENT_DAYS = 7  # health scores at most this old for L3
TICKETS_SPARSE = 0.1  # not every account files tickets: support has its own coverage bar
TICKETS_CONNECTED = 0.5
CAPABLE = 0.8  # a signal that needs a field needs it on this share of records

# The fields that matter, per kind: completeness is the mean of their filled shares.
FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "accounts": {
        "segment": ("segment",),
        "owner": ("owner",),
        "created_at": ("created_at",),
        "lifecycle_stage": ("lifecycle_stage",),
    },
    "events": {"user": ("user_id", "user_email"), "feature": ("feature",)},
    "tickets": {"priority": ("priority",), "resolved_at": ("resolved_at",), "csat": ("csat",)},
    "milestones": {"planned_date": ("planned_date",), "achieved_date": ("achieved_date",)},
    "opportunities": {"amount": ("amount",), "product": ("product",)},
}
# Fields measured for a capability, outside completeness.
EXTRA_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "tickets": {"text": ("subject", "body")},
    "subscriptions": {"seats": ("seats",)},
}
# References whose share of records naming an existing parent is measured.
LINKS: dict[str, tuple[str, ...]] = {
    "events": ("account_id", "subscription_id"),
    "tickets": ("account_id", "contact_id"),
    "milestones": ("account_id",),
    "opportunities": ("account_id",),
}
# Sources an account is connected to, and the kinds that carry them.
SOURCES: dict[str, tuple[str, ...]] = {
    "usage": ("events",),
    "billing": ("subscriptions", "invoices"),
    "support": ("tickets",),
    "voice": ("responses",),
    "milestones": ("milestones",),
}
COVERED: dict[str, tuple[str, ...]] = SOURCES | {
    "contacts": ("contacts",),
    "opportunities": ("opportunities",),
}
NOT_STORED = {"duplicate_keys"}  # findings about rejected rows, not about stored records


@dataclass(frozen=True)
class HealthFacts:
    """What the health engine knows about the scores in force."""

    model_version: str | None  # the health model in force, None when none registered
    accounts_scored: int
    latest_as_of: date | None
    live: bool  # scores are updated as events arrive
    backtested: bool  # the model has been backtested against outcomes


@dataclass(frozen=True)
class Evidence:
    """One named measurement: its value (a share 0 to 1, a count, days, a flag) and its detail."""

    name: str
    value: Value
    detail: str
    unit: Unit = "share"

    @property
    def shown(self) -> str:
        """The value as a person reads it (12.4%, 3 days, yes)."""
        return _show(self.value, self.unit)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "detail": self.detail}


@dataclass(frozen=True)
class Blocked:
    """A capability the data cannot support yet, and why."""

    capability: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"capability": self.capability, "reason": self.reason}


@dataclass(frozen=True)
class ObjectReadiness:
    """One object's level, the evidence behind it, what is blocked and the next step up."""

    object: str
    level: int
    evidence: list[Evidence]
    blocked: list[Blocked]
    next_step: str
    holding_back: str  # the first unmet requirement of the next level, with its value

    @property
    def label(self) -> str:
        return f"L{self.level} {LEVELS[self.level]}"

    @property
    def summary(self) -> str:
        """One line for a table: level, what holds it back, how many capabilities are blocked."""
        return f"{self.label} · {self.holding_back} · {len(self.blocked)} blocked"

    def measure(self, name: str) -> Evidence:
        """The evidence called ``name``; KeyError when this object has none."""
        return _by_name(self.evidence)[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "level": self.level,
            "label": self.label,
            "evidence": [e.to_dict() for e in self.evidence],
            "blocked": [b.to_dict() for b in self.blocked],
            "next_step": self.next_step,
        }


@dataclass(frozen=True)
class Readiness:
    """The readiness of every object as of one day."""

    as_of: date
    objects: list[ObjectReadiness]

    def object(self, name: str) -> ObjectReadiness:
        """The assessment of ``name`` (customer_account, health_score...); KeyError otherwise."""
        found = {o.object: o for o in self.objects}
        return found[name]

    def levels(self) -> dict[str, int]:
        return {o.object: o.level for o in self.objects}

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "objects": [o.to_dict() for o in self.objects]}


Measures = dict[str, Evidence]


def _by_name(evidence: Sequence[Evidence]) -> Measures:
    return {e.name: e for e in evidence}


def _number(measures: Measures, name: str) -> float | None:
    value = measures[name].value if name in measures else None
    return None if value is None or isinstance(value, str) else float(value)


def _show(value: Value, unit: Unit) -> str:
    if value is None:
        return "none"
    if unit == "flag" or isinstance(value, bool):
        return "yes" if value else "no"
    if unit == "share" and isinstance(value, float | int):
        return f"{value:.1%}"
    if unit == "days":
        return f"{value} day" + ("" if value == 1 else "s")
    return f"{value:,}" if isinstance(value, int | float) else str(value)


# ----------------------------------------------------------------------------------------------
# The level rules: each rung is a few requirements, each a small function of the evidence.


@dataclass(frozen=True)
class Requirement:
    """One condition of a level: ``test`` over the evidence, ``fix`` says what to do when unmet."""

    measure: str
    text: str
    test: Callable[[Measures], bool]
    fix: str


def at_least(measure: str, minimum: float, fix: str, unit: Unit = "share") -> Requirement:
    def test(measures: Measures) -> bool:
        value = _number(measures, measure)
        return value is not None and value >= minimum

    return Requirement(measure, f"{measure} >= {_threshold(minimum, unit)}", test, fix)


def at_most(measure: str, maximum: float, fix: str, unit: Unit = "days") -> Requirement:
    def test(measures: Measures) -> bool:
        value = _number(measures, measure)
        return value is not None and value <= maximum

    return Requirement(measure, f"{measure} <= {_threshold(maximum, unit)}", test, fix)


def is_set(measure: str, fix: str) -> Requirement:
    def test(measures: Measures) -> bool:
        return measure in measures and bool(measures[measure].value)

    return Requirement(measure, f"{measure} set", test, fix)


def _threshold(value: float, unit: Unit) -> str:
    if unit == "share":
        return f"{value:.0%}"
    return _show(int(value) if float(value).is_integer() else value, unit)


def _health_exists(measures: Measures) -> bool:
    scored = _number(measures, "accounts_scored")
    return bool(measures["health_model"].value) or bool(scored)


Ladder = tuple[tuple[Requirement, ...], ...]  # requirements of L1, L2, L3, L4, L5

FIX_FIELDS = "Fill in the fields that matter ({detail})"
FIX_CHECK = "Fix the inconsistencies ({detail})"
FIX_MATCHES = "Resolve the records held for review with `tenure matches`"
LIVE: tuple[Requirement, ...] = (
    at_most("freshness_days", FRESH_DAYS, "Send records as they happen (webhook or hourly import)"),
    is_set("live_scoring", "Turn on live scoring so that each event updates its account's score"),
)
FORMAL: tuple[Requirement, ...] = (
    at_least("completeness", FORMAL_FIELDS, FIX_FIELDS),
    at_least("consistency", CONSISTENT, FIX_CHECK),
)
FORMAL_LINKED = (*FORMAL, at_least("linked_account", LINKED_FORMAL, FIX_MATCHES))
ACCOUNT_CONNECTED: tuple[Requirement, ...] = (
    at_least("coverage.usage", CONNECTED, "Connect product usage events to your accounts"),
    at_least("coverage.billing", CONNECTED, "Import subscriptions or invoices for every account"),
    at_least(
        "sources_connected",
        SOURCES_NEEDED,
        "Connect three of usage, billing, support, NPS and milestones to most accounts",
        unit="count",
    ),
)


def _exists(what: str, command: str) -> tuple[Requirement, ...]:
    return (at_least("volume", 1, f"Import {what} with `{command}`", unit="count"),)


def _recorded(coverage: float, what: str) -> tuple[Requirement, ...]:
    return (
        at_least("coverage", coverage, f"Import {what} for more of your accounts"),
        at_least("completeness", RECORDED_FIELDS, FIX_FIELDS),
    )


def _connected(coverage: float, what: str) -> tuple[Requirement, ...]:
    return (
        at_least("coverage", coverage, f"Import {what} for more of your accounts"),
        at_least("linked_account", LINKED, FIX_MATCHES),
    )


LADDERS: dict[str, Ladder] = {
    "customer_account": (
        _exists("your accounts", "tenure import accounts"),
        (at_least("completeness", RECORDED_FIELDS, FIX_FIELDS),),
        ACCOUNT_CONNECTED,
        FORMAL,
        LIVE,
    ),
    "health_score": (
        (
            Requirement(
                "accounts_scored",
                "health_model set or accounts_scored > 0",
                _health_exists,
                "Run `tenure score`",
            ),
        ),
        (is_set("health_model", "Register a health model (Tenure ships a default one)"),),
        (
            at_least("accounts_scored", CONNECTED, "Run `tenure score` to score every account"),
            at_most("score_age_days", SCORES_CURRENT_DAYS, "Rescore daily with `tenure score`"),
            *ACCOUNT_CONNECTED,
        ),
        (
            at_least("outcomes", 1, "Import renewal and churn outcomes", unit="count"),
            is_set("backtested", "Backtest the health score against outcomes: `tenure train`"),
        ),
        LIVE,
    ),
    "usage_event": (
        _exists("product usage", "tenure import events"),
        _recorded(SPARSE, "usage events"),
        _connected(CONNECTED, "usage events"),
        FORMAL_LINKED,
        LIVE,
    ),
    "support_ticket": (
        _exists("support tickets", "tenure import tickets"),
        _recorded(TICKETS_SPARSE, "tickets"),
        _connected(TICKETS_CONNECTED, "tickets"),
        FORMAL_LINKED,
        LIVE,
    ),
    "onboarding": (
        _exists("onboarding milestones", "tenure import milestones"),
        _recorded(SPARSE, "onboarding milestones"),
        _connected(CONNECTED, "onboarding milestones"),
        FORMAL_LINKED,
        LIVE,
    ),
    "expansion_opportunity": (
        _exists("expansion opportunities", "tenure import opportunities"),
        (at_least("completeness", RECORDED_FIELDS, FIX_FIELDS),),
        (
            at_least("linked_account", LINKED, FIX_MATCHES),
            at_least("subscriptions_with_seats", CONNECTED, "Import the seats of subscriptions"),
            at_least("coverage.usage", CONNECTED, "Connect product usage events to your accounts"),
        ),
        FORMAL_LINKED,
        LIVE,
    ),
}


def climb(ladder: Ladder, measures: Measures) -> tuple[int, Requirement | None]:
    """The highest level whose requirements, and those of every level below, are all met; and
    the first unmet requirement of the next level (None at L5)."""
    for level, requirements in enumerate(ladder):
        for requirement in requirements:
            if not requirement.test(measures):
                return level, requirement
    return len(ladder), None


def _next_step(level: int, unmet: Requirement | None, measures: Measures) -> tuple[str, str]:
    """The next step as a sentence, and the unmet requirement as a short phrase."""
    if unmet is None:
        return "Nothing left to connect: keep records flowing and scores live.", "at the top"
    now = measures[unmet.measure].shown if unmet.measure in measures else "none"
    short = f"L{level + 1} needs {unmet.text}, now {now}"
    detail = measures[unmet.measure].detail if unmet.measure in measures else ""
    return f"{unmet.fix.format(detail=detail)}; {short}.", short


# ----------------------------------------------------------------------------------------------
# Capabilities: what each object's data must carry for a capability to work.


@dataclass(frozen=True)
class Need:
    """A capability needs ``measure`` at ``minimum`` or more; ``phrase`` says what is measured.

    Unmet, the reason reads "no <phrase>" (or ``none`` when given) at zero, else
    "only <value> of <phrase>".
    """

    measure: str
    minimum: float
    phrase: str
    none: str = ""

    def reason(self, measures: Measures) -> str | None:
        value = _number(measures, self.measure)
        if value is not None and value >= self.minimum:
            return None
        if not value:
            return self.none or f"no {self.phrase}"
        return f"only {measures[self.measure].shown} of {self.phrase}"


Capability = tuple[str, tuple[Need, ...]]


def can(name: str, *needs: Need) -> Capability:
    return name, needs


OUTCOMES = Need("outcomes", 1, "outcomes recorded")
USAGE = Need("coverage.usage", CAPABLE, "accounts have usage events")
SEATS = Need("subscriptions_with_seats", CAPABLE, "subscriptions carry seats")
USERS = Need("completeness.user", CAPABLE, "usage events name a user")
TICKETS = Need("volume", 1, "tickets recorded")
MILESTONES = Need("volume", 1, "milestones recorded")
OPPORTUNITIES = Need("volume", 1, "opportunities recorded")
SCORES = Need(
    "accounts_scored",
    CONNECTED,
    "accounts have a health score",
    none="no health scores computed: run `tenure score`",
)
LIVE_SCORES = Need("live_scoring", 1, "", none="scores are not updated as events arrive")

CAPABILITIES: dict[str, tuple[Capability, ...]] = {
    "customer_account": (
        can("churn prediction", OUTCOMES, USAGE),
        can(
            "segmentation by tier",
            Need("completeness.segment", RECORDED_FIELDS, "accounts carry a segment"),
        ),
        can(
            "book of business by CSM",
            Need("completeness.owner", RECORDED_FIELDS, "accounts have an owner"),
        ),
        can(
            "stakeholder mapping",
            Need("coverage.contacts", SOURCE_CONNECTED, "accounts have contacts"),
        ),
    ),
    "health_score": (
        can("health scoring", SCORES),
        can("health model backtesting", OUTCOMES),
        can("live health updates", LIVE_SCORES),
        can("NPS in the health score", Need("coverage.voice", SPARSE, "accounts answered NPS")),
    ),
    "usage_event": (
        can("silent-churn detection", Need("coverage", CONNECTED, "accounts have usage events")),
        can("active users", USERS),
        can("seat utilisation", SEATS, USERS),
        can(
            "feature breadth and depth",
            Need("completeness.feature", CAPABLE, "events name a feature"),
        ),
    ),
    "support_ticket": (
        can("ticket-spike detection", TICKETS),
        can(
            "P1 alerts", TICKETS, Need("completeness.priority", CAPABLE, "tickets carry a priority")
        ),
        can(
            "resolution times",
            TICKETS,
            Need("completeness.resolved_at", SPARSE, "tickets resolved"),
        ),
        can(
            "CSAT trend", TICKETS, Need("completeness.csat", SPARSE, "tickets carry a CSAT rating")
        ),
        can("ticket sentiment", TICKETS, Need("with_text", RECORDED_FIELDS, "tickets carry text")),
        can(
            "requester analysis",
            TICKETS,
            Need("linked_contact", RECORDED_FIELDS, "tickets name a contact"),
        ),
    ),
    "onboarding": (
        can("onboarding progress", MILESTONES),
        can(
            "days behind plan",
            MILESTONES,
            Need("completeness.planned_date", CAPABLE, "milestones planned"),
        ),
        can(
            "time to first value",
            MILESTONES,
            Need("completeness.achieved_date", SPARSE, "milestones achieved"),
        ),
    ),
    "expansion_opportunity": (
        can("seat-headroom signal", SEATS),
        can("feature-broadening signal", USAGE),
        can("expansion pipeline", OPPORTUNITIES),
        can(
            "pipeline value",
            OPPORTUNITIES,
            Need("completeness.amount", CAPABLE, "opportunities carry an amount"),
        ),
    ),
}


def blocked(capabilities: Sequence[Capability], measures: Measures) -> list[Blocked]:
    """Each capability with an unmet need, with the reason of its first unmet need."""
    found = []
    for name, needs in capabilities:
        reasons = [r for r in (need.reason(measures) for need in needs) if r is not None]
        if reasons:
            found.append(Blocked(name, reasons[0]))
    return found


# ----------------------------------------------------------------------------------------------
# Measuring the store.


@dataclass(frozen=True)
class KindStats:
    """What one kind's table holds: records, newest date, filled fields, links to parents."""

    kind: str
    volume: int
    newest: date | None
    filled: dict[str, int]
    linked: dict[str, int]


@dataclass(frozen=True)
class Snapshot:
    """Everything the level rules look at, measured once."""

    as_of: date
    accounts: int
    kinds: dict[str, KindStats]
    covered: dict[str, int]  # source (usage, billing...) -> accounts with at least one record
    findings: dict[str, dict[str, int]]  # kind -> `tenure check` code -> count
    health: HealthFacts | None


def _filled(table: Any, columns: tuple[str, ...]) -> Any:
    cells = [table.c[name] for name in columns]
    return func.count(cells[0] if len(cells) == 1 else func.coalesce(*cells))


def _as_date(value: Any) -> date | None:
    if value is None or type(value) is date:
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])


def _kind_stats(connection: Connection, kind: str) -> KindStats:
    table = KIND_TABLES[kind]
    groups = FIELDS.get(kind, {}) | EXTRA_FIELDS.get(kind, {})
    dated = table.c[OBSERVED_FIELD.get(kind, KINDS[kind].time_field)]
    row = connection.execute(
        select(func.count(), func.max(dated), *(_filled(table, c) for c in groups.values()))
    ).one()
    linked = {name: _linked(connection, kind, name) for name in LINKS.get(kind, ())}
    filled = {name: int(n) for name, n in zip(groups, row[2:], strict=True)}
    return KindStats(kind, int(row[0]), _as_date(row[1]), filled, linked)


def _linked(connection: Connection, kind: str, reference: str) -> int:
    """Records whose ``reference`` names a record that exists."""
    table, parent = KIND_TABLES[kind], KINDS[kind].references[reference]
    key = KIND_TABLES[parent].c[KINDS[parent].key]
    query = select(func.count()).where(table.c[reference].in_(select(key)))
    return int(connection.execute(query).scalar_one())


def _covered(connection: Connection, kinds: tuple[str, ...]) -> int:
    """Accounts with at least one record of any of ``kinds``."""
    named: list[Select[Any]] = [select(KIND_TABLES[k].c.account_id).distinct() for k in kinds]
    ids = (union(*named) if len(named) > 1 else named[0]).subquery()
    known = select(KIND_TABLES["accounts"].c.account_id)
    query = select(func.count()).select_from(ids).where(ids.c.account_id.in_(known))
    return int(connection.execute(query).scalar_one())


def _findings(found: list[Finding]) -> dict[str, dict[str, int]]:
    by_kind: dict[str, dict[str, int]] = {}
    for finding in found:
        if finding.code not in NOT_STORED:
            by_kind.setdefault(finding.kind, {})[finding.code] = finding.count
    return by_kind


def measure(store: Store, as_of: date, health: HealthFacts | None) -> Snapshot:
    """Measure the store once for every object's rules."""
    with store.engine.connect() as connection:
        kinds = {kind: _kind_stats(connection, kind) for kind in KINDS}
        covered = {name: _covered(connection, c) for name, c in COVERED.items()}
    findings = _findings(run_checks(store, today=as_of))
    return Snapshot(as_of, kinds["accounts"].volume, kinds, covered, findings, health)


# ----------------------------------------------------------------------------------------------
# Evidence per object.


def _share(name: str, part: int, whole: int, what: str) -> Evidence:
    value = round(part / whole, 4) if whole else None
    return Evidence(name, value, f"{part:,} of {whole:,} {what}")


def _count(name: str, value: int, detail: str) -> Evidence:
    return Evidence(name, value, detail, "count")


def _completeness(stats: KindStats, noun: str) -> list[Evidence]:
    fields = [
        _share(
            f"completeness.{name}",
            stats.filled[name],
            stats.volume,
            f"{noun} have {' or '.join(cols)}",
        )
        for name, cols in FIELDS[stats.kind].items()
    ]
    shares = [float(e.value) for e in fields if isinstance(e.value, float)]
    mean = round(sum(shares) / len(shares), 4) if shares else None
    detail = ", ".join(f"{e.name.split('.', 1)[1]} {e.shown}" for e in fields)
    return [Evidence("completeness", mean, f"mean of {detail}"), *fields]


def _freshness(snap: Snapshot, kinds: Sequence[str]) -> Evidence:
    dated = [(s.newest, s.kind) for s in (snap.kinds[k] for k in kinds) if s.newest is not None]
    if not dated:
        return Evidence("freshness_days", None, "no dated records", "days")
    newest, kind = max(dated)
    age = max(0, (snap.as_of - newest).days)
    detail = f"newest record ({kind}) dated {newest.isoformat()}, as of {snap.as_of.isoformat()}"
    return Evidence("freshness_days", age, detail, "days")


def _consistency(snap: Snapshot, kind: str) -> Evidence:
    volume, found = snap.kinds[kind].volume, snap.findings.get(kind, {})
    if not volume:
        return Evidence("consistency", None, "no records to check")
    flagged = sum(found.values())
    listed = ", ".join(f"{code} {n:,}" for code, n in sorted(found.items())) or "nothing"
    detail = f"`tenure check` reports {listed} over {volume:,} {kind}"
    return Evidence("consistency", round(1 - min(1.0, flagged / volume), 4), detail)


def _live(snap: Snapshot) -> Evidence:
    live = snap.health is not None and snap.health.live
    detail = "scores update as events arrive" if live else "scores are not updated as events arrive"
    return Evidence("live_scoring", live, detail, "flag")


def _source(snap: Snapshot, source: str) -> Evidence:
    what = f"accounts have {' or '.join(COVERED[source])}"
    return _share(f"coverage.{source}", snap.covered[source], snap.accounts, what)


def _sources_connected(snap: Snapshot) -> Evidence:
    names = [
        s for s in SOURCES if snap.accounts and snap.covered[s] / snap.accounts >= SOURCE_CONNECTED
    ]
    bar = f"each on >= {SOURCE_CONNECTED:.0%} of accounts"
    detail = f"{', '.join(names) or 'none'} of {', '.join(SOURCES)} ({bar})"
    return _count("sources_connected", len(names), detail)


def _seats(snap: Snapshot) -> Evidence:
    subscriptions = snap.kinds["subscriptions"]
    return _share(
        "subscriptions_with_seats",
        subscriptions.filled["seats"],
        subscriptions.volume,
        "subscriptions carry seats",
    )


def _outcomes(snap: Snapshot) -> Evidence:
    return _count(
        "outcomes", snap.kinds["outcomes"].volume, "renewal, expansion and churn outcomes recorded"
    )


def _record_evidence(snap: Snapshot, kind: str, noun: str, source: str) -> list[Evidence]:
    """What every object backed by one kind shows: volume, coverage, fields, links, age, checks."""
    stats = snap.kinds[kind]
    links = [
        _share(
            f"linked_{ref.removesuffix('_id')}",
            stats.linked[ref],
            stats.volume,
            f"{noun} name an existing {ref.removesuffix('_id')}",
        )
        for ref in LINKS[kind]
    ]
    return [
        _count("volume", stats.volume, f"{noun} stored"),
        _share("coverage", snap.covered[source], snap.accounts, f"accounts have {noun}"),
        *_completeness(stats, noun),
        *links,
        _freshness(snap, (kind,)),
        _consistency(snap, kind),
        _live(snap),
    ]


def account_evidence(snap: Snapshot) -> list[Evidence]:
    accounts = snap.kinds["accounts"]
    return [
        _count("volume", accounts.volume, "accounts stored"),
        *_completeness(accounts, "accounts"),
        *(_source(snap, source) for source in SOURCES),
        _sources_connected(snap),
        _source(snap, "contacts"),
        _outcomes(snap),
        _freshness(snap, [k for k in KINDS if k != "accounts"]),
        _consistency(snap, "accounts"),
        _live(snap),
    ]


def health_evidence(snap: Snapshot) -> list[Evidence]:
    health = snap.health
    model = health.model_version if health else None
    scored = health.accounts_scored if health else 0
    latest = health.latest_as_of if health else None
    age = None if latest is None else max(0, (snap.as_of - latest).days)
    backtested = health is not None and health.backtested
    return [
        Evidence(
            "health_model",
            model,
            "the health model in force" if model else "no health model registered",
            "text",
        ),
        _share("accounts_scored", scored, snap.accounts, "accounts have a health score"),
        Evidence(
            "score_age_days",
            age,
            f"latest scores as of {latest}" if latest else "no scores",
            "days",
        ),
        *(_source(snap, source) for source in ("usage", "billing", "voice")),
        _sources_connected(snap),
        _outcomes(snap),
        Evidence(
            "backtested",
            backtested,
            "backtested against outcomes" if backtested else "never backtested",
            "flag",
        ),
        _freshness(snap, ("events",)),
        _live(snap),
    ]


def usage_evidence(snap: Snapshot) -> list[Evidence]:
    return [*_record_evidence(snap, "events", "usage events", "usage"), _seats(snap)]


def ticket_evidence(snap: Snapshot) -> list[Evidence]:
    tickets = snap.kinds["tickets"]
    text = _share(
        "with_text", tickets.filled["text"], tickets.volume, "tickets have subject or body"
    )
    return [*_record_evidence(snap, "tickets", "tickets", "support"), text]


def onboarding_evidence(snap: Snapshot) -> list[Evidence]:
    return _record_evidence(snap, "milestones", "milestones", "milestones")


def expansion_evidence(snap: Snapshot) -> list[Evidence]:
    own = _record_evidence(snap, "opportunities", "opportunities", "opportunities")
    return [*own, _seats(snap), _source(snap, "usage")]


EVIDENCE: dict[str, Callable[[Snapshot], list[Evidence]]] = {
    "customer_account": account_evidence,
    "health_score": health_evidence,
    "usage_event": usage_evidence,
    "support_ticket": ticket_evidence,
    "onboarding": onboarding_evidence,
    "expansion_opportunity": expansion_evidence,
}
OBJECTS = tuple(EVIDENCE)


def assess_object(name: str, snap: Snapshot) -> ObjectReadiness:
    """One object's level, evidence, blocked capabilities and next step."""
    evidence = EVIDENCE[name](snap)
    measures = _by_name(evidence)
    level, unmet = climb(LADDERS[name], measures)
    step, short = _next_step(level, unmet, measures)
    return ObjectReadiness(
        name, level, evidence, blocked(CAPABILITIES[name], measures), step, short
    )


def assess(store: Store, as_of: date | None = None, health: HealthFacts | None = None) -> Readiness:
    """The readiness of every object in ``store`` as of ``as_of`` (default: today, UTC).

    ``health`` is what the health engine knows about its scores; None when no score was computed.
    """
    day = as_of or datetime.now(UTC).date()
    snap = measure(store, day, health)
    return Readiness(day, [assess_object(name, snap) for name in OBJECTS])
