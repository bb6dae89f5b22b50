"""Reads for the Members pages."""

from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from orgs.models import Membership, MembershipStatus, Organization
from wallets.models import Pocket


def members_with_returnable(org: Organization):
    """Current (not removed) members with their user and the credits a removal would return, in ONE query
    (a correlated sum over their pockets funded by this org), so a page of them costs the same at any size."""
    returnable = (
        Pocket.objects.filter(wallet__user_id=OuterRef("user_id"), funding_org_id=OuterRef("org_id"), balance__gt=0)
        .order_by()
        .values("funding_org_id")
        .annotate(s=Sum("balance"))
        .values("s")
    )
    return (
        Membership.objects.filter(org=org)
        .exclude(status=MembershipStatus.REMOVED)
        .select_related("user")
        .annotate(returnable=Coalesce(Subquery(returnable), 0))
    )
