"""Members, invitations, seats and Member defaults: the workflows that move credits on their own.

Every credit movement here goes through the one ledger primitive (`wallets.ledger.post_transfer`, directly or
via `wallets.services.org_transfer_to_member`), under the shared lock order:

    invitation row -> organization row (seats are counted under it) -> membership row -> pockets by id.

Idempotency keys come from the domain rows (`seat:<membership>:<n>`, `invite:<invitation>`,
`default:<invitation>`, `return:<membership>:<n>`), so a replay never moves credits twice.
"""

from __future__ import annotations

import csv
import io
import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from core.errors import DomainError
from core.money import credits_and_dollars
from core.tasks import send_email
from orgs.models import (
    INVITE_ALLOCATION_MAX,
    Invitation,
    InvitationStatus,
    MemberDefaults,
    Membership,
    MembershipStatus,
    Organization,
    Role,
    User,
)
from orgs.services import membership_add, user_create
from wallets.errors import InsufficientCredits, LedgerBusy, MemberNotActive
from wallets.ledger import Leg, post_transfer
from wallets.models import CreditType, Pocket, Transfer, TransferKind, Wallet
from wallets.outstanding import OutstandingBalanceDue
from wallets.results import Posted
from wallets.services import lock_active_membership, org_transfer_to_member

log = logging.getLogger("credits.members")

ASSIGNABLE_ROLES = (Role.MEMBER, Role.MANAGER, Role.ADMIN)
BULK_INVITE_MAX_ROWS = 100
BULK_INVITE_MAX_BYTES = 64 * 1024
_SIGNER_SALT = "orgs.invitation"


class MemberError(DomainError):
    message = "That change could not be made."


class InvitationInvalid(MemberError):
    message = "This invitation link is not valid. Ask an admin of the organization for a new one."


class InvitationUsed(InvitationInvalid):
    """Someone already accepted it: to a second click or a racing sign-up, the answer is "sign in"."""

    message = "This invitation has already been used: it was accepted. If that was you, sign in to continue."


class AccountExists(MemberError):
    """The invitee's address got an account meanwhile (another tab, a sign-up): they sign in to join."""

    message = "There is already an account for this address. Sign in, then open the invitation link again."


class NoFreeSeat(MemberError):
    pass


class SeatCreditsShort(MemberError):
    pass


# ---------------------------------------------------------------- roles and removal


def membership_change_role(*, org: Organization, membership_id: int, role: str, actor: User) -> Membership:
    """Give a member another role (Member, Manager or Admin). The owner's role does not change here."""
    if role not in ASSIGNABLE_ROLES:
        raise MemberError("Pick a role: Member, Manager or Admin.")
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk=membership_id, org=org)
            .exclude(status=MembershipStatus.REMOVED)
            .first()
        )
        if membership is None:
            raise MemberNotActive()
        if membership.role == Role.OWNER:
            raise MemberError("The owner's role cannot be changed.")
        if membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
            log.info("member_role org=%s membership=%s role=%s actor=%s", org.pk, membership.pk, role, actor.pk)
    return membership


def returnable_credits(*, org: Organization, user: User) -> int:
    """Unspent credits this org gave the user (their Default wallet's pockets funded by this org)."""
    total = Pocket.objects.filter(wallet__user=user, funding_org=org, balance__gt=0).aggregate(s=Sum("balance"))["s"]
    return int(total or 0)


@dataclass(frozen=True, slots=True)
class Removal:
    membership: Membership
    transfer: Transfer | None  # the Return, or None when the member held nothing from this org
    returned: int
    replayed: bool = False  # the Return's key was used before: nothing moved this time


def member_remove(*, org: Organization, membership_id: int, actor: User | None) -> Removal:
    """Remove a member and, in the same transaction, return every unspent credit this org gave them.

    The membership row is locked first: a transfer to this member in flight (which locks the same row)
    either commits before, and its credits are returned here, or runs after and finds the member removed.
    """
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk=membership_id, org=org)
            .first()
        )
        if membership is None or membership.status == MembershipStatus.REMOVED:
            raise MemberNotActive()
        if membership.role == Role.OWNER:
            raise MemberError("The owner cannot be removed from the organization.")
        membership.status = MembershipStatus.REMOVED
        membership.removed_at = timezone.now()
        membership.has_seat = False
        membership.removals += 1
        membership.notice = ""
        membership.save(update_fields=["status", "removed_at", "has_seat", "removals", "notice"])
        posted, returned = _return_credits(org=org, membership=membership, actor=actor)
    log.info("member_removed org=%s membership=%s returned=%s", org.pk, membership.pk, returned)
    return Removal(
        membership=membership,
        transfer=posted.transfer if posted else None,
        returned=returned,
        replayed=posted.replayed if posted else False,
    )


