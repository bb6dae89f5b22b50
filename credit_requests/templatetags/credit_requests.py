"""Wallet page slots for credit requests: the Request credits button and the status panel.

Inclusion tags, so the Wallet view needs no change: they read the current workspace from the request
(one query for the panel; nothing in a personal workspace).
"""

from django import template

from credit_requests.selectors import member_requests
from credit_requests.services import REQUESTING_ROLES

register = template.Library()


def _org_membership(context):
    request = context.get("request")
    workspace = getattr(request, "workspace", None)
    return workspace.membership if workspace is not None else None


@register.inclusion_tag("billing/_member_request_button.html", takes_context=True)
def credit_request_button(context):
    """Members and managers ask; owners and admins transfer to themselves from Billing instead."""
    membership = _org_membership(context)
    return {
        "show": membership is not None and membership.role in REQUESTING_ROLES,
        "org": membership.org if membership else None,
        "request": context.get("request"),
    }


@register.inclusion_tag("billing/_member_requests_panel_slot.html", takes_context=True)
def credit_requests_panel(context):
    membership = _org_membership(context)
    if membership is None:
        return {"show": False}
    requests = member_requests(membership)
    return {
        # An owner or admin only sees the panel for requests they made before a promotion.
        "show": membership.role in REQUESTING_ROLES or bool(requests),
        "org": membership.org,
        "requests": requests,
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
    }
