"""The versioned JSON API: /api/v1/ (django-ninja). OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs.

Views stay thin: authenticate (api.auth), check the scope, call one domain verb or selector.
Every POST runs through `_idempotent`, which stores the first response per (org, Idempotency-Key).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, get_args, get_origin

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Header, NinjaAPI, Query, Schema
from ninja import Path as PathParam
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import Swagger
from pydantic import BeforeValidator, field_validator

from api.auth import ApiKeyAuth, require_scope
from api.errors import PROBLEM_CONTENT_TYPE, ApiProblem, problem_from_wallet_error, problem_response
from api.selectors import (
    CURSOR_PATTERN,
    BadCursor,
    decode_cursor,
    encode_cursor,
    member_org_balance,
)
from apikeys.models import ApiKey, ApiKeyScope, IdempotencyRecord, UsageCharge
from orgs.models import Membership, MembershipStatus
from reporting import transactions as tx
from wallets.errors import IdempotencyConflict, LedgerBusy, WalletError
from wallets.ledger import fetch_hot
from wallets.models import MAX_AMOUNT, CreditType, Entry, TransferKind, Wallet
from wallets.selectors import wallet_balance
from wallets.services import member_charge_usage, org_bulk_transfer, org_transfer_to_member

DESCRIPTION = """
Spend and move an organization's credits from code.

**Auth**: `Authorization: Bearer <API key>`; org admins create keys on Settings > API keys. Every key reads;
`charge` keys also charge usage, `transfer` keys also transfer org credits to members.

**Idempotency**: every POST needs an `Idempotency-Key` header (1-100 characters). The same key with the
same body returns the first response (status and body) and moves nothing; the same key with a different
body gets a 409 Conflict. Keys are kept at least 24 hours.

