"""Credit requests from the browser: members ask (Wallet page), owners/admins decide (Billing tab).

Each view checks permissions first (orgs.selectors: 404 outside the org, 403 for the wrong role),
parses one form, calls one verb in credit_requests.services and renders one template or partial. Every htmx
form has a plain action too; without JS the views redirect with a message.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest, trigger_client_event

from core.errors import DomainError
from core.ratelimit import rate_limited
from credit_requests.display import decision_note
from credit_requests.forms import ApproveForm, CreditRequestForm, RejectForm
from credit_requests.models import CreditRequest
from credit_requests.selectors import at_pending_limit, decided_requests_page, member_requests, with_requester_context
from credit_requests.services import (
    REQUESTING_ROLES,
    OwnersAndAdminsDoNotRequest,
    TooManyPendingRequests,
    credit_request_approve,
    credit_request_cancel,
    credit_request_create,
    credit_request_reject,
)
from orgs.selectors import active_membership, billing_admin_membership
from wallets.models import Wallet
from wallets.selectors import wallet_balance
from web.toast import add_toast
from web.views.billing import billing_context

CHANGED = "credit-requests-changed"


# --- Admin side -------------------------------------------------------------------------------


@require_GET
@login_required
def requests_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The pending list alone (re-fetched after a decision), with the tabs' badge refreshed out of band."""
    context = billing_context(request, org_slug, "requests")
    return render(request, "billing/_requests_list.html", {**context, "refresh": True})


@require_GET
@login_required
def requests_history(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Decided requests, newest first: who decided, when, what."""
    context = billing_context(request, org_slug, "requests")
    context["requests_view"] = "history"
    context["history"] = decided_requests_page(context["org"], page=request.GET.get("page"))
    template = "billing/billing.html"
    if request.htmx and request.htmx.target == "tab-panel":
        template += "#tab-panel"
    return render(request, template, context)


def _approve_credit_types(org):
    """Credit types the org wallet holds (Org-allocated always offered first: it is the default)."""
    balance = wallet_balance(Wallet.objects.for_org(org))
    return [
        (b.credit_type, b.balance) for b in balance.by_type if b.balance > 0 or b.credit_type.slug == "org-allocated"
    ]


def _decide(request: HttpRequest, org_slug: str, request_id: int, action: str) -> HttpResponse:
    membership = billing_admin_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    # With the requester's balance from this org and 30-day usage, for the dialog (same query).
    credit_request = get_object_or_404(
        with_requester_context(CreditRequest.objects.select_related("requester", "decided_by"), org),
        pk=request_id,
        org=org,
    )
    if action == "approve":
        form_class, kwargs = ApproveForm, {"credit_request": credit_request, "credit_types": _approve_credit_types(org)}
    else:
        form_class, kwargs = RejectForm, {}
    done = None
    if request.method == "POST":
        form = form_class(request.POST, **kwargs)
        if form.is_valid():
            try:
                if action == "approve":
                    done = credit_request_approve(
                        org=org,
                        request_id=credit_request.pk,
                        actor=request.user,
                        amount=form.cleaned_data["amount"],
                        credit_type=form.cleaned_data["credit_type"],
                    )
                else:
                    done = credit_request_reject(
                        org=org, request_id=credit_request.pk, actor=request.user, reason=form.cleaned_data["reason"]
                    )
            except CreditRequest.DoesNotExist:
                raise Http404 from None
            except DomainError as exc:
                form.add_error(None, exc.message)
    else:
        form = form_class(**kwargs)
    if done is not None:
        note = decision_note(done)
        if not request.htmx:
            messages.success(request, note)
            return redirect("billing:requests", org_slug=org.slug)
        # The dialog closes (static/js/app.js, "close-dialog") and the toast states the outcome; the body is
        # the same note, for a dialog that is not there to close.
        title = "Request approved" if action == "approve" else "Request rejected"
        response = render(request, "billing/_request_done.html", {"note": note, "title": title})
        trigger_client_event(response, CHANGED)
        if action == "approve":
            trigger_client_event(response, "balances-changed")
        trigger_client_event(response, "close-dialog")
        add_toast(response, note)
        return response
    context = {"org": org, "form": form, "credit_request": credit_request, "action": action}
    template = "billing/request_decide.html"
    if request.htmx:
        template += "#decide-form"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@login_required
@rate_limited("RATE_LIMIT_MONEY")
def request_approve(request: HttpRequest, org_slug: str, request_id: int) -> HttpResponse:
    return _decide(request, org_slug, request_id, "approve")


@require_http_methods(["GET", "POST"])
@login_required
def request_reject(request: HttpRequest, org_slug: str, request_id: int) -> HttpResponse:
    return _decide(request, org_slug, request_id, "reject")


# --- Member side ------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
@rate_limited("RATE_LIMIT_REQUESTS")
def request_new(request: HttpRequest, org_slug: str) -> HttpResponse:
    """A member (or manager) asks the org for credits (Amount, Reason). Owners and admins are told to
    transfer to themselves instead, and nothing is created (the service refuses them too)."""
    membership = active_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    template = "billing/request_new.html"
    if request.htmx:
        template += "#request-form"
    if membership.role not in REQUESTING_ROLES:
        refused = OwnersAndAdminsDoNotRequest(membership.role).message
        return render(request, template, {"org": org, "refused": refused})
    at_limit = {"org": org, "at_limit": TooManyPendingRequests().message}
    if request.method == "GET" and at_pending_limit(membership):
        return render(request, template, at_limit)  # said before the form; the service refuses a POST anyway
    if request.method == "POST":
        form = CreditRequestForm(request.POST)
        if form.is_valid():
            try:
                submitted = credit_request_create(
                    org=org,
                    user=request.user,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    client_key=form.cleaned_data["client_key"],
                )
            except TooManyPendingRequests:
                return render(request, template, at_limit)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                note = f"Your request for {submitted.request.amount:,} credits was sent to the admins of {org.name}."
                if not request.htmx:
                    messages.success(request, note)
                    return redirect("wallet")
                response = render(request, "billing/_request_done.html", {"note": note})
                trigger_client_event(response, CHANGED)
                return response
    else:
        form = CreditRequestForm()
    return render(request, template, {"org": org, "form": form})


@require_POST
@login_required
def request_cancel(request: HttpRequest, org_slug: str, request_id: int) -> HttpResponse:
    """The author withdraws a pending request."""
    membership = active_membership(user=request.user, org_slug=org_slug)
    try:
        credit_request_cancel(request_id=request_id, user=request.user, org=membership.org)
    except CreditRequest.DoesNotExist:
        raise Http404 from None
    except DomainError as exc:
        if not request.htmx:
            messages.error(request, exc.message)
    else:
        if not request.htmx:
            messages.success(request, "Request cancelled.")
    if not request.htmx:
        return redirect("wallet")
    return member_panel_response(request, membership)


@require_GET
@login_required
def member_panel(request: HttpRequest, org_slug: str) -> HttpResponse:
    membership = active_membership(user=request.user, org_slug=org_slug)
    return member_panel_response(request, membership)


def member_panel_response(request, membership) -> HttpResponse:
    context = {"org": membership.org, "requests": member_requests(membership), "request": request}
    return render(request, "billing/_member_requests_panel.html", context)
