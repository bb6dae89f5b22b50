"""Billing > Credit expiry: the org's "purchased credits expire after N months" setting (owners and admins).
Thin: parse with web.forms.PurchasedExpiryForm, save the one field. docs/expiry.md "What people see"."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpRequest

from orgs.selectors import billing_admin_membership
from purchases.services import purchased_credits_expire_on
from web.forms import PurchasedExpiryForm


@login_required
@require_http_methods(["GET", "POST"])
def expiry_settings(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Show and change the setting; bad input is shown next to the field and nothing is saved (400)."""
    org = billing_admin_membership(user=request.user, org_slug=org_slug).org
    current = org.purchased_credits_expire_months
    status = 200
    if request.method == "POST":
        form = PurchasedExpiryForm(request.POST)
        if form.is_valid():
            months = form.cleaned_data["months"]
            org.purchased_credits_expire_months = months
            org.save(update_fields=["purchased_credits_expire_months"])
            messages.success(
                request,
                f"Purchased credits now expire {months} month{'s' if months != 1 else ''} after the purchase."
                if months
                else "Purchased credits now never expire.",
            )
            return redirect("billing:page", org_slug)
        status = 400
    else:
        form = PurchasedExpiryForm(initial={"months": f"{current}" if current else ""})
    context = {"org": org, "form": form, "current": current, "example_day": purchased_credits_expire_on(org)}
    return render(request, "billing/expiry_settings.html", context, status=status)
