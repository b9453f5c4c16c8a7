"""A synthetic customer portfolio whose behaviour precedes its outcomes, for demos and benchmarks.

Every account is given a hidden fate at each renewal inside the window (renewed, expanded,
contracted or churned) and the record is drawn so the signals lead the outcome, as in life:
churners go quiet over the 60-120 days before they leave, often lose their champion some weeks
before, open storms of angry P1/P2 tickets, fail payments and score lower on NPS; expanders add
users, reach adoption milestones and open seat-expansion opportunities before they buy more.

Everything derives from ``spec.seed`` through independent, named random streams, so the same
spec writes byte-identical files. Usage events are drawn per account with numpy and written as
Parquet chunks, so memory stays bounded however many accounts are asked for.
"""

from __future__ import annotations

import calendar
import csv
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tenure.record.schema import KINDS

Rng = np.random.Generator
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Cell = str | int | float | bool | date | datetime | None
Row = dict[str, Cell]
Progress = Callable[[int, int], None]
T = TypeVar("T")

KIND_ORDER = tuple(KINDS)  # the record declares its kinds parents first: the import order

# ----------------------------------------------------------------------------- vocabularies


@dataclass(frozen=True)
class _Segment:
    name: str
    share: float
    median_seats: float
    plan: str
    seat_price: float
    churn_risk: float  # chance of churning at each renewal
    expand_chance: float
    billing_weights: tuple[float, float, float]  # monthly, quarterly, annual
    touch_every_days: float
    tickets_per_month: float
    personas: tuple[str, ...]


SEGMENTS = (
    _Segment(
        "enterprise",
        0.15,
        150.0,
        "Enterprise",
        720.0,
        0.07,
        0.25,
        (0.1, 0.2, 0.7),
        12.0,
        2.5,
        (
            "champion",
            "executive_sponsor",
            "economic_buyer",
            "power_user",
            "power_user",
            "end_user",
            "end_user",
            "it",
            "procurement",
            "finance",
            "business_unit_leader",
        ),
    ),
    _Segment(
        "mid-market",
        0.35,
        40.0,
        "Growth",
        480.0,
        0.12,
        0.20,
        (0.4, 0.2, 0.4),
        25.0,
        1.2,
        (
            "champion",
            "executive_sponsor",
            "economic_buyer",
            "power_user",
            "end_user",
            "it",
            "finance",
        ),
    ),
    _Segment(
        "smb",
        0.50,
        10.0,
        "Starter",
        300.0,
        0.19,
        0.12,
        (0.75, 0.1, 0.15),
        50.0,
        0.5,
        ("champion", "executive_sponsor", "power_user", "end_user"),
    ),
)
BILLING_PERIODS = ("monthly", "quarterly", "annual")
USES_PRODUCT = frozenset({"champion", "power_user", "end_user", "it", "business_unit_leader"})

