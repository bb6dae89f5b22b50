"""Domain verbs that move credits. Each builds legs and calls the one primitive, `post_transfer`."""

from __future__ import annotations

import datetime
import hashlib
import json

from django.db import transaction
from django.utils import timezone

from core.sql import load_sql
from orgs.models import Membership, MembershipStatus, Organization
from wallets.draw import SOONEST, post_drawn
from wallets.errors import (
    InvalidAmount,
    InvalidExpiry,
    MemberNotActive,
    WalletError,
)
from wallets.ledger import Leg, Then, check_amount, fetch_hot, leg, post_transfer, post_usage
from wallets.models import MAX_AMOUNT, NEVER, CreditType, ExternalCode, TransferKind, Wallet, WalletKind
from wallets.outstanding import OutstandingBalanceDue, assert_no_outstanding
from wallets.results import Posted, UsageCharged


def credit_type(slug: str) -> CreditType:
    return CreditType.objects.get(slug=slug)


def lock_active_membership(*, org: Organization, membership_id: int) -> Membership:
    """Lock the membership row (the domain row comes first in the lock order) and check it is active."""
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(pk=membership_id, org=org)
        .first()
    )
    if membership is None or membership.status != MembershipStatus.ACTIVE:
        raise MemberNotActive()
    return membership


_LOCK_MEMBER_WITH_WALLETS = load_sql(__file__, "lock_member_with_wallets.sql")


def _lock_member_wallets(*, org: Organization, membership_id) -> tuple[int, int]:
    """Lock an active membership and return (org wallet id, member's Default wallet id) in one query.
    Refuses (OutstandingBalanceDue) while the org owes credits after a refund or dispute."""
    try:
        membership_id = int(membership_id)
    except (TypeError, ValueError):
        raise MemberNotActive() from None
    rows = fetch_hot(_LOCK_MEMBER_WITH_WALLETS, [membership_id, org.pk], lock_of="m")
    row = rows[0] if rows else None
    if row is None or row[0] != MembershipStatus.ACTIVE:
        raise MemberNotActive()
    if row[3]:
        raise OutstandingBalanceDue(row[3])
    return row[1], row[2]


def org_transfer_to_member(
    *,
    org: Organization,
    membership_id: int,
    credit_type: CreditType,
    amount: int,
    actor=None,
    memo: str = "",
    idempotency_key: str | None = None,
    kind: str = TransferKind.TRANSFER,
    order: str = SOONEST,
) -> Posted:
    """Move credits from the org wallet to a current member's Default wallet (funded by this org). The
    soonest-expiring credits go first unless `order` says otherwise; each keeps its expiry day."""
    check_amount(amount)
    with transaction.atomic():
        org_wallet_id, member_wallet_id = _lock_member_wallets(org=org, membership_id=membership_id)
        return post_drawn(
            kind=kind,
            order=order,
            org=org,
            actor=actor,
            memo=memo,
            idempotency_key=idempotency_key,
            legs=[
                Leg(org_wallet_id, credit_type.pk, -amount),
                Leg(member_wallet_id, credit_type.pk, amount, org.pk),
            ],
        )


def org_grant_promo(
    *,
    org: Organization,
    amount: int,
    actor=None,
    memo: str = "",
    idempotency_key: str | None = None,
    credit_type: CreditType | None = None,
    expires_on=None,
) -> Posted:
    """Staff grant: Promo credits from the external Promotions account into the org wallet, expiring on
    `expires_on` (a day after today) or never."""
    check_amount(amount)
    expires_on = check_expiry_day(expires_on)
    credit_type = credit_type or CreditType.objects.get(slug="promo")
    promotions = Wallet.objects.external(ExternalCode.PROMOTIONS)
    return post_transfer(
        kind=TransferKind.PROMO_GRANT,
        org=org,
        actor=actor,
        memo=memo or "Promo grant",
        idempotency_key=idempotency_key,
        legs=[
            leg(promotions, credit_type, -amount, funding_org=org),
            leg(Wallet.objects.for_org(org), credit_type, amount, expires_on=expires_on),
        ],
    )


def org_credit_from_stripe(
    *,
    org: Organization,
    amount: int,
    actor=None,
    memo: str = "",
    idempotency_key: str | None = None,
    kind: str = TransferKind.PURCHASE,
    expires_on=None,
) -> Posted:
    """Purchased credits: from the external Stripe account into the org wallet, as Org-allocated, expiring on
    `expires_on` or never (the org's "purchased credits expire after" setting decides; purchases/)."""
    check_amount(amount)
    ct = CreditType.objects.get(slug="org-allocated")
    stripe_wallet = Wallet.objects.external(ExternalCode.STRIPE)
    return post_transfer(
        kind=kind,
        org=org,
        actor=actor,
        memo=memo,
        idempotency_key=idempotency_key,
        legs=[
            leg(stripe_wallet, ct, -amount, funding_org=org),
            leg(Wallet.objects.for_org(org), ct, amount, expires_on=expires_on or NEVER),
        ],
    )


