"""POST /transfers: org credits to one member (a Transfer) or to several (one all-or-nothing Bulk transfer)."""

from __future__ import annotations

from ninja import Router

from api.auth import require_scope
from api.errors import ApiProblem
from api.idempotency import idempotent
from api.schemas import POST_ERRORS, IdemKey, TransferIn, TransferOut
from apikeys.models import ApiKey, ApiKeyScope
from wallets.models import CreditType
from wallets.services import org_bulk_transfer, org_transfer_to_member

router = Router(tags=["transfers"])


@router.post("/transfers", response={201: TransferOut, **POST_ERRORS}, summary="Transfer to members")
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
            posted = org_transfer_to_member(
                org=key.org,
                membership_id=members[0],
                credit_type=credit_type,
                amount=payload.amount,
                actor=key.created_by,
                memo=payload.memo,
                idempotency_key=ledger_key,
                order=payload.order,
            )
        else:
            posted = org_bulk_transfer(
                org=key.org,
                credit_type=credit_type,
                amount_per_member=payload.amount,
                membership_ids=members,
                actor=key.created_by,
                memo=payload.memo,
                idempotency_key=ledger_key,
                order=payload.order,
            )
        transfer = posted.transfer
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

    return idempotent(request, idempotency_key, run)
