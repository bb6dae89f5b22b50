"""A small Stripe stand-in: Checkout Sessions, payment intents, charges, refunds, disputes, and signed
webhook deliveries, in Stripe's JSON shapes. The app reaches it over HTTP through the official SDK.

Delivery switches (per checkout, chosen on the hosted page, or `deliver(..., options=…)` in tests):
"twice" posts every event two times, "late" waits STRIPE_STANDIN_LATE_DELAY seconds first,
"reverse" posts a batch of events in reverse order.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.db import IntegrityError, transaction

from devtools.stripe_standin.models import StandinObject
from purchases.stripe_client import sign_payload

log = logging.getLogger("credits.stripe_standin")

API_VERSION = "2025-09-30.clover"


class StandinError(Exception):
    def __init__(self, message: str, status: int = 400, code: str = "", param: str = ""):
        super().__init__(message)
        self.message, self.status, self.code, self.param = message, status, code, param

    def body(self) -> dict:
        err = {"type": "invalid_request_error", "message": self.message}
        if self.code:
            err["code"] = self.code
        if self.param:
            err["param"] = self.param
        return {"error": err}


def new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


def now() -> int:
    return int(time.time())


def get(obj_id: str, type_: str) -> dict:
    row = StandinObject.objects.filter(pk=obj_id, type=type_).first()
    if row is None:
        raise StandinError(f"No such {type_}: '{obj_id}'", status=404, code="resource_missing", param="id")
    return row.data


def _lock(obj_id: str, type_: str) -> dict:
    row = StandinObject.objects.select_for_update().filter(pk=obj_id, type=type_).first()
    if row is None:
        raise StandinError(f"No such {type_}: '{obj_id}'", status=404, code="resource_missing", param="id")
    return row.data


def put(data: dict, idempotency_key: str | None = None) -> dict:
    StandinObject.objects.update_or_create(
        pk=data["id"],
        defaults={"type": data["object"], "data": data},
        create_defaults={"type": data["object"], "data": data, "idempotency_key": idempotency_key},
    )
    return data


def public(data: dict) -> dict:
    return {k: v for k, v in data.items() if not k.startswith("_")}


def event(type_: str, obj: dict) -> dict:
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": now(),
        "livemode": False,
        "pending_webhooks": 1,
        "type": type_,
        "data": {"object": public(obj)},
        "request": {"id": None, "idempotency_key": None},
    }


# ---------------------------------------------------------------- Checkout Sessions


def _int(value, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StandinError(f"Invalid integer: {value}", param=name) from None


def _replay(idempotency_key: str | None, params: dict) -> dict | None:
    """Stripe's idempotency: the same key returns the first result; with different parameters it is an error."""
    if not idempotency_key:
        return None
    row = StandinObject.objects.filter(idempotency_key=idempotency_key).first()
    if row is None:
        return None
    if row.data.get("_params") != json.loads(json.dumps(params)):
        raise StandinError(
            "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            code="idempotency_key_in_use",
        )
    return row.data