# name, region, UTC offset (hours), weight, country domain
COUNTRIES = (
    ("United States", "NA", -5, 38.0, "com"),
    ("Canada", "NA", -5, 6.0, "ca"),
    ("United Kingdom", "EMEA", 0, 10.0, "co.uk"),
    ("Germany", "EMEA", 1, 8.0, "de"),
    ("France", "EMEA", 1, 5.0, "fr"),
    ("Netherlands", "EMEA", 1, 4.0, "nl"),
    ("Greece", "EMEA", 2, 3.0, "gr"),
    ("United Arab Emirates", "EMEA", 4, 3.0, "ae"),
    ("Japan", "APAC", 9, 6.0, "jp"),
    ("Australia", "APAC", 10, 5.0, "com.au"),
    ("Singapore", "APAC", 8, 4.0, "sg"),
    ("Brazil", "LATAM", -3, 5.0, "com.br"),
    ("Mexico", "LATAM", -6, 3.0, "mx"),
)
NATIVE_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "Japan": (
        ("田中 優子", "yuko.tanaka"),
        ("佐藤 健", "ken.sato"),
        ("鈴木 花子", "hanako.suzuki"),
        ("高橋 翔", "sho.takahashi"),
        ("伊藤 美咲", "misaki.ito"),
        ("渡辺 大輔", "daisuke.watanabe"),
        ("山本 彩", "aya.yamamoto"),
    ),
    "Greece": (
        ("Γιώργος Παπαδόπουλος", "giorgos.papadopoulos"),
        ("Μαρία Κωνσταντίνου", "maria.konstantinou"),
        ("Νίκος Αντωνίου", "nikos.antoniou"),
        ("Ελένη Γεωργίου", "eleni.georgiou"),
        ("Δημήτρης Νικολάου", "dimitris.nikolaou"),
    ),
    "United Arab Emirates": (
        ("محمد الهاشمي", "mohammed.alhashimi"),
        ("فاطمة الزعابي", "fatima.alzaabi"),
        ("أحمد المنصوري", "ahmed.almansoori"),
        ("مريم الكعبي", "maryam.alkaabi"),
        ("خالد الشامسي", "khalid.alshamsi"),
    ),
    "Singapore": (
        ("陈伟明", "weiming.chen"),
        ("林美玲", "meiling.lin"),
        ("黄志强", "zhiqiang.huang"),
    ),
}
FIRST_NAMES = (
    "James",
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Lucas",
    "Sophia",
    "Mateo",
    "Isabella",
    "Ethan",
    "Mia",
    "Jonas",
    "Lena",
    "Hugo",
    "Chloé",
    "Sam",
    "Priya",
    "Arjun",
    "Wei",
    "Daniel",
    "Grace",
    "Tomás",
    "Ana",
    "Felix",
    "Clara",
    "Omar",
    "Sara",
    "Leo",
    "Nora",
    "Ben",
    "Julia",
    "Max",
    "Zoë",
    "Ravi",
    "Anika",
    "Diego",
    "Lucía",
    "Finn",
    "Ingrid",
)
LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Garcia",
    "Miller",
    "Davis",
    "Martínez",
    "Müller",
    "Schmidt",
    "Dubois",
    "Bernard",
    "de Vries",
    "Jansen",
    "Silva",
    "Santos",
    "Oliveira",
    "Hernández",
    "López",
    "Nguyen",
    "Patel",
    "Kim",
    "Chen",
    "Wilson",
    "Taylor",
    "Anderson",
    "Thomas",
    "Moore",
    "Jackson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Hall",
    "Young",
    "King",
    "Wright",
    "Scott",
    "Green",
)
COMPANY_STEMS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Aperture",
    "Nakatomi",
    "Oscorp",
    "Wonka",
    "Monarch",
    "Pied Piper",
    "Massive",
    "Blue Sun",
    "Virtucon",
    "Dunder",
    "Sterling",
    "Bluth",
    "Prestige",
    "Gekko",
    "Axiom",
    "Zenith",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Adatum",
    "Proseware",
    "Woodgrove",
    "Lucerne",
    "Trey",
    "Alpine",
    "Coho",
    "Wingtip",
    "Humongous",
    "Relecloud",
    "Bellows",
    "Halcyon",
    "Juniper",
    "Kestrel",
    "Meridian",
    "Orbital",
    "Quantum",
    "Redwood",
)
COMPANY_TRADES = (
    ("Robotics", "Manufacturing"),
    ("Logistics", "Transportation"),
    ("Health", "Healthcare"),
    ("Analytics", "Software"),
    ("Foods", "Consumer Goods"),
    ("Energy", "Energy"),
    ("Capital", "Financial Services"),
    ("Media", "Media"),
    ("Labs", "Life Sciences"),
    ("Systems", "Software"),
    ("Networks", "Telecom"),
    ("Bank", "Financial Services"),
    ("Insurance", "Insurance"),
    ("Retail", "Retail"),
    ("Pharma", "Life Sciences"),
    ("Motors", "Automotive"),
    ("Software", "Software"),
    ("Consulting", "Professional Services"),
    ("Telecom", "Telecom"),
    ("Learning", "Education"),
    ("Travel", "Travel"),
    ("Realty", "Real Estate"),
    ("Security", "Software"),
    ("Apparel", "Retail"),
    ("Games", "Media"),
    ("Freight", "Transportation"),
)
SUBSIDIARY_SUFFIXES = ("Europe", "Japan", "Labs", "Digital", "Services", "International")
CSMS = (
    "Alex Morgan",
    "Priya Raman",
    "Jordan Lee",
    "Sofia Rossi",
    "Marcus Webb",
    "Hana Kobayashi",
    "Daniel Okafor",
    "Elena Petrova",
    "Tom Becker",
    "Aisha Khan",
)
TITLES = {
    "champion": (
        "Director of Revenue Operations",
        "Head of Customer Operations",
        "Analytics Manager",
    ),
    "executive_sponsor": ("VP Operations", "Chief Operating Officer", "SVP Customer Experience"),
    "economic_buyer": ("CFO", "VP Finance", "Head of Procurement Strategy"),
    "power_user": ("Senior Analyst", "Operations Lead", "Data Specialist"),
    "end_user": ("Account Manager", "Support Specialist", "Sales Representative"),
    "procurement": ("Procurement Manager", "Vendor Manager"),
    "finance": ("Finance Manager", "Accounts Payable Lead"),
    "it": ("IT Administrator", "Systems Engineer"),
    "business_unit_leader": ("General Manager", "Head of Sales"),
}
# feature, is a key feature, popularity, the events it emits
FEATURES = (
    ("dashboards", True, 9.0, ("dashboard_viewed", "dashboard_created")),
    ("reports", True, 8.0, ("report_run", "report_exported")),
    ("workflows", True, 6.0, ("workflow_run", "workflow_edited")),
    ("alerts", True, 5.0, ("alert_triggered", "alert_configured")),
    ("integrations", True, 4.0, ("sync_completed", "integration_connected")),
    ("search", False, 7.0, ("search_performed",)),
    ("data_import", False, 3.0, ("import_started", "import_completed")),
    ("data_export", False, 3.0, ("export_downloaded",)),
    ("comments", False, 4.0, ("comment_added",)),
    ("sharing", False, 3.0, ("item_shared",)),
    ("notebooks", False, 2.0, ("notebook_opened", "notebook_run")),
    ("forecasting", False, 2.0, ("forecast_generated",)),
    ("segments", False, 3.0, ("segment_created", "segment_viewed")),
    ("playbooks", False, 2.0, ("playbook_started",)),
    ("api", False, 3.0, ("api_call",)),
    ("mobile_app", False, 2.0, ("mobile_session",)),
    ("admin_console", False, 1.0, ("user_invited", "role_changed")),
    ("billing_portal", False, 0.5, ("invoice_viewed",)),
    ("templates", False, 2.0, ("template_applied",)),
    ("onboarding_tour", False, 1.0, ("tour_step_completed",)),
)
PLATFORMS = ("web", "desktop", "mobile", "api")
PLATFORM_WEIGHTS = (0.7, 0.12, 0.13, 0.05)
TICKET_TOPICS = (
    "SSO login",
    "CSV export",
    "Salesforce sync",
    "dashboard loading",
    "API rate limits",
    "invoice download",
    "user provisioning",
    "report scheduling",
    "webhook delivery",
    "permissions",
)
TEAMS = (
    "the sales team",
    "our finance analysts",
    "customer support",
    "the operations team",
    "marketing",
)
SUBJECTS = {
    "neutral": (
        "Question about {topic}",
        "How do we configure {topic}?",
        "Request: help with {topic}",
    ),
    "frustrated": (
        "{topic} still not working",
        "Problem with {topic} again",
        "{topic} issue is blocking our team",
    ),
    "angry": (
        "URGENT: {topic} down for the whole team",
        "Unacceptable: {topic} broken for days",
        "Escalation: {topic} failures are costing us customers",
    ),
}
BODIES = {
    "neutral": (
        "Hi team, could you point us to the docs for {topic}? We want to roll it out to "
        "{team}. Thanks!",
        "Hello, {team} asked whether {topic} can be set up per workspace. Is that "
        "possible on our plan?",
    ),
    "frustrated": (
        "We reported the {topic} problem last week and it is happening again. {team} "
        "cannot finish their work. Please prioritise this.",
        "{topic} keeps failing for {team}. The workaround you suggested did not help "
        "and we are losing time every day.",
    ),
    "angry": (
        "This is the third time this month {topic} has failed. {team} has been blocked for "
        "two days and nobody has replied. We are reviewing whether to renew.",
        "Our leadership is asking why we pay for a tool that keeps breaking. {topic} is "
        "down again, support is far too slow, and we need a call today.",
        "Completely unacceptable. {topic} lost data for {team} and we were not even told. "
        "If this is not fixed now we will look at alternatives.",
    ),
}
NPS_COMMENTS = {
    "promoter": (
        "Great product, the dashboards save us hours every week.",
        "Our CSM is fantastic and the team relies on the reports daily.",
        "Easy to roll out and the integrations just work.",
    ),
    "passive": (
        "Solid tool, but reporting could be more flexible.",
        "Works well for us; onboarding new teams took longer than expected.",
        "Good value, a few features still missing.",
    ),
    "detractor": (
        "Too many outages lately and support is slow to respond.",
        "We struggle to get the team to use it; not sure it is worth the price.",
        "Since our admin left nobody really owns this tool.",
        "Hard to justify the cost given how little we use it.",
    ),
}
CSAT_COMMENTS = (
    "Quick and helpful, thanks!",
    "Resolved, but it took a while.",
    "Still not happy with how long this took.",
    "Issue came back the next day.",
)
TOUCH_SUMMARIES = {
    "routine": (
        "Check-in on adoption and open questions.",
        "Shared best practices for reports.",
        "Reviewed usage trends with the team.",
    ),
    "qbr": ("Quarterly business review: goals, adoption and roadmap.",),
    "escalation": (
        "Escalation call about open P1 tickets; customer frustrated.",
        "Customer requested an urgent call about repeated outages.",
    ),
    "expansion": (
        "Discussed rolling out to an additional team and seat pricing.",
        "Customer asked for a quote for more seats.",
    ),
    "silent": ("Follow-up sent, no reply.", "Tried to schedule a check-in; no response."),
}
MILESTONES = (
    ("Kickoff call held", 7),
    ("SSO configured", 21),
    ("Data integration live", 35),
    ("Admin training complete", 45),
    ("First dashboard shared", 60),
    ("Half of seats active", 90),
)
CHURN_REASONS = ("low_adoption", "switched_competitor", "product_gaps", "acquired")
OUTCOME_COMMENTS = {
    "champion_left": "Our sponsor left and nobody picked up the project.",
    "support_experience": "Repeated outages and slow support; moving to another vendor.",
    "budget_cuts": "Budget was cut this year.",
    "low_adoption": "The team never really adopted it.",
    "switched_competitor": "Chose a competitor with a lower price.",
    "product_gaps": "Missing features we need for our workflow.",
    "acquired": "We were acquired and are consolidating tools.",
    "seat_reduction": "Reducing seats to the active team.",
    "seat_growth": "Rolling out to more of the team.",
    "new_team": "A second department is adopting the product.",
    "standard_renewal": "Renewed on the same terms.",
}
PAYMENT_FAILURES = ("card_declined", "insufficient_funds", "expired_card", "do_not_honor")

# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PortfolioSpec:
    """What portfolio to generate; the default gives ~3 million usage events over two years."""

    accounts: int = 500
    seed: int = 7
    start: date = date(2024, 11, 1)
    months: int = 24
    events_per_active_user_day: float = 1.6
    chunk_rows: int = 500_000


@dataclass(frozen=True)
class _Window:
    start: date
    end: date  # exclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def index(self, day: date) -> int:
        return (day - self.start).days

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)


@dataclass(frozen=True)
class _Term:
    subscription_id: str
    start: date
    end: date
    seats: int
    arr: float
    billing: str


