"""POST /usage: charge a member for usage, and record the charge's description and metadata beside it.

The hottest path of the API, so no transaction of its own: one statement (the ledger's drawn form,
`wallets.ledger.post_usage`) charges, writes the usage charge, and writes the (org, Idempotency-Key) record with its
answer (api/idempotency.py, "the answer inside the ledger's statement", says what keeps the idempotency promises).
"""

from __future__ import annotations

import json
from contextlib import nullcontext

import psycopg
from django.db import IntegrityError, connection, transaction
from ninja import Router

import api
from api.auth import require_scope
from api.errors import problem_from_domain_error, problem_instance
from api.idempotency import answer_stored, answered, busy, request_hash, reused_key, store_first_answer
from api.schemas import POST_ERRORS, IdemKey, UsageIn, UsageOut
from api.selectors import member_org_balance
from apikeys.models import ApiKey, ApiKeyScope, UsageCharge
from core.errors import DomainError
from core.sql import load_sql
from orgs.models import Membership
from wallets.errors import IdempotencyConflict, LedgerBusy
from wallets.ledger import Then
from wallets.models import Entry
from wallets.services import member_charge_usage

router = Router(tags=["usage"])

# api/sql/, beside the package: the rows the ledger's statement writes with the charge
_USAGE_CHARGE_ROW = load_sql(api.__file__, "usage_charge_row.sql")
_ANSWER_ROW = load_sql(api.__file__, "idempotency_answer_row.sql")


@router.post("/usage", response={201: UsageOut, **POST_ERRORS}, summary="Charge usage")
def usage_charge(request, payload: UsageIn, idempotency_key: IdemKey):
    """Charge a member for usage: debits their Default wallet (only credits this org gave them; Promo
    first, then Org-allocated; oldest first within a type) into the org's Usage account.
    Not enough credits: 402 with the `shortfall`."""
    key: ApiKey = request.auth
    require_scope(key, ApiKeyScope.CHARGE)
    hashed = request_hash(request)
    rows = Then(
        _ANSWER_ROW,
        {
            "api_key_id": key.pk,
            "usage_metadata": json.dumps(payload.metadata),
            "idem_key": idempotency_key,
            "idem_method": request.method,
            "idem_path": request.path[:200],
            "idem_hash": hashed,
        },
        before=_USAGE_CHARGE_ROW,
    )
    try:
        # Inside a caller's transaction (the tests'), a savepoint keeps it usable after a refused claim.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            charged = member_charge_usage(
                org=key.org,
                membership_id=payload.member_id,
                amount=payload.amount,
                description=payload.description,
                idempotency_key=f"api:{idempotency_key}",
                then=rows,
            )
    except (IntegrityError, psycopg.IntegrityError) as exc:
        if not _key_claimed(exc):
            raise
        # The key has a record already (another request's, or a stored refusal): the statement wrote nothing.
        return answer_stored(key.org_id, idempotency_key, hashed) or busy()
    except IdempotencyConflict:
        raise reused_key() from None
    except LedgerBusy:
        raise
    except DomainError as exc:  # a refusal (402, 404, 422) is the key's answer, as a success is
        problem = problem_from_domain_error(exc)
        return store_first_answer(
            request, idempotency_key, hashed, problem.status, problem.body(problem_instance(request))
        )
    transfer = charged.transfer
    if charged.replayed:
        # The key charged before: its stored answer, or (a record purged after its retention) the answer read back
        # from the ledger.
        stored = answer_stored(key.org_id, idempotency_key, hashed)
        if stored is not None:
            return stored
        return store_first_answer(request, idempotency_key, hashed, 201, _read_back(key, transfer))
    # The answer the statement stored with the charge (api/sql/idempotency_answer_row.sql), byte for byte.
    return answered(201, charged.written["response_body"])


def _key_claimed(exc: Exception) -> bool:
    """The statement hit the idempotency record's unique (org, key): the ledger's statements are psycopg's own
    (wallets.ledger.execute_prepared), Django's wrap it."""
    error = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    return getattr(getattr(error, "diag", None), "constraint_name", None) == "billing_idempotency_one_per_org"


def _body(charge_id, transfer, member_id, amount, description, metadata, drawn, balance) -> dict:
    """UsageOut, for a charge read back from the ledger; a new charge's answer is built by its own statement
    (api/sql/idempotency_answer_row.sql), and tests/api/test_api.py checks the two agree."""
    return {
        "id": charge_id,
        "transfer_id": transfer.pk,
        "member_id": member_id,
        "amount": amount,
        "description": description,
        "metadata": metadata,
        "drawn": [{"credit_type": slug, "amount": credits} for slug, credits in drawn],
        "member_balance": balance,
        "created_at": transfer.created_at.isoformat(),
    }


def _read_back(key: ApiKey, transfer) -> dict:
    """The answer of a charge made before, read back from the ledger: what it drew, and the member's balance now."""
    charge = UsageCharge.objects.get(transfer_id=transfer.pk)
    # Per credit type, in the order the charge drew them (the usage draw order over its debited pockets: earliest
    # expiry, credit type draw order, oldest pocket), as the first answer.
    drawn: dict[str, int] = {}
    debits = (
        Entry.objects.filter(transfer_id=transfer.pk, amount__lt=0)
        .order_by("pocket__expires_on", "credit_type__draw_order", "credit_type_id", "pocket__created_at", "pocket_id")
        .values_list("credit_type__slug", "amount")
    )
    for slug, amount in debits:
        drawn[slug] = drawn.get(slug, 0) - amount
    membership = Membership.objects.select_related("user").get(pk=charge.membership_id)
    balance = member_org_balance(org=key.org, membership=membership)
    return _body(
        charge.pk,
        transfer,
        charge.membership_id,
        charge.amount,
        charge.description,
        charge.metadata,
        list(drawn.items()),
        balance,
    )