def _return_credits(*, org: Organization, membership: Membership, actor) -> tuple[Posted | None, int]:
    """One RETURN transfer: each non-empty pocket funded by this org back to the org wallet, any credit type.

    The membership is locked, so nothing can add to these pockets meanwhile (every movement from an org to a
    member locks the membership first); only the member's own spending can lower them. So the balances are
    read without a lock and the primitive locks the pockets (in its id order) and re-checks them: if spending
    got in between, it refuses the overdraft and the balances are read again.
    """
    member_wallet = Wallet.objects.for_user(membership.user)
    org_wallet = Wallet.objects.for_org(org)
    for _attempt in range(5):
        rows = list(
            Pocket.objects.filter(wallet=member_wallet, funding_org=org, balance__gt=0).values_list(
                "credit_type_id", "expires_on", "balance"
            )
        )
        if not rows:
            return None, 0
        # Expiry travels with the credits: each pocket goes back to the org wallet's pocket with the same day.
        legs = [Leg(member_wallet.pk, ct_id, -balance, org.pk, False, day) for ct_id, day, balance in rows]
        per_pocket: dict[tuple, int] = defaultdict(int)
        for ct_id, day, balance in rows:
            per_pocket[(ct_id, day)] += balance
        legs += [Leg(org_wallet.pk, ct_id, amount, None, False, day) for (ct_id, day), amount in per_pocket.items()]
        try:
            posted = post_transfer(
                kind=TransferKind.RETURN,
                org=org,
                actor=actor,
                memo=f"Return from {membership.user.email} (removed)",
                idempotency_key=f"return:{membership.pk}:{membership.removals}",
                legs=legs,
            )
        except InsufficientCredits:
            continue  # the member spent some of it since the read: read the balances again
        return posted, sum(per_pocket.values())
    raise LedgerBusy()


# ---------------------------------------------------------------- seats


def seats_used(org: Organization) -> int:
    return Membership.objects.filter(org=org, has_seat=True).exclude(status=MembershipStatus.REMOVED).count()


def seat_assign(*, org: Organization, membership_id: int, actor: User | None) -> Membership:
    """Assign a free seat by hand; moves the configured seat credits in the same transaction."""
    with transaction.atomic():
        locked_org = Organization.objects.select_for_update().get(pk=org.pk)
        membership = lock_active_membership(org=locked_org, membership_id=membership_id)
        if membership.has_seat:
            raise MemberError(f"{membership.user.display_name} already has a seat.")
        _assign_seat(org=locked_org, membership=membership, defaults=MemberDefaults.for_org(locked_org), actor=actor)
    return membership


def _assign_seat(*, org: Organization, membership: Membership, defaults: MemberDefaults, actor) -> None:
    """Both rows are locked by the caller (org, then membership)."""
    used = seats_used(org)
    if used >= org.seats:
        raise NoFreeSeat(
            f"No free seat: all {org.seats:,} of the organization's seats are assigned. "
            "Revoke a seat first, or ask us for more seats."
        )
    n = membership.seat_assignments + 1
    amount = defaults.seat_assignment_credits
    if amount > 0:
        try:
            with transaction.atomic():
                org_transfer_to_member(
                    org=org,
                    membership_id=membership.pk,
                    credit_type=CreditType.objects.get(slug="org-allocated"),
                    amount=amount,
                    actor=actor,
                    memo="Seat assignment credits",
                    idempotency_key=f"seat:{membership.pk}:{n}",
                    kind=TransferKind.SEAT_CREDITS,
                )
        except InsufficientCredits as exc:
            raise SeatCreditsShort(
                f"The seat was not assigned: a seat comes with {amount:,} Org-allocated credits and the org wallet "
                f"holds {exc.available:,}. Buy credits or lower Seat assignment credits in Settings > Member defaults."
            ) from exc
    membership.has_seat = True
    membership.seat_assigned_at = timezone.now()
    membership.seat_assignments = n
    membership.notice = ""
    membership.save(update_fields=["has_seat", "seat_assigned_at", "seat_assignments", "notice"])