**Errors** are RFC 9457 problem details (`application/problem+json`) with a stable `code` and a human
`message`.
"""


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


MAX_ID = 2**63 - 1
Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]
# Field before BeforeValidator, so the bounds reach the JSON Schema as minimum/maximum.
Amount = Annotated[
    int, Field(ge=1, le=MAX_AMOUNT, description="Whole credits, 1 to 10^15."), BeforeValidator(_whole_number)
]
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_whole_number)]
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
MetadataValue = Annotated[str, Field(pattern=NO_NUL)] | int | Annotated[float, Field(allow_inf_nan=False)] | bool | None


class Problem(Schema):
    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable, machine-readable error code.")
    message: str = Field(description="Human-readable explanation.")

    model_config = {"extra": "allow"}


class CreditTypeBalance(Schema):
    credit_type: str
    name: str
    balance: int


class OrgBalanceOut(Schema):
    org: str
    total: int
    by_credit_type: list[CreditTypeBalance]


class MemberOut(Schema):
    id: int
    email: str
    name: str
    role: str
    status: str


class MemberPage(Schema):
    items: list[MemberOut]
    next_cursor: str | None


class MemberBalanceOut(Schema):
    member_id: int
    total: int
    by_credit_type: list[CreditTypeBalance]


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


class TransferIn(Schema):
    members: list[Id] = Field(min_length=1, max_length=1000, description="Membership ids.")
    amount: Amount = Field(description="Credits for each member.")
    credit_type: str = Field("org-allocated", max_length=40, pattern=SLUG)
    memo: str = Field("", max_length=500, pattern=NO_NUL)

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


class UsageIn(Schema):
    member_id: Id = Field(description="The membership id of the member to charge.")
    amount: Amount
    description: str = Field("", max_length=500, pattern=NO_NUL)
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


class ProblemAwareAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        """Error responses are documented as application/problem+json, as they are served."""
        schema = super().get_openapi_schema(**kwargs)
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if str(status).startswith(("4", "5")) and "application/json" in content:
                        response["content"] = {PROBLEM_CONTENT_TYPE: content.pop("application/json")}
        return schema


api = ProblemAwareAPI(
    title="Credits API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    auth=ApiKeyAuth(),
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": False}),
)

READ_ERRORS = {400: Problem, 401: Problem, 403: Problem, 422: Problem, 429: Problem}
POST_ERRORS = {**READ_ERRORS, 402: Problem, 404: Problem, 409: Problem, 503: Problem}


# ---------------------------------------------------------------------------- error handling


def _instance(request: HttpRequest) -> str:
    return request.path


@api.exception_handler(ApiProblem)
def _on_problem(request, exc: ApiProblem):
    return problem_response(exc, _instance(request))


@api.exception_handler(WalletError)
def _on_wallet_error(request, exc: WalletError):
    return problem_response(problem_from_wallet_error(exc), _instance(request))


@api.exception_handler(ValidationError)
def _on_validation(request, exc: ValidationError):
    errors = [
        {"loc": [str(p) for p in e.get("loc", [])], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors
    ]
    fields = {e["loc"][-1] if e["loc"] else "" for e in errors}
    if "Idempotency-Key" in fields:
        code, message = "idempotency_key_required", "Send an Idempotency-Key header of 1-100 visible characters."
    elif "amount" in fields:
        code, message = "invalid_amount", "Amount must be a whole number of credits from 1 to 10^15."
    else:
        first = errors[0] if errors else {"loc": [], "msg": "Invalid request."}
        where = ".".join(first["loc"][1:]) or "request"
        code, message = "validation_error", f"{where}: {first['msg']}"
    return problem_response(ApiProblem(422, code, message, errors=errors), _instance(request))


@api.exception_handler(AuthenticationError)
def _on_auth(request, exc):
    problem = ApiProblem(401, "unauthenticated", "Send a valid API key.", headers={"WWW-Authenticate": "Bearer"})
    return problem_response(problem, _instance(request))


@api.exception_handler(HttpError)
def _on_http_error(request, exc: HttpError):
    code = {400: "malformed_request", 404: "not_found"}.get(exc.status_code, "error")
    return problem_response(ApiProblem(exc.status_code, code, str(exc)), _instance(request))


@api.exception_handler(Http404)
def _on_404(request, exc):
    return problem_response(ApiProblem(404, "not_found", "Not found."), _instance(request))


# ---------------------------------------------------------------------------- helpers


def _balance_rows(by_slug: dict[str, int]) -> list[dict]:
    names = dict(CreditType.objects.values_list("slug", "name"))
    return [{"credit_type": slug, "name": names.get(slug, slug), "balance": bal} for slug, bal in by_slug.items()]


def _member(key: ApiKey, member_id: int, *, active_only: bool = False) -> Membership:
    """A membership of the key's org, or 404: another org's members do not exist for this key."""
    qs = Membership.objects.select_related("user").filter(org_id=key.org_id, pk=member_id)
    if active_only:
        qs = qs.filter(status=MembershipStatus.ACTIVE)
    membership = qs.first()
    if membership is None:
        raise ApiProblem(404, "member_not_found", "No such member in this organization.", member_id=member_id)
    return membership


def _request_hash(request: HttpRequest) -> str:
    try:
        body: Any = json.loads(request.body or b"null")
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = request.body
    return hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b"\n" + canonical).hexdigest()


def _json(status: int, content: str, replayed: bool = False) -> HttpResponse:
    content_type = PROBLEM_CONTENT_TYPE if status >= 400 else "application/json"
    response = HttpResponse(content, status=status, content_type=content_type)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


_CLAIM_SQL = """
INSERT INTO billing_idempotencyrecord
    (org_id, api_key_id, key, method, path, request_hash, status_code, response_body, created_at)
VALUES (%s, %s, %s, %s, %s, %s, NULL, '', %s)
ON CONFLICT (org_id, key) DO UPDATE SET key = EXCLUDED.key
RETURNING id, request_hash, status_code, response_body
"""


_STORE_RESPONSE_SQL = (
    "UPDATE billing_idempotencyrecord SET status_code = %s, response_body = %s WHERE id = %s RETURNING id"
)


def _claim_idempotency_record(key: ApiKey, idempotency_key: str, request, request_hash: str) -> IdempotencyRecord:
    """Insert the record, or lock the one that exists, in one statement (one round trip).

    ON CONFLICT DO UPDATE waits for a racer that holds the same key to commit, then locks and returns
    its row, so the caller sees either its own fresh row or the racer's finished response."""
    params = [key.org_id, key.pk, idempotency_key, request.method, request.path[:200], request_hash, timezone.now()]
    ((pk, stored_hash, status_code, body),) = fetch_hot(_CLAIM_SQL, params)
    return IdempotencyRecord(
        pk=pk,
        org_id=key.org_id,
        key=idempotency_key,
        request_hash=stored_hash,
        status_code=status_code,
        response_body=body,
    )


