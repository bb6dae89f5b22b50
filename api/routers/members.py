"""GET /members: the org's members, by id (find one by email to get the id the other calls take)."""

from __future__ import annotations

from ninja import Query, Router

from api.schemas import READ_ERRORS, MemberFilters, MemberPage, only_known_params
from apikeys.models import ApiKey
from orgs.models import Membership

router = Router(tags=["members"])


@router.get("/members", response={200: MemberPage, **READ_ERRORS}, summary="List members")
def member_list(request, filters: Query[MemberFilters]):
    """The org's members, by id; find one by email to get the id the other calls take."""
    only_known_params(request, MemberFilters)
    key: ApiKey = request.auth
    qs = Membership.objects.select_related("user").filter(org_id=key.org_id)
    if filters.email:
        qs = qs.filter(user__email__iexact=filters.email)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.cursor:
        qs = qs.filter(pk__gt=int(filters.cursor))
    rows = list(qs.order_by("pk")[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return {
        "items": [
            {"id": m.pk, "email": m.user.email, "name": m.user.name, "role": m.role, "status": m.status} for m in rows
        ],
        "next_cursor": str(rows[-1].pk) if more else None,
    }
