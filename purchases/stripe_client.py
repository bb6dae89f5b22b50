"""The only module that talks to Stripe (through the official SDK).

Keys and the API base come from settings, so the same code talks to Stripe itself or to the offline
stand-in (devtools/stripe_standin): only STRIPE_API_BASE and the keys differ. The stand-in may also hand the
SDK a transport (`use_http_client`) that answers calls to its own address in-process (docs/stripe.md).
"""

from __future__ import annotations

import logging
from functools import cache

import stripe
from django.conf import settings

log = logging.getLogger("credits.stripe")

StripeError = stripe.StripeError
SignatureVerificationError = stripe.SignatureVerificationError

# The SDK's HTTP transport; None is the SDK's default (the network). Set by the stand-in, never by app code.
_http_client: stripe.HTTPClient | None = None


def use_http_client(http_client: stripe.HTTPClient | None) -> None:
    """Send the SDK's requests through `http_client` (None: the SDK's default)."""
    global _http_client
    _http_client = http_client
    _client_for.cache_clear()


def is_refused(exc: Exception) -> bool:
    """Stripe answered and refused the request itself (400/404: no such card or customer, a reused idempotency
    key with other parameters): asking again with the same request cannot succeed."""
    return isinstance(exc, stripe.InvalidRequestError) and exc.http_status in (400, 404)


def is_not_found(exc: Exception) -> bool:
    """Stripe answered 404: it has no such object (retrying will not make one)."""
    return isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404


@cache
def _client_for(api_key: str, api_base: str) -> stripe.StripeClient:
    base = {"api": api_base.rstrip("/")} if api_base else None
    return stripe.StripeClient(api_key, base_addresses=base, max_network_retries=2, http_client=_http_client)


def _plain(obj) -> dict:
    """Stripe objects as plain dicts (the SDK's objects are not dicts since v12)."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def client() -> stripe.StripeClient:
    return _client_for(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


def create_checkout_session(
    *,
    amount_cents: int,
    currency: str,
    credits: int,
    purchase_id: int,
    purchase_key: str,
    org_id: int,
    org_name: str,
    customer_email: str,
    success_url: str,
    cancel_url: str,
) -> dict:
    """A Checkout Session for one purchase; retrying with the same purchase returns the same session."""
    session = client().v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency,
                        "unit_amount": amount_cents,
                        "product_data": {
                            "name": f"{credits:,} credits",
                            "description": f"Prepaid credits for {org_name}",
                        },
                    },
                }
            ],
            "client_reference_id": str(purchase_id),
            "metadata": {"org_id": str(org_id), "purchase_id": str(purchase_id), "credits": str(credits)},
            "payment_intent_data": {"metadata": {"org_id": str(org_id), "purchase_id": str(purchase_id)}},
            "customer_email": customer_email or None,
            "success_url": success_url,
            "cancel_url": cancel_url,
        },
        options={"idempotency_key": f"credits-checkout-{purchase_key}"},
    )
    return _plain(session)


def retrieve_checkout_session(session_id: str) -> dict:
    return _plain(client().v1.checkout.sessions.retrieve(session_id, params={"expand": ["payment_intent"]}))


def expire_checkout_session(session_id: str) -> dict:
    return _plain(client().v1.checkout.sessions.expire(session_id))


def list_checkout_sessions(*, created_gte: int, limit: int = 100):
    """Every Checkout Session created since `created_gte` (auto-paginated)."""
    page = client().v1.checkout.sessions.list(params={"created": {"gte": created_gte}, "limit": limit})
    return (_plain(s) for s in page.auto_paging_iter())


def retrieve_charge(charge_id: str) -> dict:
    return _plain(client().v1.charges.retrieve(charge_id))


def retrieve_dispute(dispute_id: str) -> dict:
    return _plain(client().v1.disputes.retrieve(dispute_id))


def create_refund(*, payment_intent: str, amount_cents: int | None = None, idempotency_key: str | None = None):
    params: dict = {"payment_intent": payment_intent}
    if amount_cents is not None:
        params["amount"] = amount_cents
    options = {"idempotency_key": idempotency_key} if idempotency_key else None
    return _plain(client().v1.refunds.create(params=params, options=options))


# ---------------------------------------------------------------- saved cards (auto top-up)


def create_customer(*, org_id: int, org_name: str, email: str, idempotency_key: str) -> dict:
    params = {"name": org_name, "metadata": {"org_id": str(org_id)}}
    if email:
        params["email"] = email
    return _plain(client().v1.customers.create(params=params, options={"idempotency_key": idempotency_key}))


def create_setup_session(
    *, customer: str, org_id: int, success_url: str, cancel_url: str, idempotency_key: str
) -> dict:
    """Checkout in `setup` mode: Stripe's page saves a card on the customer for off-session payments."""
    session = client().v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "currency": "usd",
            "customer": customer,
            "payment_method_types": ["card"],
            "client_reference_id": str(org_id),
            "metadata": {"org_id": str(org_id), "purpose": "auto_top_up"},
            "setup_intent_data": {"metadata": {"org_id": str(org_id), "purpose": "auto_top_up"}},
            "success_url": success_url,
            "cancel_url": cancel_url,
        },
        options={"idempotency_key": idempotency_key},
    )
    return _plain(session)


