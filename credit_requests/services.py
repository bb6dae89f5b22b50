"""Credit requests: members ask, owners/admins approve (possibly for less) or reject.

Lock order (the one in DESIGN.md): the request row (or, for a new request, the membership row)
first, then `org_transfer_to_member` locks the membership and the ledger locks the pockets.
Every decision re-reads the request under its lock, so two admins (or approve vs reject) racing on
one request end with exactly one decision and at most one transfer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from core.errors import DomainError
from core.siteurl import absolute_url
from core.tasks import send_email
from credit_requests.models import MAX_PENDING_REQUESTS_PER_MEMBER, CreditRequest, CreditRequestStatus
from orgs.models import Membership, MembershipStatus, Organization, Role
from wallets.errors import MemberNotActive
from wallets.ledger import check_amount
from wallets.models import CreditType, TransferKind
from wallets.services import org_transfer_to_member

log = logging.getLogger("credits.requests")

MAX_REASON = 500
# Members ask. Managers only look at Billing, so they ask too; owners and admins transfer instead.
REQUESTING_ROLES = (Role.MEMBER, Role.MANAGER)


class CreditRequestError(DomainError):
    message = "This credit request could not be processed."


class TooManyPendingRequests(CreditRequestError):
    def __init__(self):
        super().__init__(
            f"You already have {MAX_PENDING_REQUESTS_PER_MEMBER} pending requests in this organization. "
            "Wait for a decision or cancel one first."
        )


class OwnersAndAdminsDoNotRequest(CreditRequestError):
    """Owners and admins hand credits to themselves from Billing; a request would be theirs to approve."""

    def __init__(self, role: str):
        who = "the owner" if role == Role.OWNER else "an admin"
        super().__init__(f"As {who} you can transfer credits to yourself from Billing.")


class OwnRequestNotApprovable(CreditRequestError):
    def __init__(self):
        super().__init__(
            "You can't approve your own credit request: another owner or admin has to decide it. Nothing was moved."
        )


class RequestAlreadyDecided(CreditRequestError):
    def __init__(self, request: CreditRequest):
        super().__init__(f"This request was already {request.get_status_display().lower()}; nothing was changed.")


def _check_reason(reason: str, *, required: bool) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise CreditRequestError("Say briefly what the credits are for.")
    if len(reason) > MAX_REASON:
        raise CreditRequestError(f"Keep the reason under {MAX_REASON} characters.")
    return reason


@dataclass(frozen=True, slots=True)
class RequestSubmitted:
    request: CreditRequest
    replayed: bool = False  # the form was submitted before (same client key): the first request is returned


def credit_request_create(
    *, org: Organization, user, amount: int, reason: str, client_key: UUID | None = None
) -> RequestSubmitted:
    """A member (or manager) asks the org for credits. At most 3 pending per member per org (checked under
    the membership row lock, so parallel submits cannot slip past it). A replayed form returns the first row.
    Owners and admins are refused: they would approve their own request."""
    check_amount(amount)
    reason = _check_reason(reason, required=True)
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(org=org, user=user, status=MembershipStatus.ACTIVE)
            .first()
        )
        if membership is None:
            raise MemberNotActive("You are not (or no longer) a member of this organization.")
        if membership.role not in REQUESTING_ROLES:
            raise OwnersAndAdminsDoNotRequest(membership.role)
        if client_key is not None:
            previous = CreditRequest.objects.filter(membership=membership, client_key=client_key).first()
            if previous is not None:
                return RequestSubmitted(previous, replayed=True)
        pending = CreditRequest.objects.filter(membership=membership, status=CreditRequestStatus.PENDING).count()
        if pending >= MAX_PENDING_REQUESTS_PER_MEMBER:
            raise TooManyPendingRequests()
        try:
            with transaction.atomic():
                request = CreditRequest.objects.create(
                    org=org, membership=membership, requester=user, amount=amount, reason=reason, client_key=client_key
                )
        except IntegrityError:  # pragma: no cover - the membership lock makes this unreachable
            return RequestSubmitted(CreditRequest.objects.get(membership=membership, client_key=client_key), True)
        transaction.on_commit(lambda: notify_admins_of_request(request.pk), robust=True)
    return RequestSubmitted(request)


def _lock_request(*, org: Organization, request_id: int) -> CreditRequest:
    """Lock the request row first (it is the domain row), scoped to the org: another org's request is not found."""
    request = (
        CreditRequest.objects.select_for_update(of=("self",))
        .select_related("membership", "requester")
        .filter(pk=request_id, org=org)
        .first()
    )
    if request is None:
        raise CreditRequest.DoesNotExist
    return request


