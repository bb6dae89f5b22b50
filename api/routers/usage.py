"""POST /usage: charge a member for usage, and record the charge's description and metadata beside it."""

from __future__ import annotations

import json

from ninja import Router

import api
from api.auth import require_scope
from api.idempotency import Write, idempotent
from api.schemas import POST_ERRORS, IdemKey, UsageIn, UsageOut
from api.selectors import member_org_balance
from apikeys.models import ApiKey, ApiKeyScope, UsageCharge
from core.sql import load_sql
from orgs.models import Membership
from wallets.models import CreditType, Entry
from wallets.services import member_charge_usage

router = Router(tags=["usage"])

_INSERT_USAGE_CHARGE = load_sql(api.__file__, "insert_usage_charge.sql")  # api/sql/, beside the package


@router.post("/usage", response={201: UsageOut, **POST_ERRORS}, summary="Charge usage")
def usage_charge(request, payload: UsageIn, idempotency_key: IdemKey):
    """Charge a member for usage: debits their Default wallet (only credits this org gave them; Promo
    first, then Org-allocated; oldest first within a type) into the org's Usage account.
    Not enough credits: 402 with the `shortfall`."""
    key: ApiKey = request.auth
    require_scope(key, ApiKeyScope.CHARGE)

    def run(reserved_id: int):
        charged = member_charge_usage(
            org=key.org,
            membership_id=payload.member_id,
            amount=payload.amount,
            description=payload.description,
            idempotency_key=f"api:{idempotency_key}",
        )
        transfer = charged.transfer
        write = None
        if charged.replayed:
            charge = UsageCharge.objects.get(transfer_id=transfer.pk)
        else:
            charge, write = _usage_charge(key, payload, transfer, reserved_id)
        drawn, balance = list(charged.drawn), charged.member_balance
        if charged.replayed:  # a replay the ledger caught (the stored response was purged): read it back
            slugs = dict(CreditType.objects.values_list("pk", "slug"))
            drawn = [
                (slugs[ct], -amount)
                for ct, amount in Entry.objects.filter(transfer_id=transfer.pk, amount__lt=0)
                .order_by("pk")
                .values_list("credit_type_id", "amount")
            ]
            membership = Membership.objects.select_related("user").get(pk=charge.membership_id)
            balance = member_org_balance(org=key.org, membership=membership)
        body = {
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
        return 201, body, write

    return idempotent(request, idempotency_key, run, reserve=UsageCharge._meta.db_table)


def _usage_charge(key: ApiKey, payload: UsageIn, transfer, charge_id: int) -> tuple[UsageCharge, Write]:
    """The charge's description and metadata beside its Usage transfer, with the id the idempotency claim reserved,
    and the prepared INSERT that writes it in the statement storing the response (the ORM's create() compiled a
    statement per charge on the API's hottest path, and was a round trip of its own)."""
    charge = UsageCharge(
        pk=charge_id,
        org_id=key.org_id,
        membership_id=payload.member_id,
        transfer_id=transfer.pk,
        api_key_id=key.pk,
        amount=payload.amount,
        description=transfer.memo,
        metadata=payload.metadata,
        created_at=transfer.created_at,
    )
    charge._state.adding = False
    params = [
        charge.pk,
        charge.org_id,
        charge.membership_id,
        charge.transfer_id,
        charge.api_key_id,
        charge.amount,
        charge.description,
        json.dumps(charge.metadata),
        charge.created_at,
    ]
    return charge, Write(_INSERT_USAGE_CHARGE, params)
