"""The account record's kinds and their machine-readable schema (JSON Schema with relationships)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenure.record.fields import (
    Boolean,
    Choice,
    Currency,
    Date,
    Email,
    Identifier,
    Integer,
    JsonObject,
    Number,
    Text,
    TextList,
    Timestamp,
)
from tenure.record.kinds import (
    Field,
    FillFrom,
    Kind,
    Record,
    RecordError,
    Rule,
    duration_pair,
    not_before,
)

SCHEMA_VERSION = "1"

PERSONAS = (
    "champion",
    "executive_sponsor",
    "economic_buyer",
    "power_user",
    "end_user",
    "procurement",
    "finance",
    "it",
    "business_unit_leader",
)
LIFECYCLE_STAGES = ("trial", "onboarding", "adoption", "mature", "renewal", "churned")
OUTCOME_TYPES = ("renewed", "expanded", "contracted", "churned", "reactivated")

MONEY = Number(minimum=0, maximum=1e12, decimals=2)
SIGNED_MONEY = Number(minimum=-1e12, maximum=1e12, decimals=2)


def _id(name: str, description: str, **kw: Any) -> Field:
    return Field(name, Identifier(), description, **kw)


def _account(required: bool = True) -> Field:
    return Field(
        "account_id", Identifier(), "The account this belongs to.", required, references="accounts"
    )


ACCOUNTS = Kind(
    name="accounts",
    title="Account",
    description="A customer company: the root every other kind hangs from.",
    key="account_id",
    time_field="created_at",
    fields=(
        _id("account_id", "Your stable identifier for the account (CRM id)."),
        Field("name", Text(max_length=500, strip=True), "Company name."),
        _id("parent_account_id", "Parent in an account hierarchy.", references="accounts"),
        Field("domains", TextList(lower=True), "Email and web domains the company owns."),
        Field("industry", Text(max_length=200, strip=True), "Industry or vertical."),
        Field("segment", Text(max_length=100, strip=True), "Tier or segment (enterprise, SMB...)."),
        Field("region", Text(max_length=100, strip=True), "Sales region."),
        Field("country", Text(max_length=100, strip=True), "Country name or ISO code."),
        Field(
            "lifecycle_stage",
            Choice(
                LIFECYCLE_STAGES,
                {
                    "active": "adoption",
                    "customer": "mature",
                    "lost": "churned",
                    "cancelled": "churned",
                },
            ),
            "Where the account is in its lifecycle.",
        ),
        Field("owner", Text(max_length=200, strip=True), "The CSM who owns the account."),
        Field("created_at", Date(), "When the account became a customer (or signed up)."),
    ),
)


def _contact_status(record: Record) -> None:
    if record.get("contact_id") is None and record.get("email") is not None:
        record["contact_id"] = record["email"]
    if record.get("left_at") is not None:
        record.setdefault("status", "left")
    record.setdefault("status", "active")


CONTACTS = Kind(
    name="contacts",
    title="Contact",
    description="A person at a customer (or a lead), with a persona and whether they are still there.",
    key="contact_id",
    time_field="created_at",
    required_columns=(("contact_id", "email"), ("account_id", "email", "company")),
    derive=(Rule(_contact_status, uses=("email", "left_at"), sets=("contact_id", "status")),),
    fields=(
        _id("contact_id", "Stable identifier; the email is used when absent."),
        _account(required=False),
        Field("email", Email(), "Work email; its domain matches the contact to an account."),
        Field("name", Text(max_length=300, strip=True), "Full name."),
        Field("title", Text(max_length=300, strip=True), "Job title."),
        Field(
            "persona",
            Choice(
                PERSONAS,
                {
                    "exec_sponsor": "executive_sponsor",
                    "sponsor": "executive_sponsor",
                    "buyer": "economic_buyer",
                    "user": "end_user",
                    "admin": "power_user",
                    "bu_leader": "business_unit_leader",
                },
            ),
            "Role in the buying group.",
        ),
        Field(
            "status",
            Choice(("active", "left"), {"inactive": "left", "departed": "left"}),
            "active, or left the company.",
        ),
        Field("left_at", Date(), "When the person left."),
        Field("company", Text(max_length=500, strip=True), "Company name as given (for matching)."),
        Field("is_lead", Boolean(), "A lead rather than a contact in the CRM.", default=False),
        Field("created_at", Date(), "When the contact was created."),
    ),
)


def _subscription_money(record: Record) -> None:
    mrr, arr = record.get("mrr"), record.get("arr")
    if mrr is None and arr is not None:
        record["mrr"] = round(arr / 12, 2)
    elif arr is None and mrr is not None:
        record["arr"] = round(mrr * 12, 2)


SUBSCRIPTIONS = Kind(
    name="subscriptions",
    title="Subscription",
    description="A contract line: plan, seats, recurring revenue, term and renewal.",
    key="subscription_id",
    time_field="start_date",
    required_columns=(("mrr", "arr"),),
    derive=(
        Rule(_subscription_money, uses=("mrr", "arr"), sets=("mrr", "arr")),
        not_before("end_date", "start_date"),
        not_before("renewal_date", "start_date"),
    ),
    fields=(
        _id("subscription_id", "Stable identifier of the subscription."),
        _account(),
        Field("plan", Text(max_length=200, strip=True), "Plan or product tier."),
        Field("seats", Integer(minimum=0), "Licensed seats."),
        Field("mrr", MONEY, "Monthly recurring revenue."),
        Field("arr", MONEY, "Annual recurring revenue (12 x MRR when absent)."),
        Field("currency", Currency(), "ISO 4217 currency.", default="USD"),
        Field("term_months", Integer(minimum=1, maximum=120), "Contract term in months."),
        Field(
            "billing_period",
            Choice(
                ("monthly", "quarterly", "annual"),
                {"yearly": "annual", "annually": "annual", "month": "monthly", "year": "annual"},
            ),
            "Billing frequency.",
        ),
        Field("start_date", Date(), "Start of the subscription.", required=True),
        Field("end_date", Date(), "End (cancellation or expiry), if any."),
        Field("renewal_date", Date(), "Next renewal date."),
        Field("auto_renew", Boolean(), "Renews automatically."),
        Field("is_trial", Boolean(), "A trial, not yet paying.", default=False),
        Field(
            "status",
            Choice(
                ("active", "trial", "cancelled", "expired"),
                {"churned": "cancelled", "canceled": "cancelled", "ended": "expired"},
            ),
            "Status as the billing system says.",
        ),
    ),
)


def _invoice_status(record: Record) -> None:
    if record.get("status") is None:
        record["status"] = "paid" if record.get("paid_at") is not None else "open"


INVOICES = Kind(
    name="invoices",
    title="Invoice",
    description="A bill sent to the account: amount, due date, and whether it was paid.",
    key="invoice_id",
    time_field="issued_at",
    append_only=True,
    derive=(
        Rule(_invoice_status, uses=("paid_at",), sets=("status",)),
        not_before("due_date", "issued_at"),
    ),
    fields=(
        _id("invoice_id", "Invoice number; derived from the row when absent."),
        _account(),
        _id("subscription_id", "Subscription billed.", references="subscriptions"),
        Field("amount", SIGNED_MONEY, "Amount billed (negative for a credit note).", required=True),
        Field("currency", Currency(), "ISO 4217 currency.", default="USD"),
        Field("issued_at", Date(), "Issue date.", required=True),
        Field("due_date", Date(), "Due date."),
        Field("paid_at", Date(), "When it was paid in full."),
        Field(
            "status",
            Choice(
                ("open", "paid", "failed", "void", "refunded"),
                {"uncollectible": "failed", "past_due": "failed", "draft": "open"},
            ),
            "open, paid, failed, void, refunded.",
        ),
    ),
)

PAYMENTS = Kind(
    name="payments",
    title="Payment",
    description="An attempt to collect money: succeeded or failed, and why.",
    key="payment_id",
    time_field="attempted_at",
    append_only=True,
    fields=(
        _id("payment_id", "Payment or charge id; derived from the row when absent."),
        _account(),
        _id("invoice_id", "Invoice paid.", references="invoices"),
        Field("amount", SIGNED_MONEY, "Amount attempted.", required=True),
        Field("currency", Currency(), "ISO 4217 currency.", default="USD"),
        Field("attempted_at", Timestamp(), "When the attempt was made.", required=True),
        Field(
            "status",
            Choice(
                ("succeeded", "failed", "refunded"),
                {
                    "paid": "succeeded",
                    "success": "succeeded",
                    "declined": "failed",
                    "error": "failed",
                },
            ),
            "succeeded, failed or refunded.",
            required=True,
        ),
        Field("failure_reason", Text(max_length=500, strip=True), "Why it failed."),
    ),
)

EVENTS = Kind(
    name="events",
    title="Usage event",
    description="One tracked product interaction: who did what, when, how often.",
    key="event_id",
    time_field="timestamp",
    append_only=True,
    extra_field="properties",
    required_columns=(("account_id", "subscription_id", "user_email"), ("event", "feature")),
    derive=(FillFrom("event", "feature"),),
    fields=(
        _id("event_id", "Event id (message id); derived from the row when absent."),
        _account(required=False),
        _id(
            "subscription_id", "Subscription the usage counts against.", references="subscriptions"
        ),
        _id("user_id", "The product user."),
        Field("user_email", Email(), "The user's email (matches the event to an account)."),
        Field("event", Text(max_length=300, strip=True), "Event name.", required=True),
        Field("feature", Text(max_length=300, strip=True), "Feature the event belongs to."),
        Field("timestamp", Timestamp(), "When it happened (stored in UTC).", required=True),
        Field(
            "count", Integer(minimum=0), "How many times (a daily roll-up row has > 1).", default=1
        ),
        Field("properties", JsonObject(), "Anything else; unmapped columns land here."),
    ),
)


def _ticket_status(record: Record) -> None:
    if record.get("status") is None:
        record["status"] = "solved" if record.get("resolved_at") else "open"


TICKETS = Kind(
    name="tickets",
    title="Support ticket",
    description="A support request: priority, timeline, satisfaction and text.",
    key="ticket_id",
    time_field="opened_at",
    derive=(
        duration_pair(
            "first_response_at", "opened_at", "first_response_minutes", timedelta(minutes=1)
        ),
        duration_pair("resolved_at", "opened_at", "resolution_hours", timedelta(hours=1)),
        not_before("first_response_at", "opened_at"),
        not_before("resolved_at", "opened_at"),
        Rule(_ticket_status, uses=("resolved_at",), sets=("status",)),
    ),
    fields=(
        _id("ticket_id", "Ticket number."),
        _account(),
        _id("contact_id", "Requester.", references="contacts"),
        Field(
            "priority",
            Choice(
                ("P1", "P2", "P3", "P4"),
                {
                    "1": "P1",
                    "2": "P2",
                    "3": "P3",
                    "4": "P4",
                    "urgent": "P1",
                    "high": "P2",
                    "normal": "P3",
                    "medium": "P3",
                    "low": "P4",
                },
            ),
            "P1 (urgent) to P4 (low).",
        ),
        Field(
            "status",
            Choice(
                ("new", "open", "pending", "on_hold", "solved", "closed"),
                {"resolved": "solved", "hold": "on_hold"},
            ),
            "Ticket status.",
        ),
        Field("opened_at", Timestamp(), "When it was opened.", required=True),
        Field("first_response_at", Timestamp(), "First agent response."),
        Field(
            "first_response_minutes", Number(minimum=0, maximum=10**7), "Minutes to first response."
        ),
        Field("resolved_at", Timestamp(), "When it was resolved."),
        Field("resolution_hours", Number(minimum=0, maximum=10**6), "Hours to resolution."),
        Field("csat", Number(minimum=1, maximum=5), "Satisfaction rating, 1 to 5."),
        Field("escalated", Boolean(), "Escalated to engineering or management."),
        Field("subject", Text(max_length=1000), "Subject line."),
        Field("body", Text(), "Description text."),
    ),
)


def _response_scale(record: Record) -> None:
    score, survey = record.get("score"), record.get("survey")
    if score is None or survey is None:
        return
    low, high = (0, 10) if survey == "nps" else (1, 5)
    if not low <= score <= high:
        raise RecordError("score", f"{survey} scores run {low} to {high}, got {score:g}")


RESPONSES = Kind(
    name="responses",
    title="Survey response",
    description="An NPS (0-10) or CSAT (1-5) answer with its comment.",
    key="response_id",
    time_field="responded_at",
    append_only=True,
    required_columns=(("account_id", "contact_email"),),
    derive=(Rule(_response_scale, uses=("score", "survey")),),
    fields=(
        _id("response_id", "Response id; derived from the row when absent."),
        _account(required=False),
        _id("contact_id", "Who answered.", references="contacts"),
        Field("contact_email", Email(), "Email of who answered (matches to an account)."),
        Field("survey", Choice(("nps", "csat")), "nps or csat.", required=True),
        Field("score", Number(minimum=0, maximum=10), "The score.", required=True),
        Field("comment", Text(), "Free-text comment."),
        Field("responded_at", Timestamp(), "When they answered.", required=True),
    ),
)

TOUCHPOINTS = Kind(
    name="touchpoints",
    title="Touchpoint",
    description="A conversation with the customer: email, call, meeting or QBR.",
    key="touchpoint_id",
    time_field="occurred_at",
    append_only=True,
    fields=(
        _id("touchpoint_id", "Activity id; derived from the row when absent."),
        _account(),
        Field(
            "type",
            Choice(
                ("email", "call", "meeting", "qbr", "ebr", "note"),
                {"business_review": "qbr", "quarterly_business_review": "qbr"},
            ),
            "Channel.",
            required=True,
        ),
        Field("direction", Choice(("inbound", "outbound")), "Who reached out."),
        Field("occurred_at", Timestamp(), "When it happened.", required=True),
        Field("contact_ids", TextList(), "Contacts who took part."),
        Field("owner", Text(max_length=200, strip=True), "Who on our side."),
        Field("summary", Text(), "Notes."),
    ),
)

MILESTONES = Kind(
    name="milestones",
    title="Milestone",
    description="An onboarding or adoption milestone: planned and achieved dates.",
    key="milestone_id",
    time_field="planned_date",
    fields=(
        _id("milestone_id", "Stable identifier of the milestone."),
        _account(),
        Field("name", Text(max_length=300, strip=True), "What is to be achieved.", required=True),
        Field(
            "category",
            Choice(("onboarding", "adoption", "value")),
            "Kind of milestone.",
            default="onboarding",
        ),
        Field("planned_date", Date(), "When it should be achieved."),
        Field("achieved_date", Date(), "When it was achieved."),
    ),
)

OPPORTUNITIES = Kind(
    name="opportunities",
    title="Expansion opportunity",
    description="A potential upsell, cross-sell or seat expansion with its estimated value.",
    key="opportunity_id",
    time_field="created_at",
    fields=(
        _id("opportunity_id", "CRM opportunity id."),
        _account(),
        Field(
            "type",
            Choice(
                ("upsell", "cross_sell", "seat_expansion", "renewal"),
                {"add_on": "cross_sell", "seats": "seat_expansion"},
            ),
            "Kind of expansion.",
            default="upsell",
        ),
        Field("product", Text(max_length=300, strip=True), "Product or plan."),
        Field("amount", MONEY, "Estimated ARR added."),
        Field(
            "stage",
            Choice(
                ("identified", "qualified", "proposed", "won", "lost"),
                {"closed_won": "won", "closed_lost": "lost", "open": "identified"},
            ),
            "Pipeline stage.",
            default="identified",
        ),
        Field("created_at", Date(), "When it was identified.", required=True),
        Field("closed_at", Date(), "When it was won or lost."),
    ),
)

OUTCOMES = Kind(
    name="outcomes",
    title="Outcome",
    description="What happened at a renewal point: renewed, expanded, contracted, churned.",
    key="outcome_id",
    time_field="date",
    append_only=True,
    fields=(
        _id("outcome_id", "Outcome id; derived from the row when absent."),
        _account(),
        Field(
            "type",
            Choice(
                OUTCOME_TYPES,
                {
                    "churn": "churned",
                    "renewal": "renewed",
                    "expansion": "expanded",
                    "contraction": "contracted",
                    "downgrade": "contracted",
                    "upgrade": "expanded",
                    "reactivation": "reactivated",
                },
            ),
            "What happened.",
            required=True,
        ),
        Field("date", Date(), "When.", required=True),
        Field("arr_change", SIGNED_MONEY, "Change in ARR (negative for churn and contraction)."),
        Field("reason", Text(max_length=300, strip=True), "Reason code."),
        Field("comment", Text(), "Feedback or notes."),
    ),
)

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        ACCOUNTS,
        CONTACTS,
        SUBSCRIPTIONS,
        INVOICES,
        PAYMENTS,
        EVENTS,
        TICKETS,
        RESPONSES,
        TOUCHPOINTS,
        MILESTONES,
        OPPORTUNITIES,
        OUTCOMES,
    )
}


def kind_named(name: str) -> Kind:
    """The kind called ``name`` (a few common synonyms accepted); KeyError names the choices."""
    aliases = {
        "usage": "events",
        "usage_events": "events",
        "nps": "responses",
        "csat": "responses",
        "support_tickets": "tickets",
        "leads": "contacts",
        "expansion": "opportunities",
    }
    key = aliases.get(name.lower(), name.lower())
    if key not in KINDS:
        raise KeyError(f"unknown kind {name!r}; choose one of: {', '.join(KINDS)}")
    return KINDS[key]


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of every kind, with relationships under ``x-relationships``."""
    defs = {kind.name: _kind_schema(kind) for kind in KINDS.values()}
    relationships = [
        {
            "from": f"{kind.name}.{name}",
            "to": f"{target}.{KINDS[target].key}",
            "cardinality": "many-to-one",
        }
        for kind in KINDS.values()
        for name, target in kind.references.items()
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://tenure.dev/schema/record/v{SCHEMA_VERSION}",
        "title": "Tenure account record",
        "version": SCHEMA_VERSION,
        "$defs": defs,
        "x-relationships": relationships,
    }


def _kind_schema(kind: Kind) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for spec in kind.fields:
        prop = spec.type.json_schema() | {"description": spec.description}
        if spec.references:
            prop["x-references"] = f"{spec.references}.{KINDS[spec.references].key}"
        if spec.default is not None:
            prop["default"] = spec.default
        properties[spec.name] = prop
    if kind.extra_field not in properties:
        properties[kind.extra_field] = {
            "type": "object",
            "description": "Columns the record does not name.",
        }
    required = [f.name for f in kind.fields if f.required]
    if not kind.append_only:
        required.insert(0, kind.key)
    return {
        "title": kind.title,
        "description": kind.description,
        "type": "object",
        "x-key": kind.key,
        "x-append-only": kind.append_only,
        "x-time-field": kind.time_field,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