def seat_revoke(*, org: Organization, membership_id: int, actor: User | None) -> Membership:
    """Free the member's seat. They keep every credit they have."""
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk=membership_id, org=org)
            .exclude(status=MembershipStatus.REMOVED)
            .first()
        )
        if membership is None:
            raise MemberNotActive()
        if not membership.has_seat:
            raise MemberError(f"{membership.user.display_name} has no seat to revoke.")
        membership.has_seat = False
        membership.save(update_fields=["has_seat"])
    return membership


# ---------------------------------------------------------------- member defaults


def member_defaults_update(*, org: Organization, actor: User, **values) -> MemberDefaults:
    """Save Settings > Member defaults (validated by the model's validators and CHECK constraints)."""
    defaults = MemberDefaults.for_org(org)
    for name, value in values.items():
        setattr(defaults, name, value)
    defaults.updated_by = actor
    defaults.updated_at = timezone.now()
    try:
        defaults.full_clean(exclude=["org", "updated_by"])
    except ValidationError as exc:
        raise MemberError(" ".join(exc.messages)) from exc
    defaults.save()
    return defaults


# ---------------------------------------------------------------- invitations


def invitation_token(invitation: Invitation) -> str:
    return signing.TimestampSigner(salt=_SIGNER_SALT).sign(f"{invitation.pk}.{invitation.nonce}")


def invitation_url(invitation: Invitation, base_url: str = "") -> str:
    return base_url.rstrip("/") + reverse("invite_accept", args=[invitation_token(invitation)])


