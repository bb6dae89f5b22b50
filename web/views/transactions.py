"""Transactions page, its CSV export, bulk recipients, and the balance chart partial.

Thin views: check who may look (owner, admins, managers; members 403; other orgs 404), parse the
filter with reporting.filters.parse_filter, call one selector, render. The list, the export and the chart
read the replica when core.replica.read_alias allows it; the permission check always reads the primary.
"""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpRequest, push_url

from core.replica import read_alias, run_read
from orgs.models import Membership
from orgs.selectors import billing_viewer_membership
from reporting import chart as charts
from reporting import export, filters, queries
from wallets.models import CreditType, Entry, Transfer, Wallet
from wallets.selectors import wallet_balance

MEMBER_SUGGESTIONS = 200
DETAIL_ENTRIES = 50


def _query(params: dict) -> str:
    return urlencode(params, doseq=True)


@login_required
@require_GET
@vary_on_headers("HX-Request")  # the same URL answers a partial to htmx: never cache one for the other
def transactions_page(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Every movement of the org, newest first, filtered by the GET parameters, keyset-paginated.
    With htmx (target #transactions-list) only the list is rendered; the URL is pushed by the client."""
    membership = billing_viewer_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    credit_types = list(CreditType.objects.all())
    filt, errors = filters.parse_filter(org, request.GET, credit_types=credit_types)
    cursor = (request.GET.get("cursor") or "").strip() or None
    if errors:
        cursor = None  # an unfiltered page: a cursor from the filtered list would not belong to it
    alias = read_alias(request)
    try:
        page = run_read(
            alias,
            lambda using: queries.transactions_page(org, filt, cursor=cursor, credit_types=credit_types, using=using),
        )
    except queries.CursorError:
        errors.append("That page link is not valid any more; here are the newest transactions.")
        page = run_read(
            alias, lambda using: queries.transactions_page(org, filt, credit_types=credit_types, using=using)
        )
    params = filt.as_params()
    context = {
        "org": org,
        "membership": membership,
        "page": page,
        "errors": errors,
        "form": {name: request.GET.get(name, "") for name in filters.FILTER_PARAMS},
        "kinds": filters.FILTER_KINDS,
        "credit_types": credit_types,
        "filter_query": _query(params),
        "older_query": _query({**params, "cursor": page.older_cursor}) if page.older_cursor else "",
        "newer_query": _query({**params, "cursor": page.newer_cursor}) if page.newer_cursor else "",
        "is_first_page": cursor is None or not page.newer_cursor,
    }
    template = "billing/transactions.html"
    if request.htmx and request.htmx.target == "transactions-list" and not request.htmx.history_restore_request:
        response = render(request, template + "#transactions-list", context)
        # The address bar shows only the parameters in use (a form GET also sends the empty ones).
        used = [(k, v) for k, values in request.GET.lists() for v in values if v.strip()]
        return push_url(response, request.path + ("?" + urlencode(used) if used else ""))
    context["member_emails"] = list(
        Membership.objects.filter(org=org)
        .order_by("user__email")
        .values_list("user__email", flat=True)[:MEMBER_SUGGESTIONS]
    )
    return render(request, template, context)


@login_required
@require_GET
def transactions_export(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The current filter as CSV, streamed in keyset chunks: memory stays flat for millions of rows.
    A malformed filter sends the user back to the page, which explains what is wrong."""
    membership = billing_viewer_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    filt, errors = filters.parse_filter(org, request.GET)
    if errors:
        return redirect(reverse("billing:transactions", args=[org.slug]) + "?" + request.GET.urlencode())
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(export.export_csv(org, filt, using=read_alias(request)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{org.slug}-transactions-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
@vary_on_headers("HX-Request")  # the same URL answers a partial to htmx: never cache one for the other
def transfer_recipients(request: HttpRequest, org_slug: str, transfer_id: int) -> HttpResponse:
    """Who received a bulk transfer (htmx: the list alone, expanded under the row)."""
    membership = billing_viewer_membership(user=request.user, org_slug=org_slug)
    found = queries.transfer_recipients(membership.org, transfer_id)
    if found is None:
        raise Http404("No such transaction.")
    transfer, rows, total = found
    context = {"org": membership.org, "transfer": transfer, "recipients": rows, "total": total}
    template = "billing/transfer_recipients.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#recipients"
    return render(request, template, context)


@login_required
@require_GET
def transfer_detail(request: HttpRequest, org_slug: str, transfer_id: int) -> HttpResponse:
    """One transfer of the org, read-only: what Transactions shows in its row, plus its entries (the first
    50; a bulk transfer's full list is its recipients page). A purchase links here from the Credits tab."""
    membership = billing_viewer_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    transfer = Transfer.objects.select_related("actor").filter(org=org, pk=transfer_id).first()
    if transfer is None:
        raise Http404("No such transaction.")
    entries = list(
        Entry.objects.filter(transfer=transfer)
        .select_related("wallet__user", "credit_type")
        .order_by("amount", "id")[: DETAIL_ENTRIES + 1]
    )
    context = {
        "org": org,
        "transfer": transfer,
        "entries": entries[:DETAIL_ENTRIES],
        "more_entries": len(entries) > DETAIL_ENTRIES,
        "org_wallet_id": Wallet.objects.for_org(org).pk,
        "day": timezone.localdate(transfer.created_at).isoformat(),
    }
    return render(request, "billing/transfer_detail.html", context)


def chart_days(request) -> int:
    try:
        days = int(request.GET.get("chart", 30))
    except ValueError:
        return 30
    return days if days in charts.CHART_RANGES else 30


@login_required
@require_GET
def balance_chart(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The Billing page's balance-over-time card alone (switching 30/90 days with htmx)."""
    membership = billing_viewer_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    balance = wallet_balance(Wallet.objects.for_org(org))
    chart = chart_for(request, balance)
    return render(request, "billing/_balance_chart.html", {"org": org, "chart": chart})


def chart_for(request: HttpRequest, balance) -> charts.BalanceChart:
    """The balance chart of `balance` (wallets.selectors.wallet_balance, read on the primary), its history
    read on the replica when read_alias allows it."""
    days = chart_days(request)
    return run_read(
        read_alias(request),
        lambda using: charts.balance_chart(balance.wallet, balance.by_type, days=days, using=using),
    )
