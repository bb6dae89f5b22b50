"""What an org owes after a refund or dispute took back credits it had already given away or spent.

It is ledger state: the wallet services refuse to move credits out of an org wallet while it is above
zero, and the next purchase pays it first. Lock order: the OutstandingBalance row before any pocket.
"""

from orgs.models import Organization
from wallets.errors import WalletError
from wallets.models import OutstandingBalance


class OutstandingBalanceDue(WalletError):
    def __init__(self, credits: int):
        self.credits = credits
        super().__init__(
            f"This organization owes {credits:,} credits after a refund or dispute. "
            "Buy credits to pay it before transferring credits out of the org wallet."
        )


def org_outstanding_credits(org: Organization | int) -> int:
    org_id = org if isinstance(org, int) else org.pk
    return OutstandingBalance.objects.filter(org_id=org_id).values_list("credits", flat=True).first() or 0


def assert_no_outstanding(org: Organization) -> None:
    """Called by the wallet services before credits leave the org wallet for members."""
    owed = org_outstanding_credits(org)
    if owed:
        raise OutstandingBalanceDue(owed)


def lock_outstanding(org_id: int) -> OutstandingBalance:
    ob = OutstandingBalance.objects.select_for_update().filter(org_id=org_id).first()
    if ob is None:  # the org's first purchase: create the row (a racer may win), then lock it
        OutstandingBalance.objects.bulk_create([OutstandingBalance(org_id=org_id)], ignore_conflicts=True)
        ob = OutstandingBalance.objects.select_for_update().get(org_id=org_id)
    return ob