@dataclass(frozen=True)
class _Renewal:
    on: date
    type: str  # renewed, expanded, contracted, churned
    arr_change: float
    lead_days: int  # how long behaviour foreshadows it
    depth: float  # usage floor before a churn or contraction


@dataclass(frozen=True)
class _Account:
    index: int
    account_id: str
    name: str
    domains: tuple[str, ...]
    parent_id: str | None
    industry: str
    segment: _Segment
    country: tuple[str, str, int, float, str]
    owner: str
    created: date
    terms: tuple[_Term, ...]
    renewals: tuple[_Renewal, ...]
    activity: float  # weekday chance that a user is active
    adoption: float  # users per seat
    champion_left: date | None
    storm: date | None  # start of a support storm
    payment_trouble: bool

    @property
    def number(self) -> str:
        return self.account_id.split("-")[1]

    @property
    def churned_on(self) -> date | None:
        last = self.renewals[-1] if self.renewals else None
        return last.on if last is not None and last.type == "churned" else None

    @property
    def fate(self) -> str:
        types = {r.type for r in self.renewals}
        for fate in ("churned", "contracted", "expanded"):
            if fate in types:
                return fate
        return "renewed"


@dataclass(frozen=True)
class _Person:
    contact_id: str | None  # None: a product user who is not a CRM contact
    user_id: str
    name: str
    email: str
    persona: str | None
    title: str | None
    joined: date
    left_at: date | None

    def present(self, day: date) -> bool:
        return self.joined <= day and (self.left_at is None or day < self.left_at)


@dataclass(frozen=True)
class _Portfolio:
    spec: PortfolioSpec
    window: _Window
    rhythm: FloatArray  # weekday and holiday activity factor per day
    accounts: tuple[_Account, ...]
    people: tuple[tuple[_Person, ...], ...]  # per account: contacts first, then users


def _rng(seed: int, stream: str, *keys: int) -> Rng:
    """An independent random stream per (seed, purpose, key): order of generation never matters."""
    return np.random.default_rng([seed, *stream.encode(), *keys])


def _pick(rng: Rng, items: Sequence[T], weights: Sequence[float] | None = None) -> T:
    if weights is None:
        return items[int(rng.integers(len(items)))]
    p = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    last = calendar.monthrange(day.year + year, month + 1)[1]
    return date(day.year + year, month + 1, min(day.day, last))


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "-".join(ascii_text.lower().replace("'", "").split())


def _instant(day: date, hours: float, utc_offset: int = 0) -> datetime:
    """A moment at local ``hours`` on ``day`` in a zone ``utc_offset`` hours from UTC, in UTC."""
    local = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hours)
    return (local - timedelta(hours=utc_offset)).replace(microsecond=0)


# ----------------------------------------------------------------------------- accounts


def _plan(spec: PortfolioSpec) -> tuple[_Window, list[_Account]]:
    window = _Window(spec.start, _add_months(spec.start, spec.months))
    rng = _rng(spec.seed, "accounts")
    names = _company_names(rng, spec.accounts)
    accounts = [_plan_account(i, names[i], rng, window) for i in range(spec.accounts)]
    return window, _attach_subsidiaries(accounts, rng)


def _company_names(rng: Rng, count: int) -> list[tuple[str, str]]:
    """Unique (name, industry) pairs like ("Acme Robotics", "Manufacturing")."""
    combos = [
        (f"{stem} {trade}", industry)
        for stem in COMPANY_STEMS
        for trade, industry in COMPANY_TRADES
    ]
    order = rng.permutation(len(combos))
    names = []
    for i in range(count):
        name, industry = combos[int(order[i % len(combos)])]
        lap = i // len(combos)
        names.append((f"{name} {lap + 1}" if lap else name, industry))
    return names


def _plan_account(index: int, name: tuple[str, str], rng: Rng, window: _Window) -> _Account:
    segment = _pick(rng, SEGMENTS, [s.share for s in SEGMENTS])
    country = _pick(rng, COUNTRIES, [c[3] for c in COUNTRIES])
    account_id = f"acct-{index + 1:05d}"
    created = _created(rng, window)
    seats = int(np.clip(rng.lognormal(np.log(segment.median_seats), 0.45), 3, 900))
    terms, renewals = _contract_history(account_id, segment, created, seats, rng, window)
    churned = renewals[-1].on if renewals and renewals[-1].type == "churned" else None
    tld = country[4] if rng.random() < 0.4 else "com"
    return _Account(
        index=index,
        account_id=account_id,
        name=name[0],
        domains=(f"{_slug(name[0])}.{tld}",),
        parent_id=None,
        industry=name[1],
        segment=segment,
        country=country,
        owner=_pick(rng, CSMS),
        created=created,
        terms=terms,
        renewals=renewals,
        activity=float(rng.uniform(0.16, 0.32)),
        adoption=float(rng.uniform(0.6, 0.95)),
        champion_left=_champion_departure(rng, churned, created, window),
        storm=_storm_start(rng, churned, created, window),
        payment_trouble=churned is not None and rng.random() < 0.35,
    )


def _created(rng: Rng, window: _Window) -> date:
    """Most accounts were customers before the window opens; a quarter sign during it."""
    if rng.random() < 0.75:
        return window.start - timedelta(days=int(rng.integers(20, 1100)))
    return window.start + timedelta(days=int(rng.integers(0, max(window.days - 30, 1))))


def _champion_departure(
    rng: Rng, churned: date | None, created: date, window: _Window
) -> date | None:
    """Champions leave some weeks before most churns, and occasionally at healthy accounts."""
    if churned is not None:
        if rng.random() < 0.55:
            return max(churned - timedelta(days=int(rng.integers(21, 91))), created)
        return None
    if rng.random() < 0.06:
        return max(window.day(int(rng.integers(0, window.days))), created + timedelta(days=30))
    return None


def _storm_start(rng: Rng, churned: date | None, created: date, window: _Window) -> date | None:
    """A burst of urgent, angry tickets before some churns (and, rarely, at survivors)."""
    if churned is not None:
        if rng.random() < 0.45:
            return max(churned - timedelta(days=int(rng.integers(40, 130))), created)
        return None
    if rng.random() < 0.05:
        return max(window.day(int(rng.integers(0, window.days))), created + timedelta(days=30))
    return None


def _contract_history(
    account_id: str, segment: _Segment, created: date, seats: int, rng: Rng, window: _Window
) -> tuple[tuple[_Term, ...], tuple[_Renewal, ...]]:
    """Yearly terms from sign-up; each renewal inside the window draws the account's fate."""
    billing = _pick(rng, BILLING_PERIODS, segment.billing_weights)
    terms: list[_Term] = []
    renewals: list[_Renewal] = []
    start = created
    while start < window.end:
        end = _add_months(start, 12)
        arr = round(seats * segment.seat_price, 2)
        sub_id = f"sub-{account_id[5:]}-{len(terms) + 1}"
        terms.append(_Term(sub_id, start, end, seats, arr, billing))
        if window.start <= end < window.end:
            renewal, seats = _draw_renewal(rng, segment, end, seats)
            renewals.append(renewal)
            if renewal.type == "churned":
                break
        start = end
    return tuple(t for t in terms if t.end > window.start), tuple(renewals)


def _draw_renewal(rng: Rng, segment: _Segment, on: date, seats: int) -> tuple[_Renewal, int]:
    roll = rng.random()
    price = segment.seat_price
    if roll < segment.churn_risk:
        lead, depth = int(rng.integers(60, 121)), float(rng.uniform(0.1, 0.4))
        return _Renewal(on, "churned", -round(seats * price, 2), lead, depth), 0
    if roll < segment.churn_risk + 0.08:
        new = max(1, int(seats * rng.uniform(0.55, 0.85)))
        lead, depth = int(rng.integers(45, 91)), float(rng.uniform(0.55, 0.8))
        return _Renewal(on, "contracted", round((new - seats) * price, 2), lead, depth), new
    if roll < segment.churn_risk + 0.08 + segment.expand_chance:
        new = max(seats + 1, int(seats * rng.uniform(1.2, 1.7)))
        lead = int(rng.integers(90, 181))
        return _Renewal(on, "expanded", round((new - seats) * price, 2), lead, 1.0), new
    return _Renewal(on, "renewed", 0.0, 0, 1.0), seats


