"""Expiring credits for tests, made through the real services.

Credits can only be given an expiry day after today (wallets.services.check_expiry_day), and `run_expiry`
refuses a day after today, so a test cannot expire credits it has just granted without time passing. Rather
than fake the clock, `days_pass(n)` moves every expiring pocket's day n days earlier, which is the state the
ledger would be in had the same movements been made n days ago (pockets are not append-only; their entries do
not carry the day). Pockets that never expire are left alone.
"""

import datetime

from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from tests.factories import MembershipFactory, fund
from wallets.models import NEVER, CreditType, Entry, ExternalCode, Pocket, Wallet
from wallets.services import org_grant_promo, org_transfer_to_member


def in_days(n: int) -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=n)


def grant(org, amount: int, days: int, key: str | None = None):
    """Promo credits into the org wallet, expiring `days` days from today."""
    return org_grant_promo(org=org, amount=amount, expires_on=in_days(days), idempotency_key=key)


def give(org, membership, amount: int, credit_type: str = "promo"):
    """Hand a member credits from the org wallet (the soonest-expiring first, keeping their day)."""
    ct = CreditType.objects.get(slug=credit_type)
    return org_transfer_to_member(org=org, membership_id=membership.pk, credit_type=ct, amount=amount)


def member_with_promo_of_two_days(org):
    """A member of `org` holding promo credits of two days (50 expiring in 5 days, 200 in 10) and 100 org-allocated
    credits that never expire; the org wallet keeps the rest (900 org-allocated, 100 promo of the 10-day grant)."""
    fund(org, 1_000)
    grant(org, 50, 5)
    grant(org, 300, 10)
    member = MembershipFactory(org=org)
    give(org, member, 250)
    give(org, member, 100, "org-allocated")
    return member


def days_pass(n: int) -> None:
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE wallets_pocket SET expires_on = expires_on - %s WHERE expires_on <> %s AND NOT is_external",
            [n, NEVER],
        )


def balances(wallet: Wallet) -> dict:
    """{(credit type slug, funding org id, expiry day): balance} of the wallet's non-empty pockets."""
    return {
        (p.credit_type.slug, p.funding_org_id, p.expires_on): p.balance
        for p in Pocket.objects.filter(wallet=wallet, balance__gt=0).select_related("credit_type")
    }


def expired_total(org) -> int:
    """What the org's credits in the Expired account add up to (the sum of its entries)."""
    expired = Wallet.objects.external(ExternalCode.EXPIRED)
    return int(Entry.objects.filter(wallet=expired, org=org).aggregate(s=Sum("amount"))["s"] or 0)
