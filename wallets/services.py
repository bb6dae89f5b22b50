"""Domain verbs that move credits. Each builds legs and calls the one primitive, `post_transfer`."""

from __future__ import annotations

from django.db import transaction

from orgs.models import Membership, MembershipStatus, Organization
from wallets.exceptions import MemberNotActive
from wallets.ledger import check_amount, leg, post_transfer
from wallets.models import CreditType, ExternalCode, Transfer, TransferKind, Wallet


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
) -> Transfer:
    """Move credits from the org wallet to a current member's Default wallet (funded by this org)."""
    check_amount(amount)
    with transaction.atomic():
        membership = lock_active_membership(org=org, membership_id=membership_id)
        org_wallet = Wallet.objects.for_org(org)
        member_wallet = Wallet.objects.for_user(membership.user)
        return post_transfer(
            kind=kind,
            org=org,
            actor=actor,
            memo=memo,
            idempotency_key=idempotency_key,
            legs=[leg(org_wallet, credit_type, -amount), leg(member_wallet, credit_type, amount, funding_org=org)],
        )


def org_grant_promo(
    *,
    org: Organization,
    amount: int,
    actor=None,
    memo: str = "",
    idempotency_key: str | None = None,
    credit_type: CreditType | None = None,
) -> Transfer:
    """Staff grant: Promo credits from the external Promotions account into the org wallet."""
    check_amount(amount)
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
            leg(Wallet.objects.for_org(org), credit_type, amount),
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
) -> Transfer:
    """Purchased credits: from the external Stripe account into the org wallet, as Org-allocated."""
    check_amount(amount)
    ct = CreditType.objects.get(slug="org-allocated")
    stripe_wallet = Wallet.objects.external(ExternalCode.STRIPE)
    return post_transfer(
        kind=kind,
        org=org,
        actor=actor,
        memo=memo,
        idempotency_key=idempotency_key,
        legs=[leg(stripe_wallet, ct, -amount, funding_org=org), leg(Wallet.objects.for_org(org), ct, amount)],
    )
