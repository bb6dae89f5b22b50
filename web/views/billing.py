from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpRequest

from core.replica import read_alias, run_read
from credit_requests.selectors import pending_request_count, pending_requests_page
from orgs.selectors import billing_viewer_membership
from purchases.auto_top_up import auto_top_up_for, recent_attempts
from purchases.services import org_purchases
from reporting.usage import BurnRate, org_burn_rate
from wallets.expiring import balance_with_expiry
from wallets.models import Wallet
from wallets.outstanding import org_outstanding_credits
from wallets.selectors import recent_entries
from web.views.transactions import chart_for

TABS = [("credits", "Credits", "billing:page"), ("requests", "Credit Requests", "billing:requests")]


def billing_context(request, org_slug: str, tab: str) -> dict:
    membership = billing_viewer_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    wallet = Wallet.objects.for_org(org)
    balance, expiry = balance_with_expiry(wallet)  # the same two queries as wallet_balance: expiry days folded in
    context = {
        "org": org,
        "membership": membership,
        "can_manage": membership.can_manage_billing,
        "balance": balance,
        "expiry": expiry,  # "N credits ($X) expire on D" on the Balance card (docs/expiry.md)
        "tab": tab,
        "tabs": TABS,
        "pending_count": pending_request_count(org),  # the badge on the Credit Requests tab
    }
    if tab == "credits":
        context["entries"] = recent_entries(wallet, limit=10)
    elif tab == "requests":
        context["requests_view"] = "pending"
        context["pending"] = pending_requests_page(org, page=request.GET.get("page"), count=context["pending_count"])
    _purchase_context(context, org, tab)
    return context


def burn_for(request: HttpRequest, context: dict) -> BurnRate:
    """The Balance card's burn rate and runway (reporting.usage: one query on the org's Usage pockets), on the
    replica when read_alias allows it; the runway uses the org wallet's total balance, read on the primary."""
    org_id, total = context["org"].pk, context["balance"].total
    return run_read(read_alias(request), lambda using: org_burn_rate(org_id, total, using=using))


def _purchase_context(context: dict, org, tab: str) -> None:
    """Buy Credits: the outstanding balance on the Balance card, the Purchases list on the Credits tab."""
    context["outstanding"] = org_outstanding_credits(org)
    if tab == "credits":
        context["purchases"] = org_purchases(org)


@login_required
@require_GET
@vary_on_headers("HX-Request")  # the same URL answers a partial to htmx: never cache one for the other
def billing_page(request: HttpRequest, org_slug: str, tab: str = "credits") -> HttpResponse:
    """Billing: the Balance card, then the Credits and Credit Requests tabs. Tabs swap with htmx."""
    context = billing_context(request, org_slug, tab)
    template = "billing/billing.html"
    if request.htmx and request.htmx.target == "tab-panel":
        template += "#tab-panel"
    else:  # the balance-over-time card (billing/transactions.py): one aggregate query
        balance = context["balance"]
        context["chart"] = chart_for(request, balance)  # on the replica when core.replica.read_alias allows
        context["burn"] = burn_for(request, context)
        if context["can_manage"]:  # the Auto top-up section, rendered here so it shows without JavaScript
            row = auto_top_up_for(context["org"])
            context["auto_top_up"] = row
            context["auto_top_up_attempts"] = recent_attempts(context["org"], limit=3) if row else []
    return render(request, template, context)


@login_required
@require_GET
def balance_card(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The Balance card alone, re-fetched when something on the page moved credits."""
    context = billing_context(request, org_slug, tab="")
    context["burn"] = burn_for(request, context)
    return render(request, "billing/billing.html#balance-card", context)