def invitation_from_token(token: str) -> Invitation:
    """The invitation a link names, or InvitationInvalid (tampered, unknown or past its age)."""
    max_age = timedelta(days=settings.INVITE_MAX_AGE_DAYS)
    try:
        value = signing.TimestampSigner(salt=_SIGNER_SALT).unsign(token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise InvitationInvalid("This invitation has expired. Ask an admin of the organization for a new one.") from exc
    except signing.BadSignature as exc:
        raise InvitationInvalid() from exc
    pk, _, nonce = value.partition(".")
    invitation = Invitation.objects.select_related("org", "invited_by").filter(pk=int(pk), nonce=nonce).first()
    if invitation is None:
        raise InvitationInvalid()
    return invitation


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise MemberError(f"“{email[:80]}” is not a valid email address.") from exc
    return email


def invitation_create(
    *,
    org: Organization,
    email: str,
    role: str,
    credit_allocation: int = 0,
    actor: User,
    base_url: str = "",
) -> Invitation:
    """Invite someone by email; the signed link is emailed after commit. Credits move only on accept."""
    email = _clean_email(email)
    if role not in ASSIGNABLE_ROLES:
        raise MemberError("Pick a role: Member, Manager or Admin.")
    if isinstance(credit_allocation, bool) or not isinstance(credit_allocation, int):
        raise MemberError("The credit allocation is a whole number of credits.")
    if not 0 <= credit_allocation <= INVITE_ALLOCATION_MAX:
        raise MemberError(f"The credit allocation must be between 0 and {INVITE_ALLOCATION_MAX:,} credits.")
    if Membership.objects.filter(org=org, user__email__iexact=email).exclude(status=MembershipStatus.REMOVED).exists():
        raise MemberError(f"{email} is already a member of {org.name}.")
    now = timezone.now()
    try:
        with transaction.atomic():
            Invitation.objects.filter(
                org=org, email=email, status=InvitationStatus.PENDING, expires_at__lte=now
            ).update(status=InvitationStatus.EXPIRED)
            invitation = Invitation.objects.create(
                org=org,
                email=email,
                role=role,
                credit_allocation=credit_allocation,
                nonce=secrets.token_hex(12),
                invited_by=actor,
                created_at=now,
                expires_at=now + timedelta(days=settings.INVITE_MAX_AGE_DAYS),
            )
    except IntegrityError as exc:
        raise MemberError(f"{email} already has a pending invitation. Cancel it first to send a new one.") from exc
    link = invitation_url(invitation, base_url)
    transaction.on_commit(lambda: _send_invitation_email(invitation, link), robust=True)
    log.info("invitation_created org=%s invitation=%s actor=%s", org.pk, invitation.pk, actor.pk)
    return invitation


def _send_invitation_email(invitation: Invitation, link: str) -> None:
    _send_invitation_emails([(invitation, link)])


def _send_invitation_emails(invitations: list[tuple[Invitation, str]]) -> None:
    """One task per invitation (core.tasks.send_email): each address is retried on its own, and a mail
    server hiccup never undoes an invitation."""
    for invitation, link in invitations:
        send_email.enqueue(**_invitation_message(invitation, link))


def _invitation_message(invitation: Invitation, link: str) -> dict:
    inviter = invitation.invited_by.display_name if invitation.invited_by else "An admin"
    welcome = invitation_welcome(invitation).total
    credits = f"\nYou will get {credits_and_dollars(welcome)} when you join.\n" if welcome else ""
    return {
        "subject": f"You are invited to join {invitation.org.name} on Credits",
        "body": (
            f"{inviter} invited you to join {invitation.org.name} as {invitation.get_role_display()}.\n{credits}\n"
            f"Accept the invitation: {link}\n\n"
            f"The link works until {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
        ),
        "to": [invitation.email],
    }


def invitation_cancel(*, org: Organization, invitation_id: int, actor: User) -> Invitation:
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().filter(pk=invitation_id, org=org).first()
        if invitation is None:
            raise MemberError("No such invitation.")
        if invitation.status != InvitationStatus.PENDING:
            raise MemberError(f"This invitation is already {invitation.get_status_display().lower()}.")
        invitation.status = InvitationStatus.CANCELLED
        invitation.cancelled_at = timezone.now()
        invitation.save(update_fields=["status", "cancelled_at"])
    return invitation


@dataclass
class Acceptance:
    membership: Membership
    replayed: bool = False
    notices: list[str] = field(default_factory=list)  # for the org's admins (membership.notice), not the joiner


def invitation_accept(*, invitation_id: int, user: User) -> Acceptance:
    """Join the org once: the invitation row is locked first, so two accepts join once and move credits once."""
    with transaction.atomic():
        invitation = _lock_invitation(invitation_id)
        if invitation.status == InvitationStatus.ACCEPTED and invitation.accepted_by_id == user.pk:
            membership = Membership.objects.select_related("org").get(org_id=invitation.org_id, user=user)
            return Acceptance(membership=membership, replayed=True)
        _check_pending(invitation, email=user.email)
        return _join(invitation, user)


def invitation_accept_new_user(*, invitation_id: int, email: str, name: str, password: str) -> Acceptance:
    """Create the invitee's account and join, in one transaction: if joining fails, there is no account either.

    Only for an address whose owner proved it (the emailed link). The invitation row is locked before the
    account is made, so sign-ups racing on one invitation make one account; the others get InvitationUsed.
    """
    with transaction.atomic():
        invitation = _lock_invitation(invitation_id)
        _check_pending(invitation, email=email)
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise AccountExists()
        try:
            with transaction.atomic():
                user = user_create(email=invitation.email, password=password, name=name)
        except IntegrityError as exc:  # the address signed up elsewhere at this very moment
            raise AccountExists() from exc
        return _join(invitation, user)


def _lock_invitation(invitation_id: int) -> Invitation:
    invitation = Invitation.objects.select_for_update().filter(pk=invitation_id).first()
    if invitation is None:
        raise InvitationInvalid()
    return invitation


def _check_pending(invitation: Invitation, *, email: str) -> None:
    """The locked invitation can still be accepted, by this address."""
    if invitation.status == InvitationStatus.ACCEPTED:
        raise InvitationUsed()
    if invitation.status == InvitationStatus.CANCELLED:
        raise InvitationInvalid("This invitation was cancelled. Ask an admin of the organization for a new one.")
    if invitation.is_expired:
        raise InvitationInvalid("This invitation has expired. Ask an admin of the organization for a new one.")
    if email.lower() != invitation.email.lower():
        raise InvitationInvalid(f"This invitation is for {invitation.email}. Sign in with that address to accept it.")


def _join(invitation: Invitation, user: User) -> Acceptance:
    """Inside the caller's transaction, the invitation locked: the membership, then the welcome credits and
    the seat Member defaults ask for. A credit movement that cannot be made (the org wallet is short, or the
    org owes credits after a refund or dispute) is skipped and noted for the admins: joining never fails for
    it, and the invitee is not shown the org's billing state."""
    org = Organization.objects.select_for_update().get(pk=invitation.org_id)
    existing = Membership.objects.filter(org=org, user=user).exclude(status=MembershipStatus.REMOVED).first()
    if existing is not None:
        raise MemberError(f"You are already a member of {org.name}.")
    membership = membership_add(org=org, user=user, role=invitation.role)
    membership = lock_active_membership(org=org, membership_id=membership.pk)
    defaults = MemberDefaults.for_org(org)
    notices = _welcome_credits(org=org, membership=membership, invitation=invitation, defaults=defaults)
    if defaults.auto_assign_seats:
        try:
            with transaction.atomic():
                _assign_seat(org=org, membership=membership, defaults=defaults, actor=None)
        except NoFreeSeat:
            notices.append("Joined without a seat: no seat was free.")
        except SeatCreditsShort:
            notices.append(
                f"Joined without a seat: the org wallet held less than the {defaults.seat_assignment_credits:,} "
                "seat credits."
            )
        except OutstandingBalanceDue as exc:
            notices.append(f"Joined without a seat: {_owes(exc)}")
    if notices:
        membership.notice = " ".join(notices)[:300]
        membership.save(update_fields=["notice"])
    invitation.status = InvitationStatus.ACCEPTED
    invitation.accepted_by = user
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["status", "accepted_by", "accepted_at"])
    membership.org = org
    log.info("invitation_accepted org=%s invitation=%s user=%s", org.pk, invitation.pk, user.pk)
    return Acceptance(membership=membership, notices=notices)