def _attach_subsidiaries(accounts: list[_Account], rng: Rng) -> list[_Account]:
    """About 3% of accounts become subsidiaries of an earlier account, sharing its name."""
    result = list(accounts)
    names = {a.name for a in accounts}
    for i in range(1, len(result)):
        if rng.random() >= 0.03:
            continue
        parent = result[int(rng.integers(0, i))]
        name = f"{parent.name} {_pick(rng, SUBSIDIARY_SUFFIXES)}"
        if parent.parent_id is not None or name in names:
            continue
        names.add(name)
        domain = f"{_slug(name)}.{result[i].country[4]}"
        result[i] = replace(
            result[i],
            name=name,
            domains=(domain,),
            parent_id=parent.account_id,
            industry=parent.industry,
        )
    return result


def _lifecycle(account: _Account, window: _Window) -> str:
    last_day = window.end - timedelta(days=1)
    if account.churned_on is not None:
        return "churned"
    if (last_day - account.created).days < 90:
        return "onboarding"
    if (account.terms[-1].end - last_day).days <= 60:
        return "renewal"
    return "adoption" if (last_day - account.created).days < 365 else "mature"


def _account_rows(pf: _Portfolio) -> list[Row]:
    return [
        {
            "account_id": a.account_id,
            "name": a.name,
            "parent_account_id": a.parent_id,
            "domains": ";".join(a.domains),
            "industry": a.industry,
            "segment": a.segment.name,
            "region": a.country[1],
            "country": a.country[0],
            "lifecycle_stage": _lifecycle(a, pf.window),
            "owner": a.owner,
            "created_at": a.created,
        }
        for a in pf.accounts
    ]


# ----------------------------------------------------------------------------- behaviour curves


def _rhythm(window: _Window) -> FloatArray:
    """Activity by calendar: weekends are quiet, the year-end holidays quieter still."""
    days = np.arange(window.days)
    weekday = (np.datetime64(window.start, "D").astype(np.int64) + days + 3) % 7
    factor = np.where(weekday >= 5, 0.15, 1.0)
    for i in range(window.days):
        day = window.day(i)
        if (day.month == 12 and day.day >= 22) or (day.month == 1 and day.day <= 2):
            factor[i] *= 0.45
    return factor.astype(np.float64)


def _engagement(account: _Account, window: _Window) -> FloatArray:
    """Per-day engagement multiplier: 0 outside the customer's life, falling before churn."""
    days = np.arange(window.days, dtype=np.float64)
    born = window.index(account.created)
    curve = np.clip(0.4 + 0.6 * (days - born) / 60.0, 0.4, 1.0)
    curve[days < born] = 0.0
    for renewal in account.renewals:
        curve *= _renewal_shape(renewal, days - window.index(renewal.on))
    return curve


def _renewal_shape(renewal: _Renewal, offset: FloatArray) -> FloatArray:
    """How usage bends around one renewal; ``offset`` is days relative to the renewal."""
    lead = max(renewal.lead_days, 1)
    progress = np.clip((offset + lead) / lead, 0.0, 1.0)
    if renewal.type == "churned":
        shape = 1.0 - (1.0 - renewal.depth) * progress**1.5
        return np.where(offset >= 0, 0.0, shape)
    if renewal.type == "contracted":
        shape = 1.0 - (1.0 - renewal.depth) * progress
        return np.where(offset >= 0, (1.0 + renewal.depth) / 2.0, shape)
    if renewal.type == "expanded":
        return 1.0 + 0.15 * progress
    return np.ones_like(offset)


def _user_pool(account: _Account, window: _Window) -> IntArray:
    """Users with access per day: seats times adoption, growing ahead of an expansion."""
    pool = np.zeros(window.days, dtype=np.float64)
    for term in account.terms:
        a, b = max(window.index(term.start), 0), max(min(window.index(term.end), window.days), 0)
        pool[a:b] = term.seats * account.adoption
    for before, after in zip(account.terms, account.terms[1:], strict=False):
        renewal = next(r for r in account.renewals if r.on == before.end)
        if renewal.type == "expanded":
            c, lead = window.index(renewal.on), renewal.lead_days
            a = max(c - lead, 0)
            ramp = np.linspace(before.seats, after.seats, lead + 1)[:-1] * account.adoption
            pool[a:c] = ramp[lead - (c - a) :]
    return np.maximum(np.rint(pool), 1).astype(np.int64)


def _max_users(account: _Account) -> int:
    return max(max(1, round(t.seats * account.adoption)) for t in account.terms)


# ----------------------------------------------------------------------------- people


def _people(account: _Account, window: _Window, seed: int) -> tuple[_Person, ...]:
    rng = _rng(seed, "people", account.index)
    taken: set[str] = set()
    contacts = _contacts(account, window, rng, taken)
    users_needed = _max_users(account) - sum(1 for c in contacts if c.persona in USES_PRODUCT)
    users = [
        _person(
            account, rng, taken, None, f"usr-{account.number}-{k + 1:04d}", account.created, None
        )
        for k in range(max(users_needed, 0))
    ]
    product_contacts = [c for c in contacts if c.persona in USES_PRODUCT]
    others = [c for c in contacts if c.persona not in USES_PRODUCT]
    return tuple(product_contacts + users + others)


def _contacts(account: _Account, window: _Window, rng: Rng, taken: set[str]) -> list[_Person]:
    people: list[_Person] = []
    end = account.churned_on or window.end
    for k, persona in enumerate(account.segment.personas):
        joined = account.created + timedelta(days=int(rng.integers(0, 30)))
        left = account.champion_left if persona == "champion" else _random_exit(rng, joined, end)
        people.append(
            _person(account, rng, taken, persona, f"con-{account.number}-{k + 1:02d}", joined, left)
        )
    if account.champion_left is not None and account.churned_on is None:
        joined = account.champion_left + timedelta(days=int(rng.integers(14, 46)))
        if joined < end:
            cid = f"con-{account.number}-{len(people) + 1:02d}"
            people.append(_person(account, rng, taken, "champion", cid, joined, None))
    return people


def _random_exit(rng: Rng, joined: date, end: date) -> date | None:
    if rng.random() >= 0.04 or (end - joined).days < 60:
        return None
    return joined + timedelta(days=int(rng.integers(30, (end - joined).days)))


def _person(
    account: _Account,
    rng: Rng,
    taken: set[str],
    persona: str | None,
    person_id: str,
    joined: date,
    left_at: date | None,
) -> _Person:
    name, local = _person_name(rng, account.country[0])
    email = _unique_email(local, account.domains[0], taken)
    title = _pick(rng, TITLES[persona]) if persona else None
    user_id = person_id.replace("con-", "usr-c") if persona else person_id
    return _Person(
        person_id if persona else None, user_id, name, email, persona, title, joined, left_at
    )


def _person_name(rng: Rng, country: str) -> tuple[str, str]:
    """(display name, email local part); non-Latin names where they are native, and a few more."""
    native = NATIVE_NAMES.get(country)
    if native is not None and rng.random() < 0.6:
        return _pick(rng, native)
    if rng.random() < 0.03:
        return _pick(rng, _pick(rng, tuple(NATIVE_NAMES.values())))
    first, last = _pick(rng, FIRST_NAMES), _pick(rng, LAST_NAMES)
    return f"{first} {last}", f"{_slug(first)}.{_slug(last).replace('-', '')}"


def _unique_email(local: str, domain: str, taken: set[str]) -> str:
    email, n = f"{local}@{domain}", 1
    while email in taken:
        n += 1
        email = f"{local}{n}@{domain}"
    taken.add(email)
    return email


