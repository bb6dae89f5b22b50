"""How the credit-request pages say amounts and ages: one helper each, used by the templates (via the
`credit_requests` template library) and by the views' decision messages."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.timesince import timesince

from core.money import credits_and_dollars, dollars

JUST_NOW = timedelta(minutes=1)


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """ "just now" under a minute, else "5 minutes ago", "2 days, 3 hours ago"."""
    if moment is None:
        return ""
    now = now or timezone.now()
    if now - moment < JUST_NOW:
        return "just now"
    return f"{timesince(moment, now)} ago"


def decision_note(request) -> str:
    """What an admin is told after deciding: "Approved 800 of 1,200 credits ($8.00) for Ann.", "Approved 1,200
    credits ($12.00) for Ann." or "Rejected request for 1,200 credits from Ann ($12.00)."."""
    who = request.requester.display_name
    if request.granted_amount is not None:
        granted = request.granted_amount
        if granted == request.amount:
            return f"Approved {credits_and_dollars(granted)} for {who}."
        return f"Approved {granted:,} of {request.amount:,} credits ({dollars(granted)}) for {who}."
    return f"Rejected request for {request.amount:,} credits from {who} ({dollars(request.amount)})."
