"""Low-balance alerts: the org's thresholds (Billing > Low-balance alerts, owner/admins) and a member's
personal threshold (a form on the Wallet page). Thin: parse with alerts.forms, save with alerts.services."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpRequest

from alerts.forms import MemberAlertForm, OrgAlertsForm
from alerts.models import AlertRule
from alerts.services import save_member_rule, save_org_rules
from core.money import credits_and_dollars
from orgs.selectors import billing_admin_membership
from wallets.models import CreditType, Wallet
from wallets.selectors import wallet_balance


@login_required
@require_http_methods(["GET", "POST"])
def org_settings(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The org wallet's thresholds: one on the total, one per credit type; blank removes an alert."""
    admin = billing_admin_membership(user=request.user, org_slug=org_slug)
    org = admin.org
    credit_types = list(CreditType.objects.all())
    rules = list(AlertRule.objects.filter(org=org).select_related("credit_type"))
    current = {rule.credit_type: rule.threshold for rule in rules}
    data = request.POST if request.method == "POST" else None  # an empty POST is a valid "no alerts"
    form = OrgAlertsForm(data, credit_types=credit_types, initial_rules=current)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            save_org_rules(org=org, thresholds=form.thresholds(), actor=request.user)
            messages.success(request, "Low-balance alerts saved.")
            return redirect("alerts:org_settings", org_slug)
        status = 400
    context = {
        "org": org,
        "form": form,
        "rules": sorted(rules, key=lambda r: (r.credit_type_id is not None, r.credit_type_id or 0)),
        "balance": wallet_balance(Wallet.objects.for_org(org)),
    }
    return render(request, "alerts/org_settings.html", context, status=status)


@login_required
@require_POST
def member_alert(request: HttpRequest) -> HttpResponse:
    """The signed-in person's threshold on their own Default wallet (nobody else's: there is no id to change)."""
    form = MemberAlertForm(request.POST)
    if form.is_valid():
        threshold = form.cleaned_data["threshold"]
        save_member_rule(user=request.user, threshold=threshold)
        messages.success(
            request,
            f"Low-balance alert set: below {credits_and_dollars(threshold)}."
            if threshold
            else "Low-balance alert removed.",
        )
        return redirect("wallet")
    wallet = Wallet.objects.for_user(request.user)
    context = {"member_alert_form": form, "wallet": wallet, "balance": wallet_balance(wallet)}
    return render(request, "alerts/member_alert_page.html", context, status=400)
