"""Reads for the Credit Requests tab and the member's status panel. Never write."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import Subquery

from credit_requests.models import CreditRequest, CreditRequestStatus
from orgs.models import Membership, Organization

REQUESTS_PER_PAGE = 25


def pending_request_count(org: Organization) -> int:
    """One query (an index-only count on the partial pending index)."""
    return CreditRequest.objects.filter(org=org, status=CreditRequestStatus.PENDING).count()


def _page_number(raw, count: int, per_page: int) -> int:
    try:
        number = int(raw)
    except (TypeError, ValueError):
        number = 1
    last = max(1, -(-count // per_page))
    return min(max(1, number), last)


def pending_requests_page(org: Organization, *, page, count: int, per_page: int = REQUESTS_PER_PAGE) -> Page:
    """A page of pending requests, oldest first, with the requester: one query (the count is passed in).

    The OFFSET runs in a subquery over the partial pending index alone, so a deep page skips index
    entries rather than joined rows; only the 25 rows shown are joined to their requester.
    """
    pending = CreditRequest.objects.filter(org=org, status=CreditRequestStatus.PENDING).order_by("created_at", "id")
    paginator = Paginator(pending, per_page)
    paginator.__dict__["count"] = count  # already counted for the tab badge; don't count twice
    number = _page_number(page, count, per_page)
    offset = (number - 1) * per_page
    rows = list(
        CreditRequest.objects.filter(pk__in=Subquery(pending.values("pk")[offset : offset + per_page]))
        .select_related("requester", "membership")
        .order_by("created_at", "id")
    )
    return Page(rows, number, paginator)


def decided_requests_page(org: Organization, *, page, per_page: int = REQUESTS_PER_PAGE) -> Page:
    """Decided requests (approved, rejected, cancelled), newest decision first: who, when, what."""
    qs = (
        CreditRequest.objects.filter(org=org)
        .exclude(status=CreditRequestStatus.PENDING)
        .select_related("requester", "decided_by", "credit_type")
        .order_by("-decided_at", "-id")
    )
    paginator = Paginator(qs, per_page)
    return paginator.page(_page_number(page, paginator.count, per_page))


def member_requests(membership: Membership, limit: int = 10) -> list[CreditRequest]:
    """The member's latest requests in this org, newest first, for the status panel."""
    return list(
        CreditRequest.objects.filter(membership=membership)
        .select_related("credit_type")
        .order_by("-created_at", "-id")[:limit]
    )
