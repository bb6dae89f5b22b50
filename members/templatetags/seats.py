"""The Seats section on the Billing page gets its own data here in ONE query, so it costs the Billing page's
query budget one query whatever the org's size: the first rows of Seat Management, with the counts as window
aggregates over every current member and the seat credits as a scalar subquery."""

from django import template
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value, Window
from django.db.models.functions import Coalesce

from orgs.models import MemberDefaults, Membership, MembershipStatus

register = template.Library()

ROWS = 10


@register.simple_tag
def seats_summary(org) -> dict:
    active = Q(status=MembershipStatus.ACTIVE)
    seat_credits = MemberDefaults.objects.filter(org=OuterRef("org_id")).values("seat_assignment_credits")[:1]
    rows = list(
        Membership.objects.filter(org=org)
        .exclude(status=MembershipStatus.REMOVED)  # a suspended member keeps their seat: it counts as used
        .select_related("user")
        .annotate(
            n_members=Window(Count("pk", filter=active)),
            n_used=Window(Count("pk", filter=Q(has_seat=True))),
            n_attention=Window(Count("pk", filter=active & ~Q(notice=""))),
            seat_credits=Coalesce(Subquery(seat_credits), Value(0), output_field=IntegerField()),
        )
        .order_by("-has_seat", "user__email", "pk")[:ROWS]
    )
    first = rows[0] if rows else None
    return {
        "rows": [m for m in rows if m.status == MembershipStatus.ACTIVE],
        "members": first.n_members if first else 0,
        "used": first.n_used if first else 0,
        "attention": first.n_attention if first else 0,
        "seat_credits": first.seat_credits if first else 0,
        "more": bool(first) and first.n_members > ROWS,
    }
