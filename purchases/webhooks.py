"""Stripe webhook events: verified by the view, recorded once, acted on from re-fetched Stripe objects."""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.utils import timezone

from purchases import stripe_client
from purchases.models import Purchase, StripeEvent
from purchases.services import (
    _purchase_for_charge,
    purchase_for_session,
    purchase_sync_dispute,
    purchase_sync_refunds,
    purchase_sync_session,
)

log = logging.getLogger("credits.stripe")

CHECKOUT_EVENTS = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
}
REFUND_EVENTS = {"charge.refunded", "refund.created", "refund.updated", "charge.refund.updated"}
DISPUTE_EVENTS = {
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
}


_INSERT_EVENT = (
    f"INSERT INTO {StripeEvent._meta.db_table} (event_id, type, purchase_id, received_at) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING id"
)


def _record(event, purchase_id=None) -> bool:
    """Store the event id; False when it was already stored (a duplicate delivery). A concurrent duplicate
    waits on the unique index until the first delivery commits, then sees the conflict."""
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_EVENT, [event["id"], event["type"][:100], purchase_id, timezone.now()])
        return cursor.fetchone() is not None


_SEEN_AND_PURCHASE = (
    f"SELECT EXISTS (SELECT 1 FROM {StripeEvent._meta.db_table} WHERE event_id = %s), "
    f"(SELECT id FROM {Purchase._meta.db_table} WHERE stripe_session_id = %s)"
)


def _seen_and_purchase_id(event_id: str, session_id: str | None) -> tuple[bool, int | None]:
    """One round trip: was the event already handled, and which purchase has this session id."""
    with connection.cursor() as cursor:
        cursor.execute(_SEEN_AND_PURCHASE, [event_id, session_id])
        seen, purchase_id = cursor.fetchone()
    return bool(seen), purchase_id


def handle_event(event) -> str:
    """Act on one verified event; returns what happened ("processed", "duplicate", "ignored: …")."""
    etype = event["type"]
    obj = event["data"]["object"]
    session_id = obj.get("id") if etype in CHECKOUT_EVENTS else None
    seen, purchase_id = _seen_and_purchase_id(event["id"], session_id)
    if seen:
        return "duplicate"
    if etype in CHECKOUT_EVENTS:
        session = stripe_client.retrieve_checkout_session(obj["id"])
        purchase = Purchase(pk=purchase_id) if purchase_id else purchase_for_session(session)
        if purchase is None:
            log.warning("stripe event %s: unknown checkout session %s ignored", event["id"], obj["id"])
            return "ignored: unknown session"
        with transaction.atomic():
            if not _record(event, purchase.pk):
                return "duplicate"
            purchase_sync_session(session, event_type=etype, purchase=purchase)
        return "processed"
    if etype in REFUND_EVENTS:
        charge_id = obj["id"] if obj.get("object") == "charge" else stripe_client_id(obj.get("charge"))
        if not charge_id:
            return "ignored: no charge"
        charge = stripe_client.retrieve_charge(charge_id)
        purchase = _purchase_for_charge(charge)
        if purchase is None:
            log.warning("stripe event %s: charge %s is not a purchase", event["id"], charge_id)
            return "ignored: unknown charge"
        with transaction.atomic():
            if not _record(event, purchase.pk):
                return "duplicate"
            purchase_sync_refunds(charge)
        return "processed"
    if etype in DISPUTE_EVENTS:
        dispute = stripe_client.retrieve_dispute(obj["id"])
        charge_id = stripe_client_id(dispute.get("charge"))
        charge = stripe_client.retrieve_charge(charge_id) if charge_id else None
        purchase = _purchase_for_charge(charge) if charge is not None else None
        if purchase is None:
            log.warning("stripe event %s: dispute %s is not on a purchase", event["id"], obj["id"])
            return "ignored: unknown charge"
        with transaction.atomic():
            if not _record(event, purchase.pk):
                return "duplicate"
            purchase_sync_dispute(dispute, charge)
        return "processed"
    _record(event)
    return "ignored: unhandled type"


def stripe_client_id(value) -> str:
    if not value:
        return ""
    return value if isinstance(value, str) else value.get("id", "")