def _idempotent(request: HttpRequest, idempotency_key: str, run) -> HttpResponse:
    """Run `run() -> (status, body)` once per (org, Idempotency-Key).

    The record is inserted (or, if a racer holds it, waited for on the unique index) and locked in the
    same transaction as the movement, so either both commit or neither does. Outcomes that describe the
    request (success, 402, 404, 422) are stored and replayed; transient ones (409, 503) are not.
    """
    key: ApiKey = request.auth
    request_hash = _request_hash(request)
    instance = _instance(request)
    with transaction.atomic():
        record = _claim_idempotency_record(key, idempotency_key, request, request_hash)
        if record.request_hash != request_hash:
            raise ApiProblem(
                409,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request. Use a new key.",
            )
        if record.status_code is not None:
            return _json(record.status_code, record.response_body, replayed=True)
        try:
            # No savepoint of its own: the services roll their own writes back (atomic blocks) when they
            # refuse, and anything else unexpected rolls the whole request back, record included.
            status, body = run()
        except (LedgerBusy, IdempotencyConflict):
            raise
        except WalletError as exc:
            problem = problem_from_wallet_error(exc)
            status, body = problem.status, problem.body(instance)
        except ApiProblem as exc:
            if exc.status not in (402, 404, 422):
                raise
            status, body = exc.status, exc.body(instance)
        content = json.dumps(body, cls=DjangoJSONEncoder)
        fetch_hot(_STORE_RESPONSE_SQL, [status, content, record.pk])
    return _json(status, content)


# ---------------------------------------------------------------------------- endpoints


@api.get("/balance", response={200: OrgBalanceOut, **READ_ERRORS}, tags=["balances"], summary="Org balance")
def org_balance(request):
    """The org wallet's balance, total and by credit type."""
    key: ApiKey = request.auth
    balance = wallet_balance(Wallet.objects.for_org(key.org))
    return {
        "org": key.org.slug,
        "total": balance.total,
        "by_credit_type": [
            {"credit_type": b.credit_type.slug, "name": b.credit_type.name, "balance": b.balance}
            for b in balance.by_type
        ],
    }


class MemberFilters(Schema):
    email: str | None = Field(None, max_length=254, pattern=NO_NUL, description="Exact email (case-insensitive).")
    status: Literal["active", "suspended", "removed"] | None = None
    cursor: str | None = Field(None, pattern=r"^[0-9]{1,18}$", description="next_cursor from the previous page.")
    limit: int = Field(50, ge=1, le=200)