def create_session(params: dict, *, idempotency_key: str | None, base_url: str, webhook_url: str) -> dict:
    replay = _replay(idempotency_key, params)
    if replay is not None:
        return replay
    if params.get("mode") != "payment":
        raise StandinError("The stand-in supports mode=payment only.", param="mode")
    items = params.get("line_items") or []
    if not items:
        raise StandinError("line_items is required.", param="line_items")
    amount, currency = 0, None
    for i, item in enumerate(items):
        pd = item.get("price_data") or {}
        if not pd:
            raise StandinError("The stand-in supports price_data line items only.", param=f"line_items[{i}]")
        unit = _int(pd.get("unit_amount"), f"line_items[{i}][price_data][unit_amount]")
        if unit < 50:
            raise StandinError("Amount must be at least 50 cents.", param=f"line_items[{i}][price_data][unit_amount]")
        amount += unit * _int(item.get("quantity", 1), f"line_items[{i}][quantity]")
        currency = pd.get("currency")
    for url in ("success_url", "cancel_url"):
        if not params.get(url):
            raise StandinError(f"Missing required param: {url}.", param=url)
    sid = new_id("cs")
    session = {
        "id": sid,
        "object": "checkout.session",
        "amount_subtotal": amount,
        "amount_total": amount,
        "client_reference_id": params.get("client_reference_id"),
        "created": now(),
        "currency": currency,
        "customer_email": params.get("customer_email"),
        "expires_at": now() + 24 * 3600,
        "livemode": False,
        "metadata": params.get("metadata") or {},
        "mode": "payment",
        "payment_intent": None,
        "payment_status": "unpaid",
        "status": "open",
        "success_url": params["success_url"],
        "cancel_url": params["cancel_url"],
        "url": f"{base_url.rstrip('/')}/checkout/{sid}/",
        "_line_items": items,
        "_payment_intent_metadata": (params.get("payment_intent_data") or {}).get("metadata") or {},
        "_webhook_url": webhook_url,
        "_params": json.loads(json.dumps(params)),
    }
    try:
        with transaction.atomic():
            return put(session, idempotency_key)
    except IntegrityError:  # a concurrent request with the same idempotency key won
        return StandinObject.objects.get(idempotency_key=idempotency_key).data


def expand_session(session: dict, expand: list[str]) -> dict:
    out = public(session)
    if "payment_intent" in expand and out.get("payment_intent"):
        out["payment_intent"] = public(get(out["payment_intent"], "payment_intent"))
    return out


def list_sessions(*, created_gte: int | None, limit: int, starting_after: str | None) -> dict:
    qs = StandinObject.objects.filter(type="checkout.session").order_by("-created_at", "-id")
    rows = [r.data for r in qs]
    if created_gte is not None:
        rows = [r for r in rows if r["created"] >= created_gte]
    if starting_after:
        ids = [r["id"] for r in rows]
        rows = rows[ids.index(starting_after) + 1 :] if starting_after in ids else []
    page = rows[:limit]
    return {
        "object": "list",
        "url": "/v1/checkout/sessions",
        "has_more": len(rows) > limit,
        "data": [public(r) for r in page],
    }


def expire_session(session_id: str) -> tuple[dict, list[dict]]:
    with transaction.atomic():
        session = _lock(session_id, "checkout.session")
        if session["status"] != "open":
            raise StandinError(
                f"Only Checkout Sessions with a status of open can be expired; this one is {session['status']}.",
                code="checkout_session_not_open",
            )
        session["status"] = "expired"
        put(session)
    return session, [event("checkout.session.expired", session)]


def pay(session_id: str, method: str = "card") -> tuple[dict, list[dict]]:
    """The customer pays: card (paid now), delayed_success / delayed_fail (async bank debit)."""
    with transaction.atomic():
        session = _lock(session_id, "checkout.session")
        if session["status"] != "open":
            raise StandinError(f"This checkout session is {session['status']}.", code="checkout_session_not_open")
        delayed = method.startswith("delayed")
        pi_id, ch_id = new_id("pi"), new_id("ch")
        meta = session.get("_payment_intent_metadata") or {}
        pi = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_received": 0 if delayed else session["amount_total"],
            "currency": session["currency"],
            "created": now(),
            "latest_charge": ch_id,
            "metadata": meta,
            "status": "processing" if delayed else "succeeded",
            "livemode": False,
        }
        charge = {
            "id": ch_id,
            "object": "charge",
            "amount": session["amount_total"],
            "amount_captured": session["amount_total"],
            "amount_refunded": 0,
            "currency": session["currency"],
            "created": now(),
            "disputed": False,
            "metadata": meta,
            "paid": not delayed,
            "payment_intent": pi_id,
            "refunded": False,
            "status": "pending" if delayed else "succeeded",
            "livemode": False,
            "_webhook_url": session.get("_webhook_url"),
            "_session": session_id,
        }
        session.update(status="complete", payment_status="unpaid" if delayed else "paid", payment_intent=pi_id)
        session["_method"] = method
        put(pi)
        put(charge)
        put(session)
    events = [event("checkout.session.completed", session)]
    if not delayed:
        events += [event("payment_intent.succeeded", pi), event("charge.succeeded", charge)]
    return session, events


