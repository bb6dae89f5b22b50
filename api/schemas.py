"""What the API takes and returns: the request and response schemas (pydantic, through django-ninja), the
field types and validators they share, and the error responses every operation documents.

The published OpenAPI document is generated from these classes, and the same classes validate each
request, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, get_args, get_origin

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Header, Path, Schema
from pydantic import AfterValidator, BeforeValidator, field_validator

from api.errors import ApiProblem
from api.selectors import CURSOR_PATTERN
from core.validators import PLAIN_TEXT_PATTERN, check_no_control_characters
from wallets.models import MAX_AMOUNT, TransferKind

# ---------------------------------------------------------------------------- field types and validators


def _whole_number(value):
    """JSON integers (and floats with no fraction, which JSON Schema also calls integers); never strings
    or booleans, so "10" and true are refused rather than coerced."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z", re.ASCII)


def _rfc3339(value):
    """An RFC 3339 date-time with an offset; not a bare number (pydantic would read it as a Unix time)."""
    if isinstance(value, datetime):
        return value
    match = RFC3339.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError("use an RFC 3339 date-time with a timezone, e.g. 2026-01-31T00:00:00Z")
    if match.group(1) == "60":  # a leap second: the instant just before the next minute
        value = value[: match.start(1)] + "59.999999" + value[match.end(2) if match.group(2) else match.end(1) :]
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("not a valid date-time") from exc
    # In UTC: PostgreSQL refuses offsets beyond ±15:59 (a 500), which RFC 3339 allows up to ±23:59. An instant
    # before 0001-01-01 or after 9999-12-31 UTC does not fit a datetime: the nearest one compares the same
    # against every stored time.
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if parsed.year == 1 else datetime.max.replace(tzinfo=UTC)


def _query_digits(value):
    """Whole numbers in the path and the query string are ASCII digits: pydantic alone would take '+5',
    '1_000', ' 5 ' and '5.0' (and Python's int() would take '١٢٣'), so /members/1.0/balance would be member 1."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]+", value):
        raise ValueError("must be a whole number written with the digits 0-9")
    return value


def _iso_date(value):
    """A calendar day as YYYY-MM-DD and nothing else (pydantic would also read '0' or a date-time)."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("use a date as YYYY-MM-DD")
    return value


MAX_ID = 2**63 - 1
Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]
# Field before BeforeValidator, so the bounds reach the JSON Schema as minimum/maximum.
Amount = Annotated[
    int, Field(ge=1, le=MAX_AMOUNT, description="Whole credits, 1 to 10^15."), BeforeValidator(_whole_number)
]
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_whole_number)]
QueryCredits = Annotated[int, Field(ge=0, le=MAX_AMOUNT), BeforeValidator(_query_digits)]
# Whole numbers in the path or the query string: ASCII digits only.
StrictInt = Annotated[int, BeforeValidator(_query_digits)]
QueryId = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_query_digits)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID), BeforeValidator(_query_digits)]
Day = Annotated[date, BeforeValidator(_iso_date)]
IdemKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=100,
        pattern=r"^[\x21-\x7E]+$",
        description="Your unique id for this request (e.g. a UUID); replays return the first response.",
    ),
]
# PostgreSQL text and jsonb cannot hold a NUL character: the schema refuses it (422) instead of the database (500).
NO_NUL = r"^[^\x00]*$"
SLUG = r"^[-a-zA-Z0-9_]*$"  # credit type slugs (Django's SlugField); empty means "none given"
# Memos and descriptions: plain text on one line, like the web forms' (core.validators): no line breaks, tabs
# or other control characters (NUL included). The validator refuses them with a message that says so (a 422
# naming the field); the published schema carries the same set as its pattern.
PlainText = Annotated[str, AfterValidator(check_no_control_characters)]
PLAIN_TEXT_SCHEMA = {"pattern": PLAIN_TEXT_PATTERN}
MetadataValue = Annotated[str, Field(pattern=NO_NUL)] | int | Annotated[float, Field(allow_inf_nan=False)] | bool | None


# ---------------------------------------------------------------------------- errors


class Problem(Schema):
    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable, machine-readable error code.")
    message: str = Field(description="Human-readable explanation.")

    model_config = {"extra": "allow"}


