"""Domain verbs that move credits. Each builds legs and calls the one primitive, `post_transfer`."""

from __future__ import annotations

from django.db import transaction

from orgs.models import Membership, MembershipStatus, Organization
from wallets.exceptions import InvalidAmount, MemberNotActive, WalletError
from wallets.ledger import Leg, check_amount, leg, post_transfer
from wallets.models import MAX_AMOUNT, CreditType, ExternalCode, Transfer, TransferKind, Wallet, WalletKind


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
    _assert_no_outstanding(org)
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


def org_bulk_transfer(
    *,
    org: Organization,
    credit_type: CreditType,
    amount_per_member: int,
    membership_ids: list[int] | None = None,
    actor=None,
    memo: str = "",
    idempotency_key: str | None = None,
) -> Transfer:
    """One transfer: one debit on the org wallet, one credit per member; all or nothing.

    membership_ids=None means every current (active) member. The memberships are locked first (they are
    the domain rows), in id order, so a member removed at the same moment either gets the credits
    before the removal returns them, or is not paid at all.
    """
    check_amount(amount_per_member)
    _assert_no_outstanding(org)
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
        wallet_ids = dict(
            Wallet.objects.filter(kind=WalletKind.USER, user_id__in=[u for _, u in rows]).values_list("user_id", "pk")
        )
        org_wallet = Wallet.objects.for_org(org)
        legs = [leg(org_wallet, credit_type, -total)]
        legs += [Leg(wallet_ids[user_id], credit_type.pk, amount_per_member, org.pk) for _, user_id in rows]
        return post_transfer(
            kind=TransferKind.BULK_TRANSFER,
            org=org,
            actor=actor,
            memo=memo,
            idempotency_key=idempotency_key,
            legs=legs,
        )


def _assert_no_outstanding(org: Organization) -> None:
    """Credits may not leave the org wallet while it owes credits after a refund or dispute (billing)."""
    from billing.purchases import assert_no_outstanding

    assert_no_outstanding(org)
