"""Stripe webhook events: verified by the view, recorded once, acted on from re-fetched Stripe objects."""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.utils import timezone

from purchases import auto_top_up, stripe_client
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
# Auto top-up's off-session charges (docs/auto-top-up.md); other payment intents (Buy Credits' own) are
# acknowledged: their checkout events fulfil them.
PAYMENT_INTENT_EVENTS = {"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"}
HANDLED_EVENTS = CHECKOUT_EVENTS | REFUND_EVENTS | DISPUTE_EVENTS | PAYMENT_INTENT_EVENTS


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


class MalformedEvent(ValueError):
    """A validly signed event without the fields every Stripe event has: refused (400), nothing written."""


def _check_shape(event) -> None:
    """Every event has a string `id` and `type` and a `data.object`; the ones we act on name their object by
    `data.object.id`. (Other types are acknowledged whatever their object: some, like `balance.available`,
    have no id.)"""
    if not isinstance(event, dict):
        raise MalformedEvent("The event is not a JSON object.")
    for field in ("id", "type"):
        if not isinstance(event.get(field), str) or not event[field]:
            raise MalformedEvent(f"The event has no {field}.")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEvent("The event has no data.object.")
    obj_id = data["object"].get("id")
    if event["type"] in HANDLED_EVENTS and (not isinstance(obj_id, str) or not obj_id):
        raise MalformedEvent("The event has no data.object.id.")


def handle_event(event) -> str:
    """Act on one verified event; returns what happened ("processed", "duplicate", "ignored: …").

    Raises MalformedEvent (before anything is written) for an event without id, type or data.object.id. An
    object Stripe answers 404 for is acknowledged and logged, like an unknown session: it will never exist, so a
    retry would not help (and nothing is written)."""
    _check_shape(event)
    try:
        return _handle(event)
    except stripe_client.StripeError as exc:
        if not stripe_client.is_not_found(exc):
            raise  # Stripe unreachable or failing: the view answers 503 and Stripe retries
        obj = event["data"]["object"]
        log.warning(
            "stripe event %s (%s): Stripe has no such object (%s); acknowledged, nothing written",
            event["id"],
            event["type"],
            obj.get("id"),
        )
        return "ignored: unknown session" if event["type"] in CHECKOUT_EVENTS else "ignored: not found at Stripe"


def _handle(event) -> str:
    etype = event["type"]
    obj = event["data"]["object"]
    session_id = obj.get("id") if etype in CHECKOUT_EVENTS else None
    seen, purchase_id = _seen_and_purchase_id(event["id"], session_id)
    if seen:
        return "duplicate"
    if etype in CHECKOUT_EVENTS and obj.get("mode") == "setup":
        # Saving a card for auto top-up (the body only routes; the session is re-fetched).
        session = stripe_client.retrieve_setup_session(obj["id"])
        with transaction.atomic():
            if not _record(event):
                return "duplicate"
            saved = auto_top_up.finish_card_setup(session)
        return "processed" if saved is not None else "ignored: unknown session"
    if etype in PAYMENT_INTENT_EVENTS and (obj.get("metadata") or {}).get("purpose") == auto_top_up.PURPOSE:
        pi = stripe_client.retrieve_payment_intent(obj["id"])
        if auto_top_up.attempt_for_payment_intent(pi) is None:
            log.warning("stripe event %s: payment intent %s is not an auto top-up", event["id"], obj["id"])
            return "ignored: unknown payment intent"
        with transaction.atomic():
            if not _record(event):
                return "duplicate"
            auto_top_up.settle_payment_intent(pi)
        return "processed"
    if etype in PAYMENT_INTENT_EVENTS:
        _record(event)
        return "ignored: unhandled type"
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
        if purchase is None and auto_top_up.attempt_for_charge(charge) is not None:
            with transaction.atomic():
                if not _record(event):
                    return "duplicate"
                auto_top_up.sync_refunds(charge)
            return "processed"
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
        if purchase is None and charge is not None and auto_top_up.attempt_for_charge(charge) is not None:
            # An auto top-up's off-session charge: the same dispute code, on the TopUpAttempt row.
            with transaction.atomic():
                if not _record(event):
                    return "duplicate"
                auto_top_up.sync_dispute(dispute, charge)
            return "processed"
        if purchase is None:
            log.warning("stripe event %s: dispute %s is not on a purchase or auto top-up", event["id"], obj["id"])
            return "ignored: unknown charge"
        with transaction.atomic():
            if not _record(event, purchase.pk):
                return "duplicate"
            purchase_sync_dispute(dispute, charge)
        return "processed"
    _record(event)
    return "ignored: unhandled type"


def stripe_client_id(value) -> str:
    """An expandable field's id: the string itself, or the expanded object's id; "" for anything else."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""
