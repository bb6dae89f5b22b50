"""Domain verbs that move credits. Each builds legs and calls the one primitive, `post_transfer`."""

from __future__ import annotations

from django.db import connection, transaction

from orgs.models import Membership, MembershipStatus, Organization
from wallets.exceptions import InvalidAmount, MemberNotActive, WalletError
from wallets.ledger import Leg, check_amount, execute_prepared, leg, post_transfer
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


_LOCK_MEMBER_WITH_WALLETS = """
SELECT m.status, ow.id, uw.id
FROM orgs_membership m
JOIN wallets_wallet ow ON ow.kind = 'org' AND ow.org_id = m.org_id
JOIN wallets_wallet uw ON uw.kind = 'user' AND uw.user_id = m.user_id
WHERE m.id = %s AND m.org_id = %s
"""


def _lock_member_wallets(*, org: Organization, membership_id) -> tuple[int, int]:
    """Lock an active membership and return (org wallet id, member's Default wallet id) in one query."""
    sql = _LOCK_MEMBER_WITH_WALLETS
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF m"
    try:
        membership_id = int(membership_id)
    except (TypeError, ValueError):
        raise MemberNotActive() from None
    if connection.vendor == "postgresql":
        rows = execute_prepared(sql, [membership_id, org.pk])
    else:
        with connection.cursor() as cur:
            cur.execute(sql, [membership_id, org.pk])
            rows = cur.fetchall()
    row = rows[0] if rows else None
    if row is None or row[0] != MembershipStatus.ACTIVE:
        raise MemberNotActive()
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
) -> Transfer:
    """Move credits from the org wallet to a current member's Default wallet (funded by this org)."""
    check_amount(amount)
    with transaction.atomic():
        org_wallet_id, member_wallet_id = _lock_member_wallets(org=org, membership_id=membership_id)
        return post_transfer(
            kind=kind,
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
        return post_transfer(
            kind=TransferKind.BULK_TRANSFER,
            org=org,
            actor=actor,
            memo=memo,
            idempotency_key=idempotency_key,
            legs=legs,
        )
