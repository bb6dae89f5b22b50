"""Buy Credits pages and the Stripe webhook endpoint. Thin: parse, call one verb, render."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest, trigger_client_event

from core.ratelimit import rate_limited
from orgs.selectors import billing_admin_membership, billing_viewer_membership
from purchases import stripe_client
from purchases.models import Purchase, PurchaseStatus
from purchases.services import (
    PurchaseError,
    credits_for_cents,
    fmt_dollars,
    parse_dollars,
    purchase_paid_outstanding,
    purchase_refresh,
    purchase_start,
    purchased_credits_expire_on,
)
from purchases.services import (
    purchase_cancel as cancel_checkout,
)
from purchases.webhooks import MalformedEvent, handle_event
from wallets.models import Wallet
from wallets.outstanding import org_outstanding_credits
from wallets.selectors import wallet_balance

log = logging.getLogger("credits.billing")


# Buy Credits' preset amounts, in dollars (those within the purchase limits are shown).
PRESET_DOLLARS = (10, 50, 100, 500)


def _limits(context: dict) -> dict:
    context.update(
        min_dollars=fmt_dollars(settings.PURCHASE_MIN_CENTS),
        max_dollars=fmt_dollars(settings.PURCHASE_MAX_CENTS),
        credits_per_usd=settings.CREDITS_PER_USD,
    )
    return context


def _amount_cents(amount: str) -> int | None:
    try:
        return parse_dollars(amount) if amount.strip() else None
    except PurchaseError:
        return None


def _presets(cents: int | None) -> list[dict]:
    lo, hi = settings.PURCHASE_MIN_CENTS, settings.PURCHASE_MAX_CENTS
    return [
        {"amount": str(c // 100), "dollars": fmt_dollars(c), "credits": credits_for_cents(c), "on": cents == c}
        for c in (d * 100 for d in PRESET_DOLLARS)
        if lo <= c <= hi
    ]


@login_required
@require_http_methods(["GET", "POST"])
@rate_limited("RATE_LIMIT_MONEY")
def buy_credits(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The Buy Credits form; Purchase creates the Checkout Session and redirects to Stripe."""
    membership = billing_admin_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    amount = request.POST.get("amount", "") if request.method == "POST" else request.GET.get("amount", "")
    error = None
    if request.method == "POST":
        try:
            cents = parse_dollars(amount)
            purchase = purchase_start(
                org=org,
                user=request.user,
                amount_cents=cents,
                success_url=lambda pk: (
                    request.build_absolute_uri(reverse("billing:purchase", args=[org.slug, pk]))
                    + "?session_id={CHECKOUT_SESSION_ID}"
                ),
                cancel_url=lambda pk: request.build_absolute_uri(
                    reverse("billing:purchase_cancel", args=[org.slug, pk])
                ),
            )
        except PurchaseError as exc:
            error = exc.message
        else:
            if request.htmx:
                response = HttpResponse(status=204)
                response["HX-Redirect"] = purchase.checkout_url
                return response
            return redirect(purchase.checkout_url)
    cents = _amount_cents(amount)
    context = _limits(
        {
            "org": org,
            "amount": amount,
            "error": error,
            "credits": credits_for_cents(cents) if cents else None,
            "dollars": fmt_dollars(cents) if cents else "",
            "presets": _presets(cents),
            "outstanding": org_outstanding_credits(org),
            # "These credits expire on D" under the org's purchased-credit expiry setting (None: never)
            "expires_on": purchased_credits_expire_on(org),
        }
    )
    if request.method == "GET" and amount.strip() and context["credits"] is None:
        try:  # the no-JavaScript "Show credits" button: say what is wrong with the amount
            parse_dollars(amount)
        except PurchaseError as exc:
            context["error"] = exc.message
        return render(request, "billing/buy.html", context)
    return render(request, "billing/buy.html", context, status=400 if error else 200)