def _contact_rows(pf: _Portfolio) -> list[Row]:
    return [
        {
            "contact_id": p.contact_id,
            "account_id": a.account_id,
            "email": p.email,
            "name": p.name,
            "title": p.title,
            "persona": p.persona,
            "status": "left" if p.left_at else "active",
            "left_at": p.left_at,
            "created_at": p.joined,
        }
        for a, people in zip(pf.accounts, pf.people, strict=True)
        for p in people
        if p.contact_id is not None
    ]


def _present_contacts(people: Sequence[_Person], day: date) -> list[_Person]:
    return [p for p in people if p.contact_id is not None and p.present(day)]


# ----------------------------------------------------------------------------- subscriptions


def _subscription_rows(pf: _Portfolio) -> list[Row]:
    rows: list[Row] = []
    last_day = pf.window.end - timedelta(days=1)
    for account in pf.accounts:
        for term in account.terms:
            churned = account.churned_on == term.end
            ended = term.end <= last_day
            status = "cancelled" if churned else ("expired" if ended else "active")
            rows.append(
                {
                    "subscription_id": term.subscription_id,
                    "account_id": account.account_id,
                    "plan": account.segment.plan,
                    "seats": term.seats,
                    "mrr": round(term.arr / 12, 2),
                    "arr": term.arr,
                    "currency": "USD",
                    "term_months": 12,
                    "billing_period": term.billing,
                    "start_date": term.start,
                    "end_date": term.end if ended else None,
                    "renewal_date": term.end,
                    "auto_renew": account.segment.name == "smb",
                    "status": status,
                }
            )
    return rows


def _billing_rows(pf: _Portfolio) -> tuple[list[Row], list[Row]]:
    invoices: list[Row] = []
    payments: list[Row] = []
    for account in pf.accounts:
        rng = _rng(pf.spec.seed, "billing", account.index)
        for term in account.terms:
            for issued, amount in _invoice_schedule(term, pf.window):
                number = f"inv-{account.number}-{len(invoices) + 1:06d}"
                invoice, attempts = _collect(account, term, number, issued, amount, rng, pf)
                invoices.append(invoice)
                payments.extend(attempts)
    return invoices, payments


def _invoice_schedule(term: _Term, window: _Window) -> list[tuple[date, float]]:
    step = {"monthly": 1, "quarterly": 3, "annual": 12}[term.billing]
    amount = round(term.arr * step / 12, 2)
    dates = [_add_months(term.start, k) for k in range(0, 12, step)]
    return [(d, amount) for d in dates if d < min(window.end, term.end)]


def _collect(
    account: _Account,
    term: _Term,
    invoice_id: str,
    issued: date,
    amount: float,
    rng: Rng,
    pf: _Portfolio,
) -> tuple[Row, list[Row]]:
    """Charge an invoice: cards on the issue date, invoices later; retries after failures."""
    card = term.billing == "monthly"
    due = issued if card else issued + timedelta(days=30)
    churn = account.churned_on
    troubled = account.payment_trouble and churn is not None and (churn - issued).days <= 120
    fail_p, recover_p = (0.75, 0.3) if troubled else (0.03, 0.85)
    first = issued if card else issued + timedelta(days=int(rng.integers(5, 41)))
    charge = _Charge(account, invoice_id, amount, first, pf.window.end)
    attempts, paid_at = _attempts(charge, fail_p, recover_p, rng)
    status = "paid" if paid_at else ("failed" if len(attempts) == 3 else "open")
    invoice: Row = {
        "invoice_id": invoice_id,
        "account_id": account.account_id,
        "subscription_id": term.subscription_id,
        "amount": amount,
        "currency": "USD",
        "issued_at": issued,
        "due_date": due,
        "paid_at": paid_at,
        "status": status,
    }
    return invoice, attempts


@dataclass(frozen=True)
class _Charge:
    account: _Account
    invoice_id: str
    amount: float
    first_attempt: date
    horizon: date


def _attempts(
    charge: _Charge, fail_p: float, recover_p: float, rng: Rng
) -> tuple[list[Row], date | None]:
    """Up to three attempts a few days apart; returns them and the day it was paid, if it was."""
    attempts: list[Row] = []
    day = charge.first_attempt
    for n in range(3):
        if day >= charge.horizon:
            break
        failed = bool(rng.random() < (fail_p if n == 0 else 1 - recover_p))
        attempts.append(
            _payment(charge.account, charge.invoice_id, n, charge.amount, day, failed, rng)
        )
        if not failed:
            return attempts, day
        day += timedelta(days=int(rng.integers(3, 6)))
    return attempts, None


def _payment(
    account: _Account, invoice_id: str, n: int, amount: float, day: date, failed: bool, rng: Rng
) -> Row:
    return {
        "payment_id": f"pay-{invoice_id[4:]}-{n + 1}",
        "account_id": account.account_id,
        "invoice_id": invoice_id,
        "amount": amount,
        "currency": "USD",
        "attempted_at": _instant(day, float(rng.uniform(1, 6))),
        "status": "failed" if failed else "succeeded",
        "failure_reason": _pick(rng, PAYMENT_FAILURES) if failed else None,
    }


# ----------------------------------------------------------------------------- usage


@dataclass(frozen=True)
class _Catalogue:
    """Flat table of event names with their feature, popularity and key-feature flag."""

    events: tuple[str, ...]
    features: tuple[str, ...]
    weights: FloatArray
    key: BoolArray


def _catalogue() -> _Catalogue:
    rows = [
        (event, name, weight / len(events), key)
        for name, key, weight, events in FEATURES
        for event in events
    ]
    return _Catalogue(
        tuple(r[0] for r in rows),
        tuple(r[1] for r in rows),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.bool_),
    )


def _availability(people: Sequence[_Person], pool: IntArray, window: _Window) -> BoolArray:
    """Who could be active on each day: within the seat pool, joined and not yet gone."""
    users = [p for p in people if p.contact_id is None or p.persona in USES_PRODUCT]
    first = np.array([window.index(p.joined) for p in users], dtype=np.int64)
    last = np.array(
        [window.index(p.left_at) if p.left_at else window.days for p in users], dtype=np.int64
    )
    days = np.arange(window.days)[:, None]
    slot = np.arange(len(users))[None, :]
    return (days >= first[None, :]) & (days < last[None, :]) & (slot < pool[:, None])


def _active_user_days(
    account: _Account, people: Sequence[_Person], pf: _Portfolio, rng: Rng
) -> tuple[IntArray, IntArray, FloatArray]:
    """(day, user slot) of every active user-day, and the account's engagement curve."""
    engagement = _engagement(account, pf.window)
    avail = _availability(people, _user_pool(account, pf.window), pf.window)
    propensity: FloatArray = np.asarray(rng.gamma(2.0, 0.5, size=avail.shape[1]), np.float64)
    propensity[: min(2, len(propensity))] = 2.0  # champion and first power user live in it
    daily = account.activity * pf.rhythm * engagement
    active = (rng.random(avail.shape) < np.clip(daily[:, None] * propensity, 0, 0.97)) & avail
    day, slot = np.nonzero(active)
    return day.astype(np.int64), slot.astype(np.int64), engagement


