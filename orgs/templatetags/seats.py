"""The Seats section on the Billing page gets its own data here, in a fixed number of queries (3)."""

from django import template
from django.db.models import Count, Q

from orgs.models import MemberDefaults, Membership, MembershipStatus

register = template.Library()

ROWS = 10


@register.simple_tag
def seats_summary(org) -> dict:
    active = Q(status=MembershipStatus.ACTIVE)
    counts = (
        Membership.objects.filter(org=org)
        .exclude(status=MembershipStatus.REMOVED)
        .aggregate(
            members=Count("pk", filter=active),
            used=Count("pk", filter=Q(has_seat=True)),  # a suspended member keeps their seat
            attention=Count("pk", filter=active & ~Q(notice="")),
        )
    )
    rows = list(
        Membership.objects.filter(org=org, status=MembershipStatus.ACTIVE)
        .select_related("user")
        .order_by("-has_seat", "user__email", "pk")[:ROWS]
    )
    return {**counts, "rows": rows, "more": counts["members"] > ROWS, "defaults": MemberDefaults.for_org(org)}