def credit_request_approve(
    *,
    org: Organization,
    request_id: int,
    actor,
    amount: int | None = None,
    credit_type: CreditType | None = None,
) -> CreditRequest:
    """Grant the request (the asked amount, or less) from the org wallet to the member's Default wallet.

    One transfer, keyed `request:<id>`, linked to the request. Too few credits, a removed member or a
    request someone else already decided raise and leave everything as it was.
    """
    with transaction.atomic():
        request = _lock_request(org=org, request_id=request_id)
        if not request.is_pending:
            raise RequestAlreadyDecided(request)
        if request.requester_id == getattr(actor, "pk", None):  # someone asked as a member, then was promoted
            raise OwnRequestNotApprovable()
        granted = request.amount if amount is None else amount
        check_amount(granted)
        if granted > request.amount:
            raise CreditRequestError(
                f"You can grant at most the {request.amount:,} credits requested (less is fine, more is not)."
            )
        if request.membership.status != MembershipStatus.ACTIVE:
            raise MemberNotActive(
                f"{request.requester.display_name} is no longer a member of this organization, "
                "so this request cannot be approved. Reject it instead."
            )
        credit_type = credit_type or CreditType.objects.get(slug="org-allocated")
        posted = org_transfer_to_member(
            org=org,
            membership_id=request.membership_id,
            credit_type=credit_type,
            amount=granted,
            actor=actor,
            memo=f"Credit request #{request.pk}: {request.reason}"[:500],
            idempotency_key=f"request:{request.pk}",
            kind=TransferKind.REQUEST_APPROVAL,
        )
        request.status = CreditRequestStatus.APPROVED
        request.granted_amount = granted
        request.credit_type = credit_type
        request.transfer = posted.transfer
        request.decided_by = actor
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "granted_amount", "credit_type", "transfer", "decided_by", "decided_at"])
        transaction.on_commit(lambda: notify_requester_of_decision(request.pk), robust=True)
    return request


def credit_request_reject(*, org: Organization, request_id: int, actor, reason: str = "") -> CreditRequest:
    """Decline the request, with an optional reason the member sees on their wallet. Moves nothing."""
    reason = _check_reason(reason, required=False)
    with transaction.atomic():
        request = _lock_request(org=org, request_id=request_id)
        if not request.is_pending:
            raise RequestAlreadyDecided(request)
        request.status = CreditRequestStatus.REJECTED
        request.decision_reason = reason
        request.decided_by = actor
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decision_reason", "decided_by", "decided_at"])
        transaction.on_commit(lambda: notify_requester_of_decision(request.pk), robust=True)
    return request


def credit_request_cancel(*, request_id: int, user, org: Organization | None = None) -> CreditRequest:
    """The author withdraws a pending request (scoped to `org` when given)."""
    with transaction.atomic():
        requests = CreditRequest.objects.select_for_update(of=("self",)).filter(pk=request_id, requester=user)
        if org is not None:
            requests = requests.filter(org=org)
        request = requests.first()
        if request is None:
            raise CreditRequest.DoesNotExist
        if not request.is_pending:
            raise RequestAlreadyDecided(request)
        request.status = CreditRequestStatus.CANCELLED
        request.decided_by = user
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_by", "decided_at"])
    return request


# --- Notifications: enqueued after commit (core.tasks.send_email); a mail failure never undoes a decision. --


def _send(subject: str, body: str, recipients: list[str]) -> None:
    """One task per recipient, so each address is retried (or fails) on its own."""
    for email in recipients:
        send_email.enqueue(subject=subject, body=body, to=[email])


def notify_admins_of_request(request_id: int) -> None:
    request = CreditRequest.objects.select_related("org", "requester").get(pk=request_id)
    admins = list(
        Membership.objects.filter(
            org=request.org_id, status=MembershipStatus.ACTIVE, role__in=[Role.OWNER, Role.ADMIN]
        ).values_list("user__email", flat=True)
    )
    link = absolute_url(reverse("billing:requests", args=[request.org.slug]))
    body = (
        f"{request.requester.display_name} asked {request.org.name} for {request.amount:,} credits.\n\n"
        f"Reason: {request.reason}\n\nApprove or reject it on the Credit Requests tab: {link}\n"
    )
    subject = f"[{request.org.name}] Credit request: {request.amount:,} credits from {request.requester.display_name}"
    _send(subject, body, admins)


def notify_requester_of_decision(request_id: int) -> None:
    request = CreditRequest.objects.select_related("org", "requester", "decided_by").get(pk=request_id)
    link = absolute_url(reverse("wallet"))
    if request.status == CreditRequestStatus.APPROVED:
        subject = f"[{request.org.name}] Approved: {request.granted_amount:,} credits"
        asked = "" if request.granted_amount == request.amount else f" (you asked for {request.amount:,})"
        body = (
            f"{request.org.name} approved your credit request: {request.granted_amount:,} credits{asked} "
            f"are in your Default wallet now.\n\nYour wallet: {link}\n"
        )
    elif request.status == CreditRequestStatus.REJECTED:
        subject = f"[{request.org.name}] Your request for {request.amount:,} credits was rejected"
        why = f"Reason: {request.decision_reason}\n\n" if request.decision_reason else ""
        body = f"{request.org.name} rejected your request for {request.amount:,} credits.\n\n{why}Your wallet: {link}\n"
    else:
        return
    _send(subject, body, [request.requester.email])