def check_expiry_day(expires_on) -> datetime.date:
    """NEVER for None, else a date after today (InvalidExpiry otherwise): credits cannot be made already expired."""
    if expires_on is None or expires_on == NEVER:
        return NEVER
    if not isinstance(expires_on, datetime.date) or isinstance(expires_on, datetime.datetime):
        raise InvalidExpiry("Enter the expiry as a date, like 2027-06-30.")
    if expires_on <= timezone.localdate():
        raise InvalidExpiry("The expiry date must be after today: credits cannot be granted already expired.")
    return expires_on


def org_bulk_transfer(
    *,
    org: Organization,
    credit_type: CreditType,
    amount_per_member: int,
    membership_ids: list[int] | None = None,
    actor=None,
    memo: str = "",
    idempotency_key: str | None = None,
    order: str = SOONEST,
) -> Posted:
    """One transfer: one debit on the org wallet, one credit per member; all or nothing. The soonest-expiring
    credits are sent first (unless `order` says otherwise), members in id order, each keeping its day.

    membership_ids=None means every current (active) member. The memberships are locked first (they are
    the domain rows), in id order, so a member removed at the same moment either gets the credits
    before the removal returns them, or is not paid at all.
    """
    check_amount(amount_per_member)
    assert_no_outstanding(org)
    with transaction.atomic():
        members = Membership.objects.select_for_update(of=("self",)).filter(org=org, status=MembershipStatus.ACTIVE)
        if membership_ids is not None:
            wanted = set(membership_ids)
            members = members.filter(pk__in=wanted)
        rows = list(members.order_by("pk").values_list("pk", "user_id"))
        if membership_ids is not None and len(rows) != len(wanted):
            raise MemberNotActive("Some of the selected people are not (or no longer) members of this organization.")
        if not rows:
            raise WalletError("Pick at least one member.")
        total = amount_per_member * len(rows)
        if total > MAX_AMOUNT:
            raise InvalidAmount(total, f"That total is too large (at most {MAX_AMOUNT:,} credits).")
        user_ids = [u for _, u in rows]
        wallet_ids = dict(
            Wallet.objects.filter(kind=WalletKind.USER, user_id__in=user_ids).values_list("user_id", "pk")
        )
        if len(wallet_ids) < len(user_ids):
            # Users made outside user_create (e.g. createsuperuser) have no Default wallet yet: make them
            # here, as Wallet.objects.for_user does for one member, instead of failing the whole transfer.
            missing = [u for u in user_ids if u not in wallet_ids]
            Wallet.objects.bulk_create(
                [Wallet(kind=WalletKind.USER, user_id=u, name="Default wallet") for u in missing], ignore_conflicts=True
            )
            wallet_ids.update(
                Wallet.objects.filter(kind=WalletKind.USER, user_id__in=missing).values_list("user_id", "pk")
            )
        org_wallet = Wallet.objects.for_org(org)
        legs = [leg(org_wallet, credit_type, -total)]
        legs += [Leg(wallet_ids[user_id], credit_type.pk, amount_per_member, org.pk) for _, user_id in rows]
        return post_drawn(
            kind=TransferKind.BULK_TRANSFER,
            order=order,
            org=org,
            actor=actor,
            memo=memo,
            idempotency_key=idempotency_key,
            legs=legs,
        )


def _usage_fingerprint(org_id: int, membership_id: int, amount: int, description: str) -> str:
    body = json.dumps(["usage", org_id, membership_id, amount, description], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def member_charge_usage(
    *,
    org: Organization,
    membership_id: int,
    amount: int,
    description: str = "",
    actor=None,
    idempotency_key: str | None = None,
    then: Then | None = None,
) -> UsageCharged:
    """Charge a member for usage in this org: one USAGE transfer from their Default wallet to Usage.

    Only pockets funded by THIS org are spent (the org pays for work done in the org; the member's
    personal credits and other orgs' credits are never touched). Draw order: earliest expiry first, then credit
    types by `CreditType.draw_order` (Promo before Org-allocated), then oldest pocket first. Because the credits
    leave the member's org-funded pockets, a later Return gives the org back only what is unspent.

    One statement (`wallets.ledger.post_usage`): the membership lock, the member's pockets, the plan and the
    write. Outside a caller's transaction it is its own transaction; inside one (the API's, which holds the
    idempotency record) no savepoint is made, and every refusal leaves that transaction usable.

    The fingerprint is the request (member, amount, description), not the legs: the legs depend on the
    balances at the time, and a replay must match the first call, not today's balances.

    `then`: the caller's rows written by the same statement with the charge (the API's usage charge and
    idempotency record; wallets.ledger.Then).
    """
    check_amount(amount)
    description = (description or "").strip()[:500]
    fingerprint = _usage_fingerprint(org.pk, membership_id, amount, description)
    try:
        membership_id = int(membership_id)
    except (TypeError, ValueError):
        raise MemberNotActive() from None
    return post_usage(
        kind=TransferKind.USAGE,
        org=org,
        membership_id=membership_id,
        to_code=ExternalCode.USAGE.value,
        amount=amount,
        fingerprint=fingerprint,
        actor=actor,
        memo=description,
        idempotency_key=idempotency_key,
        then=then,
    )