def _account_events(
    account: _Account,
    people: Sequence[_Person],
    user_base: int,
    pf: _Portfolio,
    catalogue: _Catalogue,
) -> dict[str, IntArray]:
    rng = _rng(pf.spec.seed, "events", account.index)
    day, slot, engagement = _active_user_days(account, people, pf, rng)
    rows = 1 + rng.poisson(max(pf.spec.events_per_active_user_day - 1.0, 0.0), size=day.size)
    day, slot = np.repeat(day, rows), np.repeat(slot, rows)
    event = _draw_events(rng, catalogue, engagement[day])
    local_hour = np.clip(rng.normal(13.5, 2.8, size=day.size), 6.0, 23.9)
    start = int(_instant(pf.window.start, 0.0).timestamp())
    epoch = start + day * 86400 + ((local_hour - account.country[2]) * 3600).astype(np.int64)
    epoch = np.clip(epoch, start, start + pf.window.days * 86400 - 1)
    order = np.argsort(epoch, kind="stable")
    return {
        "account": np.full(day.size, account.index, dtype=np.int64),
        "user": (user_base + slot)[order],
        "event": event[order],
        "epoch": epoch[order],
        "count": rng.geometric(0.45, size=day.size).astype(np.int64)[order],
        "platform": rng.choice(len(PLATFORMS), size=day.size, p=PLATFORM_WEIGHTS)[order],
        "duration": rng.lognormal(8.5, 1.0, size=day.size).astype(np.int64)[order],
    }


def _draw_events(rng: Rng, catalogue: _Catalogue, engagement: FloatArray) -> IntArray:
    """Event per row; key features lose share as engagement falls (the tell-tale of decline)."""
    weights = catalogue.weights * rng.gamma(20.0, 1 / 20.0, size=catalogue.weights.size)
    key_share = weights[catalogue.key].sum() / weights.sum()
    is_key = rng.random(engagement.size) < key_share * np.clip(engagement, 0.3, 1.1)
    key_idx, other_idx = np.flatnonzero(catalogue.key), np.flatnonzero(~catalogue.key)
    return np.where(
        is_key,
        _weighted(rng, key_idx, weights, engagement.size),
        _weighted(rng, other_idx, weights, engagement.size),
    ).astype(np.int64)


def _weighted(rng: Rng, idx: IntArray, weights: FloatArray, size: int) -> IntArray:
    cumulative = np.cumsum(weights[idx])
    picks = np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right")
    return np.asarray(idx[np.minimum(picks, idx.size - 1)], dtype=np.int64)


class _EventSink:
    """Buffers numeric event columns and writes Parquet files of ``chunk_rows`` rows each."""

    def __init__(self, out_dir: Path, pf: _Portfolio, catalogue: _Catalogue) -> None:
        self._dir, self._chunk = out_dir, max(pf.spec.chunk_rows, 1)
        users = [p for people in pf.people for p in _product_users(people)]
        self._lookup = {
            "account": pa.array([a.account_id for a in pf.accounts]),
            "user_id": pa.array([u.user_id for u in users]),
            "user_email": pa.array([u.email for u in users]),
            "event": pa.array(list(catalogue.events)),
            "feature": pa.array(list(catalogue.features)),
            "platform": pa.array(list(PLATFORMS)),
        }
        self._parts: list[dict[str, IntArray]] = []
        self._buffered = 0
        self._written = 0
        self.paths: list[Path] = []

    def add(self, columns: dict[str, IntArray]) -> None:
        self._parts.append(columns)
        self._buffered += int(columns["epoch"].size)
        while self._buffered >= self._chunk:
            self._flush(self._chunk)

    def close(self) -> list[Path]:
        if self._buffered or not self.paths:
            self._flush(self._buffered)
        return self.paths

    def _flush(self, rows: int) -> None:
        merged = {
            k: np.concatenate([p[k] for p in self._parts])
            if self._parts
            else np.zeros(0, dtype=np.int64)
            for k in _EVENT_COLUMNS
        }
        head = {k: v[:rows] for k, v in merged.items()}
        self._parts = [{k: v[rows:].copy() for k, v in merged.items()}]
        self._buffered -= rows
        path = self._dir / f"events-{len(self.paths) + 1:04d}.parquet"
        pq.write_table(self._table(head), path, compression="zstd")
        self._written += rows
        self.paths.append(path)

    def _table(self, cols: dict[str, IntArray]) -> pa.Table:
        seq = pa.array(np.arange(self._written + 1, self._written + 1 + cols["epoch"].size))
        stamps = np.datetime_as_string(
            cols["epoch"].astype("datetime64[s]"), unit="s", timezone="UTC"
        )
        platform = self._lookup["platform"].take(pa.array(cols["platform"]))
        properties = pc.binary_join_element_wise(
            '{"platform":"',
            platform,
            '","duration_ms":',
            pc.cast(pa.array(cols["duration"]), pa.string()),
            "}",
            "",
        )
        return pa.table(
            {
                "event_id": pc.binary_join_element_wise(
                    "ev_", pc.utf8_lpad(pc.cast(seq, pa.string()), width=10, padding="0"), ""
                ),
                "account_id": self._lookup["account"].take(pa.array(cols["account"])),
                "user_id": self._lookup["user_id"].take(pa.array(cols["user"])),
                "user_email": self._lookup["user_email"].take(pa.array(cols["user"])),
                "event": self._lookup["event"].take(pa.array(cols["event"])),
                "feature": self._lookup["feature"].take(pa.array(cols["event"])),
                "timestamp": pa.array(stamps, pa.string()),
                "count": pa.array(cols["count"], pa.int64()),
                "properties": properties,
            }
        )


_EVENT_COLUMNS = ("account", "user", "event", "epoch", "count", "platform", "duration")


def _product_users(people: Sequence[_Person]) -> list[_Person]:
    return [p for p in people if p.contact_id is None or p.persona in USES_PRODUCT]


def _write_events(pf: _Portfolio, out_dir: Path, tick: Callable[[], None]) -> list[Path]:
    catalogue = _catalogue()
    sink = _EventSink(out_dir, pf, catalogue)
    user_base = 0
    for account, people in zip(pf.accounts, pf.people, strict=True):
        sink.add(_account_events(account, people, user_base, pf, catalogue))
        user_base += len(_product_users(people))
        tick()
    return sink.close()


# ----------------------------------------------------------------------------- support


@dataclass(frozen=True)
class _Ticket:
    row: Row
    contact: _Person | None


def _ticket_rows(pf: _Portfolio) -> list[_Ticket]:
    tickets: list[_Ticket] = []
    for account, people in zip(pf.accounts, pf.people, strict=True):
        rng = _rng(pf.spec.seed, "tickets", account.index)
        engagement = _engagement(account, pf.window)
        for day, kind in _ticket_days(account, engagement, pf, rng):
            number = f"tkt-{account.number}-{len(tickets) + 1:06d}"
            tickets.append(_ticket(account, people, number, day, kind, rng, pf.window))
    return tickets


def _ticket_days(
    account: _Account, engagement: FloatArray, pf: _Portfolio, rng: Rng
) -> list[tuple[date, str]]:
    """Ordinary tickets at a seat-scaled rate, plus a storm of angry ones where planned."""
    rate = account.segment.tickets_per_month / 30.0 * (engagement > 0) * (pf.rhythm > 0.5)
    days = np.repeat(np.arange(pf.window.days), rng.poisson(rate * 1.4))
    moods = np.where(
        rng.random(days.size) < 0.12 + 0.4 * (1 - np.clip(engagement[days], 0, 1)),
        "frustrated",
        "neutral",
    )
    found = [(pf.window.day(int(d)), str(m)) for d, m in zip(days, moods, strict=True)]
    if account.storm is not None:
        storm = [
            account.storm + timedelta(days=int(k))
            for k in np.sort(rng.integers(0, 21, size=int(rng.integers(4, 10))))
        ]
        found += [(d, "angry") for d in storm if pf.window.start <= d < pf.window.end]
    return sorted(found)