def settle_delayed(session_id: str, succeed: bool | None = None) -> tuple[dict, list[dict]]:
    """The async payment clears (or fails). `succeed=None` follows the method chosen at checkout."""
    with transaction.atomic():
        session = _lock(session_id, "checkout.session")
        if session["status"] != "complete" or session["payment_status"] != "unpaid":
            return session, []
        if succeed is None:
            succeed = session.get("_method") != "delayed_fail"
        pi = _lock(session["payment_intent"], "payment_intent")
        charge = _lock(pi["latest_charge"], "charge")
        if succeed:
            session["payment_status"] = "paid"
            pi.update(status="succeeded", amount_received=pi["amount"])
            charge.update(status="succeeded", paid=True)
        else:
            session["_method"] = "delayed_failed"
            pi.update(status="requires_payment_method")
            charge.update(status="failed")
        put(session)
        put(pi)
        put(charge)
    kind = "succeeded" if succeed else "failed"
    return session, [event(f"checkout.session.async_payment_{kind}", session)]


# ---------------------------------------------------------------- refunds and disputes


def create_refund(params: dict, *, idempotency_key: str | None) -> tuple[dict, list[dict]]:
    replay = _replay(idempotency_key, params)
    if replay is not None:
        return replay, []
    with transaction.atomic():
        if params.get("charge"):
            charge = _lock(params["charge"], "charge")
        elif params.get("payment_intent"):
            pi = get(params["payment_intent"], "payment_intent")
            charge = _lock(pi["latest_charge"], "charge")
        else:
            raise StandinError("One of charge or payment_intent is required.", param="charge")
        if charge["status"] != "succeeded":
            raise StandinError(f"Charge {charge['id']} has not succeeded; it cannot be refunded.")
        left = charge["amount"] - charge["amount_refunded"]
        amount = _int(params.get("amount", left), "amount")
        if amount <= 0 or amount > left:
            raise StandinError(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                param="amount",
                code="amount_too_large" if amount > 0 else "parameter_invalid_integer",
            )
        refund = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "payment_intent": charge["payment_intent"],
            "created": now(),
            "currency": charge["currency"],
            "status": "succeeded",
            "reason": params.get("reason"),
            "metadata": params.get("metadata") or {},
            "_params": json.loads(json.dumps(params)),
        }
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        put(charge)
        put(refund, idempotency_key)
    return refund, [event("charge.refunded", charge), event("refund.created", refund)]


def create_dispute(charge_id: str, amount: int | None = None) -> tuple[dict, list[dict]]:
    with transaction.atomic():
        charge = _lock(charge_id, "charge")
        dispute = {
            "id": new_id("dp"),
            "object": "dispute",
            "amount": amount or charge["amount"],
            "charge": charge_id,
            "payment_intent": charge["payment_intent"],
            "currency": charge["currency"],
            "created": now(),
            "reason": "fraudulent",
            "status": "needs_response",
            "is_charge_refundable": False,
            "livemode": False,
        }
        charge["disputed"] = True
        put(charge)
        put(dispute)
    return dispute, [event("charge.dispute.created", dispute)]


def close_dispute(dispute_id: str, *, won: bool) -> tuple[dict, list[dict]]:
    with transaction.atomic():
        dispute = _lock(dispute_id, "dispute")
        if dispute["status"] in ("won", "lost"):
            return dispute, []
        dispute["status"] = "won" if won else "lost"
        put(dispute)
    events = [event("charge.dispute.closed", dispute)]
    if won:
        events.append(event("charge.dispute.funds_reinstated", dispute))
    return dispute, events