def retrieve_setup_session(session_id: str) -> dict:
    """A setup-mode session with its SetupIntent and that intent's PaymentMethod (the saved card)."""
    params = {"expand": ["setup_intent", "setup_intent.payment_method"]}
    return _plain(client().v1.checkout.sessions.retrieve(session_id, params=params))


def retrieve_payment_method(payment_method_id: str) -> dict:
    return _plain(client().v1.payment_methods.retrieve(payment_method_id))


def retrieve_payment_intent(payment_intent_id: str) -> dict:
    return _plain(client().v1.payment_intents.retrieve(payment_intent_id))


def charge_saved_card(
    *, customer: str, payment_method: str, amount_cents: int, currency: str, metadata: dict, idempotency_key: str
) -> dict:
    """An off-session PaymentIntent on the saved card, confirmed at once. Returns the PaymentIntent: `succeeded`,
    or (a card error, Stripe's 402) the failed intent with `last_payment_error` (`card_declined`,
    `authentication_required`, ...). Other Stripe errors (unreachable, 5xx) raise StripeError."""
    try:
        pi = client().v1.payment_intents.create(
            params={
                "amount": amount_cents,
                "currency": currency,
                "customer": customer,
                "payment_method": payment_method,
                "confirm": True,
                "off_session": True,
                "metadata": metadata,
                "description": f"Auto top-up: {metadata.get('credits', '?')} credits",
            },
            options={"idempotency_key": idempotency_key},
        )
    except stripe.CardError as exc:
        err = exc.error
        failed = getattr(err, "payment_intent", None) if err is not None else None
        out = _plain(failed) if failed is not None else {"id": "", "status": "requires_payment_method"}
        out.setdefault("last_payment_error", None)
        if not out["last_payment_error"]:
            out["last_payment_error"] = {"code": exc.code or "card_error", "message": exc.user_message or str(exc)}
        return out
    return _plain(pi)


def construct_event(payload: bytes, sig_header: str | None) -> dict:
    """Verify `Stripe-Signature` (tolerance from settings) against the current secret, then the previous
    one during a rotation. Raises SignatureVerificationError or ValueError (bad JSON, or JSON that is not an
    object)."""
    secrets = [s for s in (settings.STRIPE_WEBHOOK_SECRET, settings.STRIPE_WEBHOOK_SECRET_PREVIOUS) if s]
    if not secrets:
        raise SignatureVerificationError("No webhook secret is configured.", sig_header)
    error: Exception | None = None
    for secret in secrets:
        try:
            return _plain(
                stripe.Webhook.construct_event(
                    payload,
                    sig_header,
                    secret,
                    tolerance=settings.STRIPE_WEBHOOK_TOLERANCE,
                    api_key=settings.STRIPE_SECRET_KEY,
                )
            )
        except SignatureVerificationError as exc:
            error = exc
        except AttributeError as exc:  # signed, but a JSON list, string or null: the SDK calls .get() on it
            raise ValueError("The event is not a JSON object.") from exc
    raise error  # type: ignore[misc]


def sign_payload(payload: str, secret: str | None = None, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header for `payload` (the stand-in and tests sign events with it)."""
    return stripe.WebhookSignature.generate_signature_header(
        payload, secret or settings.STRIPE_WEBHOOK_SECRET, timestamp=timestamp
    )
