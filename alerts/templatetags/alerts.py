"""The Balance card's low-balance banner and the wallet page's alert form get their data here, in ONE query each,
so the pages that include them (billing/billing.html, wallets/wallet.html) pay one query, whatever the number of
rules."""

from django import template

from alerts.forms import MemberAlertForm
from alerts.models import AlertRule

register = template.Library()


@register.simple_tag
def org_alert_rules(org) -> dict:
    """The org's rules (total first, then by credit type) and the fired ones, for the Balance card."""
    rules = list(
        AlertRule.objects.filter(org=org)
        .select_related("credit_type")
        .order_by("credit_type__sort_order", "credit_type_id", "pk")
    )
    rules.sort(key=lambda r: r.credit_type_id is not None)  # the total's rule first
    return {"rules": rules, "fired": [r for r in rules if r.is_fired]}


@register.simple_tag(takes_context=True)
def member_alert(context) -> dict:
    """The signed-in member's personal rule on their Default wallet, and its form."""
    user = context["request"].user
    rule = AlertRule.objects.filter(user=user, credit_type__isnull=True).first()
    form = context.get("member_alert_form") or MemberAlertForm(
        initial={"threshold": f"{rule.threshold:,}"} if rule else None
    )
    return {"rule": rule, "form": form}