def _owes(exc: OutstandingBalanceDue) -> str:
    return f"the org owes {exc.credits:,} credits after a refund or dispute."


def _allocations(invitation: Invitation, defaults: MemberDefaults) -> list[tuple[str, int, str, str]]:
    """(kind, amount, idempotency key, label) of the credits joining gives, in the order they move: the Member
    default allocation, then the invite's own allocation. Joining moves these; the invitation page says them."""
    return [
        (
            TransferKind.DEFAULT_ALLOCATION,
            defaults.default_credit_allocation,
            f"default:{invitation.pk}",
            "Default allocation",
        ),
        (TransferKind.INVITE_ALLOCATION, invitation.credit_allocation, f"invite:{invitation.pk}", "Invite allocation"),
    ]


@dataclass(frozen=True, slots=True)
class Welcome:
    """What joining through an invitation gives, as joining computes it (see _join)."""

    items: list[tuple[str, int]]  # (label, credits), only the ones that apply

    @property
    def total(self) -> int:
        return sum(amount for _label, amount in self.items)


def invitation_welcome(invitation: Invitation) -> Welcome:
    """The credits the invitee gets on joining: the default allocation and the invite allocation (_allocations),
    plus the seat credits when Member defaults auto-assign seats and a seat is free now. The same sources as
    _join, so the words on the invitation page and the credits that move cannot differ."""
    defaults = MemberDefaults.for_org(invitation.org)
    return welcome_for(invitation, defaults, seat_free=seats_used(invitation.org) < invitation.org.seats)


def welcome_for(invitation: Invitation, defaults: MemberDefaults, *, seat_free: bool) -> Welcome:
    """invitation_welcome without queries, for a page of invitations (the caller reads defaults and seats once)."""
    items = [(label, amount) for _kind, amount, _key, label in _allocations(invitation, defaults) if amount > 0]
    if defaults.auto_assign_seats and defaults.seat_assignment_credits > 0 and seat_free:
        items.append(("Seat credits", defaults.seat_assignment_credits))
    return Welcome(items=items)


def _welcome_credits(*, org, membership, invitation, defaults) -> list[str]:
    """Default allocation, then the invite's own allocation; a short org wallet, or an org that owes credits,
    skips one (and says so to the admins)."""
    notices = []
    org_allocated = CreditType.objects.get(slug="org-allocated")
    for kind, amount, key, label in _allocations(invitation, defaults):
        if amount <= 0:
            continue
        try:
            with transaction.atomic():
                org_transfer_to_member(
                    org=org,
                    membership_id=membership.pk,
                    credit_type=org_allocated,
                    amount=amount,
                    memo=label,
                    idempotency_key=key,
                    kind=kind,
                )
        except InsufficientCredits:
            notices.append(f"{label} of {amount:,} credits not given: the org wallet was short.")
        except OutstandingBalanceDue as exc:
            notices.append(f"{label} of {amount:,} credits not given: {_owes(exc)}")
    return notices


# ---------------------------------------------------------------- bulk invite


@dataclass
class BulkResult:
    invited: list[Invitation] = field(default_factory=list)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, reason)


