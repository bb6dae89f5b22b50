"""Auto top-up pages: the saved card, the settings form and the attempts. Owners and admins only; thin views."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest

from core.ratelimit import rate_limited
from orgs.selectors import billing_admin_membership
from purchases import stripe_client
from purchases.auto_top_up import (
    MAX_TRIES,
    auto_top_up_for,
    finish_card_setup,
    month_start,
    recent_attempts,
    save_settings,
    spent_this_month,
    start_card_setup,
)
from purchases.forms import AutoTopUpForm
from purchases.services import fmt_dollars

log = logging.getLogger("credits.billing")


def _initial(row) -> dict:
    if row is None or not row.has_settings:
        return {"enabled": bool(row and row.has_card)}  # not ticked while there is no card to charge
    cap = row.monthly_cap_cents
    return {
        "enabled": row.enabled,
        "threshold": f"{row.threshold_credits}",
        "target": f"{row.target_credits}",
        "monthly_cap": f"{cap // 100}.{cap % 100:02d}",
    }


def _context(org, row, form) -> dict:
    spent = spent_this_month(org.pk) if row is not None else 0
    return {
        "org": org,
        "row": row,
        "form": form,
        "attempts": recent_attempts(org),
        "spent": fmt_dollars(spent),
        "cap": fmt_dollars(row.monthly_cap_cents) if row is not None and row.monthly_cap_cents else "",
        "month": month_start().strftime("%B %Y"),
        "max_tries": MAX_TRIES,
        **AutoTopUpForm.limits(),
    }


@login_required
@require_http_methods(["GET", "POST"])
@rate_limited("RATE_LIMIT_MONEY")
def auto_top_up_page(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The settings form (POST saves it: 302 back, or 400 with the errors next to the fields)."""
    org = billing_admin_membership(user=request.user, org_slug=org_slug).org
    row = auto_top_up_for(org)
    has_card = row is not None and row.has_card
    if request.method == "POST":
        form = AutoTopUpForm(request.POST, has_card=has_card)
        if form.is_valid():
            d = form.cleaned_data
            save_settings(
                org=org,
                user=request.user,
                enabled=d["enabled"],
                threshold=d["threshold"],
                target=d["target"],
                monthly_cap_cents=d["monthly_cap"],
            )
            messages.success(request, "Auto top-up saved." if d["enabled"] else "Auto top-up saved (off).")
            return redirect("auto_top_up:page", org_slug=org.slug)
        return render(request, "billing/auto_top_up.html", _context(org, row, form), status=400)
    form = AutoTopUpForm(initial=_initial(row), has_card=has_card)
    return render(request, "billing/auto_top_up.html", _context(org, row, form))


@login_required
@require_GET
def auto_top_up_summary(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The Billing page's Auto top-up section (loaded by htmx; without JavaScript the section links here)."""
    org = billing_admin_membership(user=request.user, org_slug=org_slug).org
    row = auto_top_up_for(org)
    return render(
        request,
        "billing/_auto_top_up_summary.html",
        {"org": org, "row": row, "attempts": recent_attempts(org, limit=3)},
    )


@login_required
@require_POST
@rate_limited("RATE_LIMIT_MONEY")
def card_setup(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Save (or replace) the card: Stripe Checkout in setup mode, then back to the return page."""
    org = billing_admin_membership(user=request.user, org_slug=org_slug).org
    done = request.build_absolute_uri(reverse("auto_top_up:card_done", kwargs={"org_slug": org.slug}))
    back = request.build_absolute_uri(reverse("auto_top_up:page", kwargs={"org_slug": org.slug}))
    try:
        url = start_card_setup(
            org=org, user=request.user, success_url=f"{done}?session_id={{CHECKOUT_SESSION_ID}}", cancel_url=back
        )
    except stripe_client.StripeError as exc:
        log.warning("auto top-up card setup failed org=%s: %s", org.pk, exc)
        messages.error(request, "We could not reach Stripe to save a card. Nothing was saved; try again.")
        return redirect("auto_top_up:page", org_slug=org.slug)
    return redirect(url)


@login_required
@require_GET
def card_done(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Stripe's return after the card was saved: re-fetch the session and save its card (the webhook does the
    same; whichever comes first saves it). Another org's session is a 404."""
    org = billing_admin_membership(user=request.user, org_slug=org_slug).org
    session_id = request.GET.get("session_id", "")
    if not session_id.startswith("cs_") or len(session_id) > 255:
        raise Http404("No such card setup.")
    try:
        session = stripe_client.retrieve_setup_session(session_id)
    except stripe_client.StripeError as exc:
        if stripe_client.is_not_found(exc):
            raise Http404("No such card setup.") from None
        messages.error(request, "We could not reach Stripe; the card will appear here once Stripe confirms it.")
        return redirect("auto_top_up:page", org_slug=org.slug)
    row = finish_card_setup(session, org=org)
    if row is None:
        raise Http404("No such card setup.")
    if row.has_card:
        messages.success(request, f"Card ending {row.card_last4} saved for auto top-up.")
    return redirect("auto_top_up:page", org_slug=org.slug)