# The error responses every operation documents (errors are served by api.app's exception handlers).
READ_ERRORS = {400: Problem, 401: Problem, 403: Problem, 422: Problem, 429: Problem}
POST_ERRORS = {**READ_ERRORS, 402: Problem, 404: Problem, 409: Problem, 503: Problem}


# ---------------------------------------------------------------------------- balances


class MeOut(Schema):
    org: str = Field(description="The key's org (slug).")
    org_name: str
    key_name: str
    key_prefix: str = Field(description="The token's public part, as Settings > API keys shows it.")
    scope: Literal["read", "charge", "transfer"]


class CreditTypeBalance(Schema):
    credit_type: str
    name: str
    balance: int


class OrgBalanceOut(Schema):
    org: str
    total: int
    by_credit_type: list[CreditTypeBalance]


class MemberBalanceOut(Schema):
    member_id: int
    total: int
    by_credit_type: list[CreditTypeBalance]


# ---------------------------------------------------------------------------- members


class MemberFilters(Schema):
    email: str | None = Field(None, max_length=254, pattern=NO_NUL, description="Exact email (case-insensitive).")
    status: Literal["active", "suspended", "removed"] | None = None
    cursor: str | None = Field(None, pattern=r"^[0-9]{1,18}$", description="next_cursor from the previous page.")
    limit: StrictInt = Field(50, ge=1, le=200)


class MemberOut(Schema):
    id: int
    email: str
    name: str
    role: str
    status: str


class MemberPage(Schema):
    items: list[MemberOut]
    next_cursor: str | None


# ---------------------------------------------------------------------------- transactions


class TransactionFilters(Schema):
    """The Transactions page's filters (reporting.filters.TransactionFilter), plus exact instants and a
    member id. Filters combine (AND); a range that is empty (from after to, min above max) matches nothing."""

    date_from: Day | None = Field(
        None, alias="from", description=f"First calendar day, inclusive (YYYY-MM-DD, {settings.TIME_ZONE})."
    )
    date_to: Day | None = Field(
        None, alias="to", description=f"Last calendar day, inclusive (YYYY-MM-DD, {settings.TIME_ZONE})."
    )
    since: Timestamp | None = Field(None, description="Created at or after (ISO 8601, with a timezone).")
    until: Timestamp | None = Field(None, description="Created before (ISO 8601, with a timezone).")
    kind: list[TransferKind] | None = Field(
        None, description="Transfer kind, e.g. usage, transfer, purchase; repeat for several (kind=a&kind=b)."
    )
    member: str | None = Field(
        None,
        max_length=254,
        pattern=NO_NUL,
        description="Only transfers touching this member's Default wallet, by email.",
    )
    member_id: QueryId | None = Field(
        None, description="Only transfers touching this member's Default wallet, by member id."
    )
    credit_type: str | None = Field(
        None, max_length=40, pattern=SLUG, description="Credit type slug: org-allocated, promo."
    )
    amount_min: QueryCredits | None = Field(None, alias="min", description="At least this many credits moved.")
    amount_max: QueryCredits | None = Field(None, alias="max", description="At most this many credits moved.")
    cursor: str | None = Field(None, pattern=CURSOR_PATTERN, description="next_cursor from the previous page.")
    limit: StrictInt = Field(50, ge=1, le=200)


class UsageInfo(Schema):
    member_id: int
    description: str
    metadata: dict[str, Any]


class TransactionOut(Schema):
    id: int
    kind: str
    amount: int
    memo: str
    actor: str | None
    created_at: datetime
    usage: UsageInfo | None


class TransactionPage(Schema):
    items: list[TransactionOut]
    next_cursor: str | None


# ---------------------------------------------------------------------------- transfers


class TransferIn(Schema):
    members: list[Id] = Field(min_length=1, max_length=1000, description="Membership ids.")
    amount: Amount = Field(description="Credits for each member.")
    credit_type: str = Field("org-allocated", max_length=40, pattern=SLUG)
    memo: PlainText = Field("", max_length=500, json_schema_extra=PLAIN_TEXT_SCHEMA)
    order: Literal["soonest", "latest"] = Field(
        "soonest",
        description="Which expiring credits leave the org wallet first: the soonest-expiring (default) or the "
        "latest-expiring. Each keeps its expiry day in the member's wallet.",
    )

    model_config = {"extra": "forbid"}


class TransferOut(Schema):
    transfer_id: int
    kind: str
    credit_type: str
    amount_per_member: int
    total: int
    members: list[int]
    memo: str
    created_at: datetime