def _role_from_cell(cell: str, defaults: MemberDefaults) -> str:
    value = cell.strip().lower()
    if not value:
        if defaults.auto_assign_default_role:
            return defaults.default_role
        raise MemberError("The role is missing (Member, Manager or Admin).")
    if value not in ASSIGNABLE_ROLES:
        raise MemberError(f"“{cell.strip()[:40]}” is not a role: use Member, Manager or Admin.")
    return value


def invitation_bulk_create(*, org: Organization, data: bytes, actor: User, base_url: str = "") -> BulkResult:
    """Invite everyone in a CSV of `email,role` (a header row is optional). At most 100 rows; rows that are
    invalid, duplicated or already members are listed and skipped, the others invited."""
    if len(data) > BULK_INVITE_MAX_BYTES:
        raise MemberError("That file is too large for 100 rows of email,role. Upload a CSV of at most 100 rows.")
    not_csv = MemberError("That file is not a CSV. Save it as CSV (UTF-8) with two columns: email,role.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise not_csv from exc
    if "\x00" in text:
        raise not_csv
    try:
        rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text)), start=1) if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise not_csv from exc
    if rows and rows[0][1][0].strip().lower() == "email":
        rows = rows[1:]
    if not rows:
        raise MemberError("That file has no rows. Each line is email,role, for example: ada@example.com,member")
    if len(rows) > BULK_INVITE_MAX_ROWS:
        raise MemberError(
            f"That file has {len(rows):,} rows; at most {BULK_INVITE_MAX_ROWS} can be invited at once. "
            "Split it and upload each part. Nobody was invited."
        )
    defaults = MemberDefaults.for_org(org)
    result = BulkResult()
    seen: dict[str, int] = {}
    valid: list[tuple[int, str, str, str]] = []  # (line, raw, email, role)
    for line, row in rows:
        raw = ",".join(row)[:120]
        try:
            if len(row) != 2:
                raise MemberError("Expected two columns: email,role.")
            email = _clean_email(row[0])
            role = _role_from_cell(row[1], defaults)
            if email in seen:
                raise MemberError(f"Duplicate of line {seen[email]}.")
            seen[email] = line
            valid.append((line, raw, email, role))
        except MemberError as exc:
            result.skipped.append((line, raw, exc.message))
    if not valid:
        return result
    try:
        _bulk_insert(org=org, valid=valid, actor=actor, base_url=base_url, result=result)
    except IntegrityError:
        # Someone invited one of these addresses at the same moment: fall back to one row at a time.
        for line, raw, email, role in valid:
            try:
                result.invited.append(
                    invitation_create(org=org, email=email, role=role, actor=actor, base_url=base_url)
                )
            except MemberError as exc:
                result.skipped.append((line, raw, exc.message))
    result.skipped.sort()
    return result


def _bulk_insert(*, org, valid, actor, base_url, result: BulkResult) -> None:
    """Set-based: one query for current members, one to expire stale invites, one for pending ones, one insert."""
    emails = [email for _line, _raw, email, _role in valid]
    now = timezone.now()
    with transaction.atomic():
        members = set(
            Membership.objects.filter(org=org, user__email__in=emails)
            .exclude(status=MembershipStatus.REMOVED)
            .values_list("user__email", flat=True)
        )
        Invitation.objects.filter(
            org=org, email__in=emails, status=InvitationStatus.PENDING, expires_at__lte=now
        ).update(status=InvitationStatus.EXPIRED)
        pending = set(
            Invitation.objects.filter(org=org, email__in=emails, status=InvitationStatus.PENDING).values_list(
                "email", flat=True
            )
        )
        fresh = []
        for line, raw, email, role in valid:
            if email in members:
                result.skipped.append((line, raw, f"{email} is already a member of {org.name}."))
            elif email in pending:
                result.skipped.append((line, raw, f"{email} already has a pending invitation."))
            else:
                fresh.append(
                    Invitation(
                        org=org,
                        email=email,
                        role=role,
                        nonce=secrets.token_hex(12),
                        invited_by=actor,
                        created_at=now,
                        expires_at=now + timedelta(days=settings.INVITE_MAX_AGE_DAYS),
                    )
                )
        created = Invitation.objects.bulk_create(fresh)
        emails_out = [(inv, invitation_url(inv, base_url)) for inv in created]
        transaction.on_commit(lambda: _send_invitation_emails(emails_out), robust=True)
    result.invited.extend(created)
    log.info("invitations_bulk org=%s created=%s actor=%s", org.pk, len(created), actor.pk)