def webhook_url_for(obj: dict) -> str:
    return settings.STRIPE_STANDIN_WEBHOOK_URL or obj.get("_webhook_url") or ""


def charge_of(obj: dict) -> dict:
    return get(obj["charge"], "charge")


# ---------------------------------------------------------------- webhook delivery


def sign(payload: str, timestamp: int | None = None, secret: str | None = None) -> str:
    return sign_payload(payload, secret=secret or settings.STRIPE_WEBHOOK_SECRET, timestamp=timestamp)


def post_event(url: str, evt: dict) -> int:
    payload = json.dumps(evt)
    req = urllib.request.Request(  # noqa: S310 - the stand-in posts to the app's own webhook URL
        url,
        data=payload.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(payload), "User-Agent": "Stripe/1.0"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:
        log.warning("stand-in could not deliver %s to %s: %s", evt["type"], url, exc)
        return 0


def _deliver_now(url: str, events: list[dict], options: set[str]) -> list[int]:
    if "late" in options:
        time.sleep(settings.STRIPE_STANDIN_LATE_DELAY)
    batch = list(reversed(events)) if "reverse" in options else list(events)
    statuses = []
    for evt in batch:
        for _ in range(2 if "twice" in options else 1):
            status = post_event(url, evt)
            log.info("stand-in delivered %s %s -> %s", evt["type"], evt["id"], status)
            statuses.append(status)
    return statuses


def deliver(url: str, events: list[dict], options: set[str] | None = None, *, background: bool = True):
    """Post signed events to the app's webhook URL, in a background thread like Stripe (or inline)."""
    options = set(options or ())
    if not url or not events or (background and not settings.STRIPE_STANDIN_AUTODELIVER):
        return None
    if not background:
        return _deliver_now(url, events, options)
    thread = threading.Thread(target=_deliver_now, args=(url, events, options), daemon=True)
    thread.start()
    return thread


def settle_later(session_id: str, delay: float, url: str, options: set[str]) -> None:
    """A delayed (bank debit) payment clears after `delay` seconds, then its event is delivered."""

    def run():
        from django.db import connection

        time.sleep(delay)
        try:
            _, events = settle_delayed(session_id)
        except Exception:  # the server (or a test database) went away meanwhile
            log.warning("stand-in could not settle delayed payment %s", session_id, exc_info=True)
            return
        finally:
            connection.close()
        _deliver_now(url, events, options)

    threading.Thread(target=run, daemon=True).start()


# ---------------------------------------------------------------- saved cards: Customers, Checkout in setup mode,
# SetupIntents, PaymentMethods, off-session PaymentIntents (auto top-up)

# Stripe's test card numbers the stand-in knows, and what an off-session charge on them does.
TEST_CARDS = {
    "4242424242424242": {"brand": "visa", "outcome": "succeeds"},
    "4000000000000002": {"brand": "visa", "outcome": "card_declined"},
    "4000002500003155": {"brand": "visa", "outcome": "authentication_required"},
}


def create_customer(params: dict, *, idempotency_key: str | None) -> dict:
    replay = _replay(idempotency_key, params)
    if replay is not None:
        return replay
    customer = {
        "id": new_id("cus"),
        "object": "customer",
        "created": now(),
        "email": params.get("email"),
        "name": params.get("name"),
        "metadata": params.get("metadata") or {},
        "invoice_settings": {"default_payment_method": None},
        "livemode": False,
        "_params": json.loads(json.dumps(params)),
    }
    try:
        with transaction.atomic():
            return put(customer, idempotency_key)
    except IntegrityError:
        return StandinObject.objects.get(idempotency_key=idempotency_key).data


def create_setup_session(params: dict, *, idempotency_key: str | None, base_url: str, webhook_url: str) -> dict:
    """Checkout in `setup` mode: the hosted page saves a card on the customer (no charge)."""
    replay = _replay(idempotency_key, params)
    if replay is not None:
        return replay
    customer_id = params.get("customer") or ""
    if not customer_id:
        raise StandinError("A setup-mode Checkout Session needs a customer.", param="customer")
    get(customer_id, "customer")
    for url in ("success_url", "cancel_url"):
        if not params.get(url):
            raise StandinError(f"Missing required param: {url}.", param=url)
    sid = new_id("cs")
    session = {
        "id": sid,
        "object": "checkout.session",
        "amount_subtotal": None,
        "amount_total": None,
        "client_reference_id": params.get("client_reference_id"),
        "created": now(),
        "currency": params.get("currency"),
        "customer": customer_id,
        "expires_at": now() + 24 * 3600,
        "livemode": False,
        "metadata": params.get("metadata") or {},
        "mode": "setup",
        "payment_intent": None,
        "payment_status": "no_payment_required",
        "setup_intent": None,
        "status": "open",
        "success_url": params["success_url"],
        "cancel_url": params["cancel_url"],
        "url": f"{base_url.rstrip('/')}/checkout/{sid}/",
        "_webhook_url": webhook_url,
        "_params": json.loads(json.dumps(params)),
    }
    try:
        with transaction.atomic():
            return put(session, idempotency_key)
    except IntegrityError:
        return StandinObject.objects.get(idempotency_key=idempotency_key).data


def save_card(session_id: str, number: str) -> tuple[dict, list[dict]]:
    """The customer saves a test card on a setup-mode session: a PaymentMethod attached to the customer and a
    succeeded SetupIntent; the session completes."""
    card = TEST_CARDS.get(number.replace(" ", ""))
    if card is None:
        raise StandinError("Use one of the test cards listed on the page.", param="card", code="card_declined")
    with transaction.atomic():
        session = _lock(session_id, "checkout.session")
        if session.get("mode") != "setup":
            raise StandinError("This checkout session is not in setup mode.")
        if session["status"] != "open":
            raise StandinError(f"This checkout session is {session['status']}.", code="checkout_session_not_open")
        number = number.replace(" ", "")
        pm = {
            "id": new_id("pm"),
            "object": "payment_method",
            "type": "card",
            "created": now(),
            "customer": session["customer"],
            "card": {"brand": card["brand"], "last4": number[-4:], "exp_month": 12, "exp_year": 2034},
            "livemode": False,
            "_number": number,
        }
        si = {
            "id": new_id("seti"),
            "object": "setup_intent",
            "created": now(),
            "customer": session["customer"],
            "payment_method": pm["id"],
            "status": "succeeded",
            "usage": "off_session",
            "metadata": session.get("metadata") or {},
            "livemode": False,
        }
        session.update(status="complete", setup_intent=si["id"])
        put(pm)
        put(si)
        put(session)
    return session, [event("checkout.session.completed", session), event("setup_intent.succeeded", si)]


def expand_setup_session(session: dict, expand: list[str]) -> dict:
    out = public(session)
    if "setup_intent" in expand and out.get("setup_intent"):
        si = public(get(out["setup_intent"], "setup_intent"))
        if si.get("payment_method"):
            si["payment_method"] = public(get(si["payment_method"], "payment_method"))
        out["setup_intent"] = si
    return out


class CardError(StandinError):
    """Stripe's 402 card_error; the failed PaymentIntent comes back inside the error, like Stripe's."""

    def __init__(self, message: str, *, code: str, decline_code: str, payment_intent: dict):
        super().__init__(message, status=402, code=code)
        self.decline_code, self.payment_intent = decline_code, payment_intent

    def body(self) -> dict:
        return {
            "error": {
                "type": "card_error",
                "code": self.code,
                "decline_code": self.decline_code,
                "message": self.message,
                "payment_intent": public(self.payment_intent),
            }
        }


def create_payment_intent(params: dict, *, idempotency_key: str | None, webhook_url: str) -> tuple[dict, list[dict]]:
    """A PaymentIntent confirmed at once off-session on a saved card (what auto top-up uses). The same
    Idempotency-Key returns the first result (the same PaymentIntent, or the same card error) and charges once."""
    replay = _replay(idempotency_key, params)
    if replay is not None:
        if replay.get("_card_error"):
            err = replay["_card_error"]
            raise CardError(err["message"], code=err["code"], decline_code=err["decline_code"], payment_intent=replay)
        return replay, []
    amount = _int(params.get("amount"), "amount")
    if amount < 50:
        raise StandinError("Amount must be at least 50 cents.", param="amount")
    if str(params.get("confirm")).lower() != "true" or str(params.get("off_session")).lower() != "true":
        raise StandinError("The stand-in supports confirm=true off_session=true PaymentIntents only.", param="confirm")
    customer = get(params.get("customer") or "", "customer")
    pm = get(params.get("payment_method") or "", "payment_method")
    if pm.get("customer") != customer["id"]:
        raise StandinError("The PaymentMethod is not attached to this customer.", param="payment_method")
    outcome = TEST_CARDS.get(pm.get("_number", ""), {}).get("outcome", "succeeds")
    pi_id, ch_id = new_id("pi"), new_id("ch")
    meta = params.get("metadata") or {}
    pi = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if outcome == "succeeds" else 0,
        "currency": params.get("currency") or "usd",
        "created": now(),
        "customer": customer["id"],
        "payment_method": pm["id"],
        "latest_charge": ch_id,
        "metadata": meta,
        "off_session": True,
        "status": "succeeded" if outcome == "succeeds" else "requires_payment_method",
        "last_payment_error": None,
        "livemode": False,
        "_webhook_url": webhook_url,
        "_params": json.loads(json.dumps(params)),
    }
    charge = {
        "id": ch_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if outcome == "succeeds" else 0,
        "amount_refunded": 0,
        "currency": pi["currency"],
        "created": now(),
        "customer": customer["id"],
        "disputed": False,
        "metadata": meta,
        "paid": outcome == "succeeds",
        "payment_intent": pi_id,
        "payment_method": pm["id"],
        "refunded": False,
        "status": "succeeded" if outcome == "succeeds" else "failed",
        "livemode": False,
        "_webhook_url": webhook_url,
    }
    if outcome != "succeeds":
        message = (
            "Your card was declined."
            if outcome == "card_declined"
            else "This payment requires authentication by the cardholder (3-D Secure); it cannot be made off-session."
        )
        pi["last_payment_error"] = {"code": outcome, "decline_code": outcome, "message": message, "type": "card_error"}
        pi["_card_error"] = {"message": message, "code": outcome, "decline_code": outcome}
    try:
        with transaction.atomic():
            put(charge)
            put(pi, idempotency_key)
    except IntegrityError:  # a concurrent request with the same key won: answer what it answered
        return create_payment_intent(params, idempotency_key=idempotency_key, webhook_url=webhook_url)
    if outcome == "succeeds":
        return pi, [event("payment_intent.succeeded", pi), event("charge.succeeded", charge)]
    events = [event("payment_intent.payment_failed", pi), event("charge.failed", charge)]
    raise CardErrorWithEvents(pi, events)


class CardErrorWithEvents(Exception):
    """Raised inside the stand-in so the view can deliver the failure events, then answer the 402."""

    def __init__(self, pi: dict, events: list[dict]):
        super().__init__(pi["_card_error"]["message"])
        self.pi, self.events = pi, events

    def card_error(self) -> CardError:
        err = self.pi["_card_error"]
        return CardError(err["message"], code=err["code"], decline_code=err["decline_code"], payment_intent=self.pi)
