"""Holds (two-phase usage charges): reserve a member's credits, then capture them as usage or void them.

POST /holds, POST /holds/{id}/capture, POST /holds/{id}/void, GET /holds/{id}. The credits move in
holds.services (ledger transfers HOLD, HOLD_CAPTURE, HOLD_RELEASE); a capture also records a UsageCharge,
as POST /usage does, in the same transaction. docs/holds.md.
"""

from __future__ import annotations

from ninja import Router

from api.auth import require_scope
from api.errors import ApiProblem
from api.idempotency import idempotent
from api.schemas import POST_ERRORS, READ_ERRORS, CaptureIn, HoldIn, HoldOut, IdemKey, PathId, Problem
from apikeys.models import ApiKey, ApiKeyScope, UsageCharge
from holds.errors import CaptureTooLarge, HoldError, HoldExpired, HoldKeyReused, HoldNotFound, HoldNotOpen
from holds.models import Hold
from holds.services import capture_hold, create_hold, void_hold

router = Router(tags=["holds"])


def _held(hold: Hold) -> list[dict]:
    """Held credits per credit type, in draw order (a hold's parts are per pocket: credit type and expiry day)."""
    per_type: dict[str, int] = {}
    for part in hold.parts:
        per_type[part[1]] = per_type.get(part[1], 0) + part[2]
    return [{"credit_type": slug, "amount": amount} for slug, amount in per_type.items()]


def _out(hold: Hold, usage_charge_id: int | None = None) -> dict:
    return {
        "id": hold.pk,
        "member_id": hold.membership_id,
        "amount": hold.amount,
        "captured": hold.captured,
        "status": hold.status,
        "description": hold.description,
        "held": _held(hold),
        # datetimes, not strings: the stored POST answer and GET then format them alike (DjangoJSONEncoder)
        "expires_at": hold.expires_at,
        "created_at": hold.created_at,
        "closed_at": hold.closed_at,
        "hold_transfer_id": hold.hold_transfer_id,
        "capture_transfer_id": hold.capture_transfer_id,
        "release_transfer_id": hold.release_transfer_id,
        "usage_charge_id": usage_charge_id,
    }


def _problem(exc: HoldError) -> ApiProblem:
    """A hold refusal as problem details (404 and 422 are stored for the Idempotency-Key; 409 is not)."""
    if isinstance(exc, HoldNotFound):
        return ApiProblem(404, "hold_not_found", exc.message)
    if isinstance(exc, HoldExpired):
        return ApiProblem(409, "hold_expired", exc.message)
    if isinstance(exc, HoldNotOpen):
        return ApiProblem(409, "hold_not_open", exc.message)
    if isinstance(exc, HoldKeyReused):
        return ApiProblem(409, "idempotency_key_reused", exc.message)
    if isinstance(exc, CaptureTooLarge):
        return ApiProblem(422, "capture_exceeds_hold", exc.message)
    return ApiProblem(422, "rejected", exc.message)


@router.post("/holds", response={201: HoldOut, **POST_ERRORS}, summary="Hold credits")
def hold_create(request, payload: HoldIn, idempotency_key: IdemKey):
    """Reserve a member's credits for a job whose cost is known only after it runs: the credits this org gave
    them (Promo first, then Org-allocated; oldest first) leave their wallet for the org's Holds account and
    show there as "held". Not enough credits: 402 with the `shortfall`. Capture or void the hold; after
    `expires_in` seconds (default 1 hour, at most 7 days) it releases itself."""
    key: ApiKey = request.auth
    require_scope(key, ApiKeyScope.CHARGE)

    def run():
        try:
            result = create_hold(
                org=key.org,
                membership_id=payload.member_id,
                amount=payload.amount,
                description=payload.description,
                expires_in=payload.expires_in,
                api_key_id=key.pk,
                idempotency_key=f"api:{idempotency_key}",
            )
        except HoldError as exc:
            raise _problem(exc) from None
        return 201, _out(result.hold)

    return idempotent(request, idempotency_key, run)


@router.post("/holds/{hold_id}/capture", response={200: HoldOut, **POST_ERRORS}, summary="Capture a hold as usage")
def hold_capture(request, hold_id: PathId, payload: CaptureIn, idempotency_key: IdemKey):
    """Charge `amount` (at most the held amount) of an open hold as usage and release the rest to the member,
    in one transaction; records a usage charge like POST /usage. A voided, expired or already captured hold:
    409 (`hold_not_open`, `hold_expired`); more than held: 422 `capture_exceeds_hold`."""
    key: ApiKey = request.auth
    require_scope(key, ApiKeyScope.CHARGE)

    def run():
        try:
            result = capture_hold(org=key.org, hold_id=hold_id, amount=payload.amount)
        except HoldError as exc:
            raise _problem(exc) from None
        hold = result.hold
        # A new capture has no usage charge yet: look one up only when the capture is a replay (one query fewer
        # per capture; the charge's unique transfer_id is the backstop).
        charge = UsageCharge.objects.filter(transfer_id=result.transfer.pk).first() if result.replayed else None
        if charge is None:
            charge = UsageCharge.objects.create(
                org_id=key.org_id,
                membership_id=hold.membership_id,
                transfer_id=result.transfer.pk,
                api_key_id=key.pk,
                amount=hold.captured,
                description=hold.description,
                metadata={"hold_id": hold.pk},
                created_at=result.transfer.created_at,
            )
        return 200, _out(hold, charge.pk)

    return idempotent(request, idempotency_key, run)


@router.post("/holds/{hold_id}/void", response={200: HoldOut, **POST_ERRORS}, summary="Void a hold")
def hold_void(request, hold_id: PathId, idempotency_key: IdemKey):
    """Release all of an open hold back to the member. A captured or expired hold: 409."""
    key: ApiKey = request.auth
    require_scope(key, ApiKeyScope.CHARGE)

    def run():
        try:
            result = void_hold(org=key.org, hold_id=hold_id)
        except HoldError as exc:
            raise _problem(exc) from None
        return 200, _out(result.hold)

    return idempotent(request, idempotency_key, run)


@router.get("/holds/{hold_id}", response={200: HoldOut, 404: Problem, **READ_ERRORS}, summary="A hold")
def hold_detail(request, hold_id: PathId):
    """One hold of this org (another org's hold is a 404)."""
    key: ApiKey = request.auth
    hold = Hold.objects.filter(pk=hold_id, org_id=key.org_id).first()
    if hold is None:
        raise _problem(HoldNotFound())
    charge_id = None
    if hold.capture_transfer_id:
        charge_id = (
            UsageCharge.objects.filter(transfer_id=hold.capture_transfer_id).values_list("pk", flat=True).first()
        )
    return 200, _out(hold, charge_id)