# ---------------------------------------------------------------------------- usage


class UsageIn(Schema):
    member_id: Id = Field(description="The membership id of the member to charge.")
    amount: Amount
    description: PlainText = Field("", max_length=500, json_schema_extra=PLAIN_TEXT_SCHEMA)
    metadata: dict[Annotated[str, Field(max_length=64)], MetadataValue] = Field(
        default_factory=dict,
        description="Up to 50 keys, stored with the charge and returned as is.",
        # pydantic would put a key pattern in patternProperties, which does not restrict keys
        json_schema_extra=lambda schema: schema.setdefault("propertyNames", {}).update(pattern=NO_NUL),
    )

    model_config = {"extra": "forbid"}

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict) -> dict:
        if len(value) > 50:
            raise ValueError("at most 50 metadata keys")
        if any("\x00" in key for key in value):
            raise ValueError("metadata keys cannot contain NUL characters")
        if len(json.dumps(value)) > 8000:
            raise ValueError("metadata is too large (8 KB at most)")
        try:  # a lone surrogate ("\ud800") is valid JSON text but not Unicode: PostgreSQL's jsonb refuses it
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ValueError("metadata must be valid Unicode text") from None
        return value


class DrawOut(Schema):
    credit_type: str
    amount: int


class UsageOut(Schema):
    id: int
    transfer_id: int
    member_id: int
    amount: int
    description: str
    metadata: dict[str, Any]
    drawn: list[DrawOut]
    member_balance: dict[str, int]
    created_at: datetime


# ---------------------------------------------------------------------------- holds (docs/holds.md)

HOLD_DEFAULT_EXPIRES_IN = 3600  # one hour (holds.models.DEFAULT_EXPIRES_IN)
HOLD_MAX_EXPIRES_IN = 7 * 24 * 3600  # seven days (holds.models.MAX_EXPIRES_IN)


class HoldIn(Schema):
    member_id: Id = Field(description="The membership id of the member whose credits to reserve.")
    amount: Amount
    description: PlainText = Field("", max_length=500, json_schema_extra=PLAIN_TEXT_SCHEMA)
    expires_in: Annotated[
        int,
        Field(
            ge=1,
            le=HOLD_MAX_EXPIRES_IN,
            description="Seconds until the hold releases itself (default 1 hour, at most 7 days).",
        ),
        BeforeValidator(_whole_number),
    ] = HOLD_DEFAULT_EXPIRES_IN

    model_config = {"extra": "forbid"}


class CaptureIn(Schema):
    amount: Amount = Field(description="Credits to charge as usage: at most the held amount; the rest is released.")

    model_config = {"extra": "forbid"}


class HoldOut(Schema):
    id: int
    member_id: int
    amount: int = Field(description="Credits held.")
    captured: int = Field(description="Credits charged as usage (0 until captured).")
    status: Literal["open", "captured", "voided", "expired"]
    description: str
    held: list[DrawOut] = Field(description="What was held of each credit type, in draw order.")
    expires_at: datetime
    created_at: datetime
    closed_at: datetime | None
    hold_transfer_id: int
    capture_transfer_id: int | None
    release_transfer_id: int | None
    usage_charge_id: int | None = Field(None, description="The usage charge a capture recorded.")


# ---------------------------------------------------------------------------- query strings


def _is_list(annotation) -> bool:
    """list[X] or list[X] | None."""
    return list in (get_origin(annotation), *(get_origin(a) for a in get_args(annotation)))


def only_known_params(request: HttpRequest, filters: type[Schema]) -> None:
    """A misspelt filter (`kidn=usage`) is an error, not a silently unfiltered list; only list filters
    (`kind=usage&kind=refund`) may be repeated."""
    fields = filters.model_fields
    names = {f.alias or name: f for name, f in fields.items()}
    unknown = sorted(set(request.GET) - set(names))
    if unknown:
        raise ApiProblem(422, "unknown_parameter", f"Unknown query parameter: {unknown[0]}.", parameters=unknown)
    lists = {alias for alias, f in names.items() if _is_list(f.annotation)}
    repeated = sorted(name for name in request.GET if name not in lists and len(request.GET.getlist(name)) > 1)
    if repeated:
        raise ApiProblem(422, "repeated_parameter", f"Give {repeated[0]} once.", parameters=repeated)