def _ticket(
    account: _Account,
    people: Sequence[_Person],
    ticket_id: str,
    day: date,
    mood: str,
    rng: Rng,
    window: _Window,
) -> _Ticket:
    priority = (
        _pick(rng, ("P1", "P2"), (0.4, 0.6))
        if mood == "angry"
        else _pick(rng, ("P1", "P2", "P3", "P4"), (0.02, 0.12, 0.5, 0.36))
    )
    level = int(priority[1]) - 1
    opened = _instant(day, float(rng.uniform(8, 18)), account.country[2])
    first, resolved = _ticket_clock(rng, level, mood, opened)
    done = resolved.date() < window.end
    contacts = _present_contacts(people, day)
    contact = _pick(rng, contacts) if contacts else None
    topic, team = _pick(rng, TICKET_TOPICS), _pick(rng, TEAMS)
    row: Row = {
        "ticket_id": ticket_id,
        "account_id": account.account_id,
        "contact_id": contact.contact_id if contact else None,
        "priority": priority,
        "status": "solved" if done else "open",
        "opened_at": opened,
        "first_response_at": first if first.date() < window.end else None,
        "resolved_at": resolved if done else None,
        "csat": _csat(rng, mood) if done else None,
        "escalated": mood == "angry" or level == 0,
        "subject": _pick(rng, SUBJECTS[mood]).format(topic=topic),
        "body": _pick(rng, BODIES[mood]).format(topic=topic, team=team),
    }
    return _Ticket(row, contact)


def _ticket_clock(rng: Rng, level: int, mood: str, opened: datetime) -> tuple[datetime, datetime]:
    """First response and resolution: slower for low priorities, and during storms."""
    slow = 3.0 if mood == "angry" else 1.0
    respond = 1 + float(rng.exponential((30, 120, 480, 1440)[level] * slow))
    first = opened + timedelta(minutes=respond)
    return first, first + timedelta(hours=float(rng.exponential((8, 24, 72, 120)[level] * slow)))


def _csat(rng: Rng, mood: str) -> int | None:
    if rng.random() < 0.45:
        return None
    low, high = {"angry": (1, 2), "frustrated": (2, 4), "neutral": (4, 5)}[mood]
    return int(rng.integers(low, high + 1))


# ----------------------------------------------------------------------------- voice


def _response_rows(pf: _Portfolio, tickets: Sequence[_Ticket]) -> list[Row]:
    rows: list[Row] = []
    for account, people in zip(pf.accounts, pf.people, strict=True):
        rng = _rng(pf.spec.seed, "nps", account.index)
        engagement = _engagement(account, pf.window)
        mood = float(rng.normal(0.0, 0.8))
        first = int(rng.integers(30, 90))
        for index in range(first, pf.window.days, 182):
            rows.extend(_nps_round(account, people, index, engagement, mood, rng, pf.window))
    rows.extend(_csat_responses(tickets, pf.spec.seed))
    for n, row in enumerate(rows):
        row["response_id"] = f"rsp-{n + 1:07d}"
    return rows


def _nps_round(
    account: _Account,
    people: Sequence[_Person],
    index: int,
    engagement: FloatArray,
    mood: float,
    rng: Rng,
    window: _Window,
) -> list[Row]:
    """A survey sent to current contacts; scores track engagement, storms and lost champions."""
    if engagement[index] <= 0:
        return []
    day = window.day(index)
    mu = 3.0 + 6.0 * min(float(engagement[index]), 1.05) + mood
    if account.storm is not None and 0 <= (day - account.storm).days <= 120:
        mu -= 2.5
    if account.champion_left is not None and account.champion_left <= day:
        mu -= 1.0
    rows: list[Row] = []
    for person in _present_contacts(people, day):
        if rng.random() < 0.35:
            score = int(np.clip(np.rint(rng.normal(mu, 1.4)), 0, 10))
            rows.append(_nps_row(account, person, score, day, rng))
    return rows


def _nps_row(account: _Account, person: _Person, score: int, day: date, rng: Rng) -> Row:
    band = "promoter" if score >= 9 else ("passive" if score >= 7 else "detractor")
    comment = _pick(rng, NPS_COMMENTS[band]) if rng.random() < 0.7 else None
    return {
        "account_id": account.account_id,
        "contact_id": person.contact_id,
        "contact_email": person.email,
        "survey": "nps",
        "score": score,
        "comment": comment,
        "responded_at": _instant(
            day + timedelta(days=int(rng.integers(0, 10))),
            float(rng.uniform(8, 20)),
            account.country[2],
        ),
    }


def _csat_responses(tickets: Sequence[_Ticket], seed: int) -> list[Row]:
    """The post-ticket CSAT survey, for rated tickets whose requester is known."""
    rng = _rng(seed, "csat")
    rows: list[Row] = []
    for ticket in tickets:
        score, resolved = ticket.row["csat"], ticket.row["resolved_at"]
        if (
            ticket.contact is None
            or not isinstance(score, int)
            or not isinstance(resolved, datetime)
        ):
            continue
        rows.append(
            {
                "account_id": ticket.row["account_id"],
                "contact_id": ticket.contact.contact_id,
                "contact_email": ticket.contact.email,
                "survey": "csat",
                "score": score,
                "comment": CSAT_COMMENTS[min(5 - score, 3)] if rng.random() < 0.5 else None,
                "responded_at": resolved + timedelta(hours=int(rng.integers(1, 48))),
            }
        )
    return rows


def _touchpoint_rows(pf: _Portfolio) -> list[Row]:
    rows: list[Row] = []
    for account, people in zip(pf.accounts, pf.people, strict=True):
        rng = _rng(pf.spec.seed, "touchpoints", account.index)
        engagement = _engagement(account, pf.window)
        for index, context in _touch_schedule(account, engagement, pf.window, rng):
            rows.append(_touchpoint(account, people, index, context, rng, pf.window))
    for n, row in enumerate(rows):
        row["touchpoint_id"] = f"tp-{n + 1:07d}"
    return rows