@login_required
@require_GET
def buy_preview(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The credit count for a typed dollar amount (htmx, as you type)."""
    billing_admin_membership(user=request.user, org_slug=org_slug)
    amount = request.GET.get("amount", "")
    context = _limits({"amount": amount, "error": None, "credits": None})
    if amount.strip():
        try:
            cents = parse_dollars(amount)
            context.update(credits=credits_for_cents(cents), dollars=fmt_dollars(cents))
        except PurchaseError as exc:
            context["error"] = exc.message
    return render(request, "billing/buy.html#preview", context)


def _purchase_for(request, org_slug: str, purchase_id: int) -> Purchase:
    membership = billing_admin_membership(user=request.user, org_slug=org_slug)
    return get_object_or_404(Purchase.objects.select_related("org", "transfer"), pk=purchase_id, org=membership.org)


@login_required
@require_GET
def purchase_status(request: HttpRequest, org_slug: str, purchase_id: int) -> HttpResponse:
    """Stripe's success page: "Payment processing…" until the credits landed (polls with htmx)."""
    purchase = _purchase_for(request, org_slug, purchase_id)
    if purchase.status == PurchaseStatus.PENDING:
        try:
            purchase = purchase_refresh(purchase)
        except stripe_client.StripeError as exc:
            log.warning("success page could not refresh purchase %s: %s", purchase.pk, exc)
    context = {
        "org": purchase.org,
        "purchase": purchase,
        "balance": wallet_balance(Wallet.objects.for_org(purchase.org)) if purchase.transfer_id else None,
        "paid_outstanding": purchase_paid_outstanding(purchase) if purchase.transfer_id else 0,
    }
    template = "billing/purchase.html"
    if request.htmx and request.htmx.target == "purchase-status":
        template += "#status"
    response = render(request, template, context)
    if request.htmx and purchase.transfer_id:
        trigger_client_event(response, "balances-changed")
    return response


@login_required
@require_http_methods(["GET", "POST"])
def purchase_cancel(request: HttpRequest, org_slug: str, purchase_id: int) -> HttpResponse:
    """Stripe's cancel page. A GET (Stripe's return link, or a link from anywhere) only shows it; its button
    POSTs, with the CSRF token, to expire the unpaid session (so the link can't be paid later) and go back to
    Billing."""
    purchase = _purchase_for(request, org_slug, purchase_id)
    if request.method == "GET":
        return render(request, "billing/purchase_cancel.html", {"org": purchase.org, "purchase": purchase})
    cancel_checkout(purchase)
    messages.info(request, "Checkout cancelled. Nothing was charged and no credits moved.")
    return redirect("billing:page", org_slug=purchase.org.slug)


@login_required
@require_GET
def purchase_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Every purchase of the org, newest first, 50 a page (the Credits tab shows the latest 20)."""
    membership = billing_viewer_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    qs = Purchase.objects.filter(org=org).select_related("created_by", "transfer").order_by("-created_at", "-id")
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    context = {"org": org, "page": page, "purchases": page.object_list, "can_manage": membership.can_manage_billing}
    return render(request, "billing/purchases.html", context)


@login_required
@require_GET
def purchase_receipt(request: HttpRequest, org_slug: str, purchase_id: int) -> HttpResponse:
    """A paid purchase's receipt (printable); anyone who may view Billing. Not paid: a page saying there is none."""
    membership = billing_viewer_membership(user=request.user, org_slug=org_slug)
    purchase = get_object_or_404(
        Purchase.objects.select_related("org", "created_by"), pk=purchase_id, org=membership.org
    )
    context = {
        "org": purchase.org,
        "purchase": purchase,
        "credits_per_usd": settings.CREDITS_PER_USD,
        "can_manage": membership.can_manage_billing,
    }
    template = "billing/receipt.html" if purchase.has_receipt else "billing/receipt_none.html"
    return render(request, template, context)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's webhook endpoint: a bad or missing signature, an old timestamp or a tampered body -> 400."""
    try:
        event = stripe_client.construct_event(request.body, request.headers.get("Stripe-Signature"))
    except (stripe_client.SignatureVerificationError, ValueError, KeyError, TypeError):
        return HttpResponseBadRequest("Invalid Stripe signature or payload.")
    try:
        outcome = handle_event(event)
    except MalformedEvent as exc:  # validly signed, but not an event we can read: refused, nothing written
        log.warning("stripe webhook refused: %s", exc)
        return HttpResponseBadRequest(f"Malformed Stripe event: {exc}")
    except stripe_client.StripeError as exc:
        log.warning("stripe event %s not processed (Stripe will retry): %s", event["id"], exc)
        return JsonResponse({"error": "Stripe is unreachable; retry later."}, status=503)
    return JsonResponse({"received": True, "outcome": outcome})
