"""Reads for the Credit Requests tab and the member's status panel. Never write."""

from __future__ import annotations

from datetime import timedelta

from django.core.paginator import Page, Paginator
from django.db.models import BigIntegerField, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from credit_requests.models import MAX_PENDING_REQUESTS_PER_MEMBER, CreditRequest, CreditRequestStatus
from orgs.models import Membership, Organization
from wallets.models import Entry, Pocket, TransferKind, WalletKind

REQUESTS_PER_PAGE = 25
USAGE_WINDOW_DAYS = 30


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


def with_requester_context(requests: QuerySet, org: Organization, *, now=None) -> QuerySet:
    """Annotates each request with what an approver wants beside it, in the same query (two correlated
    subqueries, so the query count does not grow with the number of requests):

    - `requester_balance`: credits the requester holds that this org funded (their Default wallet's pockets
      with funding_org = org, summed over credit types);
    - `requester_used`: credits of this org they spent on usage in the last 30 days (USAGE legs out of those
      pockets; the pocket_time index serves it).
    """
    since = (now or timezone.now()) - timedelta(days=USAGE_WINDOW_DAYS)
    balance = (
        Pocket.objects.filter(wallet__kind=WalletKind.USER, wallet__user=OuterRef("requester"), funding_org=org)
        .order_by()
        .values("funding_org")
        .annotate(total=Sum("balance"))
        .values("total")
    )
    used = (
        Entry.objects.filter(
            wallet__kind=WalletKind.USER,
            wallet__user=OuterRef("requester"),
            pocket__funding_org=org,
            transfer__kind=TransferKind.USAGE,
            amount__lt=0,
            created_at__gte=since,
        )
        .order_by()
        .values("pocket__funding_org")
        .annotate(total=Sum(-F("amount")))
        .values("total")
    )
    return requests.annotate(
        requester_balance=Coalesce(Subquery(balance, output_field=BigIntegerField()), Value(0)),
        requester_used=Coalesce(Subquery(used, output_field=BigIntegerField()), Value(0)),
    )


def pending_count_for(membership: Membership) -> int:
    """The member's pending requests in this org (one count on the member's index)."""
    return CreditRequest.objects.filter(membership=membership, status=CreditRequestStatus.PENDING).count()


def at_pending_limit(membership: Membership) -> bool:
    return pending_count_for(membership) >= MAX_PENDING_REQUESTS_PER_MEMBER


def pending_requests_page(org: Organization, *, page, count: int, per_page: int = REQUESTS_PER_PAGE) -> Page:
    """A page of pending requests, oldest first, with the requester and their balance from the org and
    30-day usage (with_requester_context): one query (the count is passed in).

    The OFFSET runs in a subquery over the partial pending index alone, so a deep page skips index
    entries rather than joined rows; only the 25 rows shown are joined to their requester.
    """
    pending = CreditRequest.objects.filter(org=org, status=CreditRequestStatus.PENDING).order_by("created_at", "id")
    paginator = Paginator(pending, per_page)
    paginator.__dict__["count"] = count  # already counted for the tab badge; don't count twice
    number = _page_number(page, count, per_page)
    offset = (number - 1) * per_page
    rows = list(
        with_requester_context(
            CreditRequest.objects.filter(pk__in=Subquery(pending.values("pk")[offset : offset + per_page])), org
        )
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