def _touch_schedule(
    account: _Account, engagement: FloatArray, window: _Window, rng: Rng
) -> list[tuple[int, str]]:
    """CSM cadence by segment, QBRs, escalations during storms, expansion talks before growth."""
    alive = np.flatnonzero(engagement > 0)
    if alive.size == 0:
        return []
    gaps = rng.exponential(account.segment.touch_every_days, size=window.days // 5 + 2)
    days = alive[0] + np.cumsum(gaps).astype(np.int64)
    plan = [
        (int(d), "silent" if engagement[d] < 0.6 else "routine") for d in days if d <= alive[-1]
    ]
    if account.segment.name != "smb":
        plan += [(int(d), "qbr") for d in range(int(alive[0]) + 45, int(alive[-1]) + 1, 91)]
    if account.storm is not None:
        plan += [(window.index(account.storm) + k, "escalation") for k in (2, 9, 16)]
    for renewal in account.renewals:
        if renewal.type == "expanded":
            plan += [(window.index(renewal.on) - k, "expansion") for k in (75, 40, 15)]
    return sorted((d, c) for d, c in plan if 0 <= d < window.days and engagement[d] > 0)


def _touchpoint(
    account: _Account,
    people: Sequence[_Person],
    index: int,
    context: str,
    rng: Rng,
    window: _Window,
) -> Row:
    day = window.day(index)
    kind = {"qbr": "qbr", "escalation": "call", "expansion": "meeting", "silent": "email"}.get(
        context
    ) or _pick(rng, ("email", "call", "meeting"), (0.5, 0.3, 0.2))
    inbound_p = {"escalation": 0.8, "expansion": 0.5, "silent": 0.0}.get(context, 0.25)
    present = _present_contacts(people, day)
    size = min(len(present), 1 + int(rng.integers(0, 3 if kind in ("qbr", "meeting") else 1)))
    chosen = [present[int(i)] for i in np.sort(rng.choice(len(present), size, replace=False))]
    return {
        "account_id": account.account_id,
        "type": kind,
        "direction": "inbound" if rng.random() < inbound_p else "outbound",
        "occurred_at": _instant(day, float(rng.uniform(9, 17)), account.country[2]),
        "contact_ids": ";".join(str(p.contact_id) for p in chosen),
        "owner": account.owner,
        "summary": _pick(rng, TOUCH_SUMMARIES[context]),
    }


# ----------------------------------------------------------------------------- outcomes


def _milestone_rows(pf: _Portfolio) -> list[Row]:
    """Onboarding milestones from sign-up: on time for the healthy, late or missed at risk."""
    rows: list[Row] = []
    for account in pf.accounts:
        rng = _rng(pf.spec.seed, "milestones", account.index)
        at_risk = account.fate in ("churned", "contracted")
        stop = min(account.churned_on or pf.window.end, pf.window.end)
        for k, (name, offset) in enumerate(MILESTONES):
            planned = account.created + timedelta(days=offset)
            delay = int(rng.integers(10, 76)) if at_risk else int(rng.integers(-3, 11))
            achieved: date | None = planned + timedelta(days=delay)
            if (at_risk and k >= 4 and rng.random() < 0.4) or (achieved and achieved >= stop):
                achieved = None
            rows.append(
                {
                    "milestone_id": f"ms-{account.number}-{k + 1}",
                    "account_id": account.account_id,
                    "name": name,
                    "category": "onboarding" if k < 5 else "adoption",
                    "planned_date": planned,
                    "achieved_date": achieved,
                }
            )
    return rows


def _opportunity_rows(pf: _Portfolio) -> list[Row]:
    rows: list[Row] = []
    for account in pf.accounts:
        rng = _rng(pf.spec.seed, "opportunities", account.index)
        for renewal in account.renewals:
            if renewal.type == "expanded":
                created = renewal.on - timedelta(days=int(rng.integers(60, 151)))
                rows.append(
                    _opportunity(
                        account, "seat_expansion", renewal.arr_change, created, "won", renewal.on
                    )
                )
        if account.fate in ("renewed", "expanded") and rng.random() < 0.15:
            created = pf.window.day(int(rng.integers(0, pf.window.days)))
            stage = _pick(rng, ("identified", "qualified", "proposed", "lost"))
            closed = created + timedelta(days=45) if stage == "lost" else None
            amount = round(float(rng.uniform(0.1, 0.3)) * account.terms[-1].arr, 2)
            rows.append(_opportunity(account, "cross_sell", amount, created, stage, closed))
    for n, row in enumerate(rows):
        row["opportunity_id"] = f"opp-{n + 1:06d}"
    return rows


def _opportunity(
    account: _Account, kind: str, amount: float, created: date, stage: str, closed: date | None
) -> Row:
    product = account.segment.plan if kind == "seat_expansion" else "Analytics add-on"
    return {
        "account_id": account.account_id,
        "type": kind,
        "product": product,
        "amount": amount,
        "stage": stage,
        "created_at": created,
        "closed_at": closed,
    }


def _outcome_rows(pf: _Portfolio) -> list[Row]:
    rows: list[Row] = []
    for account in pf.accounts:
        rng = _rng(pf.spec.seed, "outcomes", account.index)
        for k, renewal in enumerate(account.renewals):
            reason = _reason(account, renewal.type, rng)
            rows.append(
                {
                    "outcome_id": f"out-{account.number}-{k + 1}",
                    "account_id": account.account_id,
                    "type": renewal.type,
                    "date": renewal.on,
                    "arr_change": renewal.arr_change,
                    "reason": reason,
                    "comment": OUTCOME_COMMENTS[reason],
                }
            )
    return rows


def _reason(account: _Account, kind: str, rng: Rng) -> str:
    if kind == "churned":
        if account.champion_left is not None:
            return "champion_left"
        if account.storm is not None:
            return "support_experience"
        return "budget_cuts" if account.payment_trouble else _pick(rng, CHURN_REASONS)
    if kind == "contracted":
        return _pick(rng, ("budget_cuts", "seat_reduction", "low_adoption"))
    if kind == "expanded":
        return _pick(rng, ("seat_growth", "new_team"))
    return "standard_renewal"


# ----------------------------------------------------------------------------- files


COLUMNS = {
    "accounts": (
        "account_id",
        "name",
        "parent_account_id",
        "domains",
        "industry",
        "segment",
        "region",
        "country",
        "lifecycle_stage",
        "owner",
        "created_at",
    ),
    "contacts": (
        "contact_id",
        "account_id",
        "email",
        "name",
        "title",
        "persona",
        "status",
        "left_at",
        "created_at",
    ),
    "subscriptions": (
        "subscription_id",
        "account_id",
        "plan",
        "seats",
        "mrr",
        "arr",
        "currency",
        "term_months",
        "billing_period",
        "start_date",
        "end_date",
        "renewal_date",
        "auto_renew",
        "status",
    ),
    "invoices": (
        "invoice_id",
        "account_id",
        "subscription_id",
        "amount",
        "currency",
        "issued_at",
        "due_date",
        "paid_at",
        "status",
    ),
    "payments": (
        "payment_id",
        "account_id",
        "invoice_id",
        "amount",
        "currency",
        "attempted_at",
        "status",
        "failure_reason",
    ),
    "tickets": (
        "ticket_id",
        "account_id",
        "contact_id",
        "priority",
        "status",
        "opened_at",
        "first_response_at",
        "resolved_at",
        "csat",
        "escalated",
        "subject",
        "body",
    ),
    "responses": (
        "response_id",
        "account_id",
        "contact_id",
        "contact_email",
        "survey",
        "score",
        "comment",
        "responded_at",
    ),
    "touchpoints": (
        "touchpoint_id",
        "account_id",
        "type",
        "direction",
        "occurred_at",
        "contact_ids",
        "owner",
        "summary",
    ),
    "milestones": (
        "milestone_id",
        "account_id",
        "name",
        "category",
        "planned_date",
        "achieved_date",
    ),
    "opportunities": (
        "opportunity_id",
        "account_id",
        "type",
        "product",
        "amount",
        "stage",
        "created_at",
        "closed_at",
    ),
    "outcomes": ("outcome_id", "account_id", "type", "date", "arr_change", "reason", "comment"),
}


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _write_csv(out_dir: Path, kind: str, rows: Iterable[Row]) -> Path:
    columns = COLUMNS[kind]
    unknown = set(columns) - set(KINDS[kind].field_names)
    if unknown:
        raise ValueError(f"{kind} columns not in the record: {sorted(unknown)}")
    path = out_dir / f"{kind}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(row.get(c)) for c in columns] for row in rows)
    return path


def _build(spec: PortfolioSpec) -> _Portfolio:
    window, accounts = _plan(spec)
    people = tuple(_people(a, window, spec.seed) for a in accounts)
    return _Portfolio(spec, window, _rhythm(window), tuple(accounts), people)


def generate_portfolio(
    spec: PortfolioSpec, out_dir: Path, progress: Progress | None = None
) -> dict[str, list[Path]]:
    """Write one file per kind (events as Parquet chunks) and return kind -> paths in import order.

    ``progress(done, total)`` is called after each kind and after each account's usage.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    pf = _build(spec)
    total, done = len(KIND_ORDER) - 1 + spec.accounts, 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    paths: dict[str, list[Path]] = {}
    for kind, rows in _leading_kinds(pf):
        paths[kind] = [_write_csv(out_dir, kind, rows)]
        tick()
    paths["events"] = _write_events(pf, out_dir, tick)
    for kind, rows in _trailing_kinds(pf):
        paths[kind] = [_write_csv(out_dir, kind, rows)]
        tick()
    return {kind: paths[kind] for kind in KIND_ORDER}


def _leading_kinds(pf: _Portfolio) -> list[tuple[str, list[Row]]]:
    invoices, payments = _billing_rows(pf)
    return [
        ("accounts", _account_rows(pf)),
        ("contacts", _contact_rows(pf)),
        ("subscriptions", _subscription_rows(pf)),
        ("invoices", invoices),
        ("payments", payments),
    ]


def _trailing_kinds(pf: _Portfolio) -> list[tuple[str, list[Row]]]:
    tickets = _ticket_rows(pf)
    return [
        ("tickets", [t.row for t in tickets]),
        ("responses", _response_rows(pf, tickets)),
        ("touchpoints", _touchpoint_rows(pf)),
        ("milestones", _milestone_rows(pf)),
        ("opportunities", _opportunity_rows(pf)),
        ("outcomes", _outcome_rows(pf)),
    ]