@api.get("/members", response={200: MemberPage, **READ_ERRORS}, tags=["members"], summary="List members")
def member_list(request, filters: Query[MemberFilters]):
    """The org's members, by id; find one by email to get the id the other calls take."""
    _only_known_params(request, MemberFilters)
    key: ApiKey = request.auth
    qs = Membership.objects.select_related("user").filter(org_id=key.org_id)
    if filters.email:
        qs = qs.filter(user__email__iexact=filters.email)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.cursor:
        qs = qs.filter(pk__gt=int(filters.cursor))
    rows = list(qs.order_by("pk")[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return {
        "items": [
            {"id": m.pk, "email": m.user.email, "name": m.user.name, "role": m.role, "status": m.status} for m in rows
        ],
        "next_cursor": str(rows[-1].pk) if more else None,
    }


@api.get(
    "/members/{member_id}/balance",
    response={200: MemberBalanceOut, 404: Problem, **READ_ERRORS},
    tags=["balances"],
    summary="Member balance",
)
def member_balance(request, member_id: int = PathParam(..., ge=1, le=MAX_ID)):
    """What the member holds from this org, by credit type: what usage charged by this org can spend."""
    key: ApiKey = request.auth
    membership = _member(key, member_id)
    by_slug = member_org_balance(org=key.org, membership=membership)
    return {"member_id": membership.pk, "total": sum(by_slug.values()), "by_credit_type": _balance_rows(by_slug)}


def _query_digits(value):
    """Whole numbers in the query string are ASCII digits: pydantic alone would take '+5', '1_000', ' 5 ' and
    '5.0' (and Python's int() would take '١٢٣')."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]+", value):
        raise ValueError("must be a whole number written with the digits 0-9")
    return value


def _iso_date(value):
    """A calendar day as YYYY-MM-DD and nothing else (pydantic would also read '0' or a date-time)."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("use a date as YYYY-MM-DD")
    return value


QueryCredits = Annotated[int, Field(ge=0, le=MAX_AMOUNT), BeforeValidator(_query_digits)]
Day = Annotated[date, BeforeValidator(_iso_date)]


class TransactionFilters(Schema):
    """The Transactions page's filters (reporting.transactions.TransactionFilter), plus exact instants and a
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
    member_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Only transfers touching this member's Default wallet, by member id."
    )
    credit_type: str | None = Field(
        None, max_length=40, pattern=SLUG, description="Credit type slug: org-allocated, promo."
    )
    amount_min: QueryCredits | None = Field(None, alias="min", description="At least this many credits moved.")
    amount_max: QueryCredits | None = Field(None, alias="max", description="At most this many credits moved.")
    cursor: str | None = Field(None, pattern=CURSOR_PATTERN, description="next_cursor from the previous page.")
    limit: int = Field(50, ge=1, le=200)


def _is_list(annotation) -> bool:
    """list[X] or list[X] | None."""
    return list in (get_origin(annotation), *(get_origin(a) for a in get_args(annotation)))


def _only_known_params(request: HttpRequest, filters: type[Schema]) -> None:
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


@api.get(
    "/transactions",
    response={200: TransactionPage, 404: Problem, **READ_ERRORS},
    tags=["transactions"],
    summary="List transactions",
)
def transaction_list(request, filters: Query[TransactionFilters]):
    """The org's transfers, newest first, paginated by an opaque keyset cursor: the Transactions page's
    filters and keyset order (reporting.transactions), so new transfers never shift a page."""
    _only_known_params(request, TransactionFilters)
    key: ApiKey = request.auth
    wallet_ids = set()
    if filters.member_id is not None:
        wallet_ids.add(Wallet.objects.for_user(_member(key, filters.member_id).user).pk)
    if filters.member:
        wallet_id = tx.member_wallet_id(key.org, filters.member)
        if wallet_id is None:
            raise ApiProblem(404, "member_not_found", "No such member in this organization.", member=filters.member)
        wallet_ids.add(wallet_id)
    credit_type = None
    if filters.credit_type:
        credit_type = CreditType.objects.filter(slug=filters.credit_type).first()
        if credit_type is None:
            raise ApiProblem(404, "unknown_credit_type", f"No credit type “{filters.credit_type}”.")
    at = None
    if filters.cursor:
        try:
            at = decode_cursor(filters.cursor)
        except BadCursor as exc:
            raise ApiProblem(422, "invalid_cursor", str(exc)) from exc
    if len(wallet_ids) > 1:  # member and member_id name two different people: no transfer is both's
        return {"items": [], "next_cursor": None}
    filt = tx.TransactionFilter(
        date_from=filters.date_from,
        date_to=filters.date_to,
        kinds=tuple(dict.fromkeys(filters.kind or ())),
        member_wallet_id=next(iter(wallet_ids), None),
        credit_type=credit_type,
        amount_min=filters.amount_min,
        amount_max=filters.amount_max,
    )
    qs = tx.filter_transfers(key.org, filt)
    if filters.since is not None:
        qs = qs.filter(created_at__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(created_at__lt=filters.until)
    rows = list(tx.keyset(qs, "older", at).select_related("actor", "usage_charge")[: filters.limit + 1])
    last = rows[filters.limit - 1] if len(rows) > filters.limit else None  # more rows follow this one
    next_cursor = encode_cursor(last.created_at, last.pk) if last else None
    items = []
    for t in rows[: filters.limit]:
        usage = getattr(t, "usage_charge", None)
        items.append(
            {
                "id": t.pk,
                "kind": t.kind,
                "amount": t.amount,
                "memo": t.memo,
                "actor": t.actor.email if t.actor_id else None,
                "created_at": t.created_at,
                "usage": (
                    {"member_id": usage.membership_id, "description": usage.description, "metadata": usage.metadata}
                    if usage
                    else None
                ),
            }
        )
    return {"items": items, "next_cursor": next_cursor}


@api.post(
    "/transfers",
    response={201: TransferOut, **POST_ERRORS},
    tags=["transfers"],
    summary="Transfer to members",
)
def transfer_create(request, payload: TransferIn, idempotency_key: IdemKey):
    """Move credits from the org wallet to one or many members' Default wallets (the same amount each),
    as one all-or-nothing transfer."""
    key: ApiKey = request.auth
    require_scope(key, ApiKeyScope.TRANSFER)

    def run():
        credit_type = CreditType.objects.filter(slug=payload.credit_type).first()
        if credit_type is None:
            raise ApiProblem(404, "unknown_credit_type", f"No credit type “{payload.credit_type}”.")
        members = sorted(set(payload.members))
        ledger_key = f"api:{idempotency_key}"
        if len(members) == 1:
            transfer = org_transfer_to_member(
                org=key.org,
                membership_id=members[0],
                credit_type=credit_type,
                amount=payload.amount,
                actor=key.created_by,
                memo=payload.memo,
                idempotency_key=ledger_key,
            )
        else:
            transfer = org_bulk_transfer(
                org=key.org,
                credit_type=credit_type,
                amount_per_member=payload.amount,
                membership_ids=members,
                actor=key.created_by,
                memo=payload.memo,
                idempotency_key=ledger_key,
            )
        return 201, {
            "transfer_id": transfer.pk,
            "kind": transfer.kind,
            "credit_type": credit_type.slug,
            "amount_per_member": payload.amount,
            "total": payload.amount * len(members),
            "members": members,
            "memo": transfer.memo,
            "created_at": transfer.created_at.isoformat(),
        }

    return _idempotent(request, idempotency_key, run)


_INSERT_USAGE_CHARGE = """
INSERT INTO billing_usagecharge
    (org_id, membership_id, transfer_id, api_key_id, amount, description, metadata, created_at)
VALUES (%s, %s, %s, %s, %s, %s, {metadata}, %s)
RETURNING id
"""


def _record_usage_charge(key: ApiKey, payload, transfer) -> UsageCharge:
    """The charge's description and metadata beside its Usage transfer: one prepared INSERT (the ORM's
    create() compiled a statement per charge on the API's hottest path)."""
    metadata_sql = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    charge = UsageCharge(
        org_id=key.org_id,
        membership_id=payload.member_id,
        transfer_id=transfer.pk,
        api_key_id=key.pk,
        amount=payload.amount,
        description=transfer.memo,
        metadata=payload.metadata,
        created_at=transfer.created_at,
    )
    ((charge.pk,),) = fetch_hot(
        _INSERT_USAGE_CHARGE.format(metadata=metadata_sql),
        [
            charge.org_id,
            charge.membership_id,
            charge.transfer_id,
            charge.api_key_id,
            charge.amount,
            charge.description,
            json.dumps(charge.metadata),
            charge.created_at,
        ],
    )
    charge._state.adding = False
    return charge


@api.post("/usage", response={201: UsageOut, **POST_ERRORS}, tags=["usage"], summary="Charge usage")
def usage_charge(request, payload: UsageIn, idempotency_key: IdemKey):
    """Charge a member for usage: debits their Default wallet (only credits this org gave them; Promo
    first, then Org-allocated; oldest first within a type) into the org's Usage account.
    Not enough credits: 402 with the `shortfall`."""
    key: ApiKey = request.auth
    require_scope(key, ApiKeyScope.CHARGE)

    def run():
        transfer = member_charge_usage(
            org=key.org,
            membership_id=payload.member_id,
            amount=payload.amount,
            description=payload.description,
            idempotency_key=f"api:{idempotency_key}",
        )
        if getattr(transfer, "replayed", False):
            charge = UsageCharge.objects.get(transfer_id=transfer.pk)
        else:
            charge = _record_usage_charge(key, payload, transfer)
        drawn = getattr(transfer, "drawn", None)
        balance = getattr(transfer, "member_balance", None)
        if drawn is None:  # a replay the ledger caught (the stored response was purged): read it back
            slugs = dict(CreditType.objects.values_list("pk", "slug"))
            drawn = [
                (slugs[ct], -amount)
                for ct, amount in Entry.objects.filter(transfer_id=transfer.pk, amount__lt=0)
                .order_by("pk")
                .values_list("credit_type_id", "amount")
            ]
            membership = Membership.objects.select_related("user").get(pk=charge.membership_id)
            balance = member_org_balance(org=key.org, membership=membership)
        return 201, {
            "id": charge.pk,
            "transfer_id": transfer.pk,
            "member_id": charge.membership_id,
            "amount": charge.amount,
            "description": charge.description,
            "metadata": charge.metadata,
            "drawn": [{"credit_type": slug, "amount": amount} for slug, amount in drawn],
            "member_balance": balance,
            "created_at": charge.created_at.isoformat(),
        }

    return _idempotent(request, idempotency_key, run)
