"""HTTP face of the stand-in: Stripe's REST endpoints (form-encoded in, JSON out), the hosted checkout
page, and a tiny dashboard to refund or dispute a payment, like Stripe's."""

from __future__ import annotations

import hmac
import re

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from devtools.stripe_standin import core
from devtools.stripe_standin.models import StandinObject

_KEY = re.compile(r"([^\[\]]+)|\[([^\[\]]*)\]")
# Dollars as a person types them in Stripe's dashboard: ASCII digits (optionally grouped "1,000"), at most two
# decimals. float() took '١٢' (a $12 refund), '1e3' and 'inf' (a 500).
_DOLLARS = re.compile(r"(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.(?P<frac>[0-9]{1,2}))?", re.ASCII)
_DOLLARS_HELP = "Enter the refund as a dollar amount, like 10 or 10.50 (empty refunds what is left)."


def parse_params(querydict) -> dict:
    """Stripe's bracket form encoding (`line_items[0][price_data][currency]=usd`) -> nested dicts/lists."""
    root: dict = {}
    for full_key, values in querydict.lists():
        parts = [a or b for a, b in _KEY.findall(full_key)]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = values[-1] if len(values) == 1 else values
    return _listify(root)


def refund_cents(text: str) -> int | None:
    """The dashboard's Refund amount in dollars -> cents; None (empty) refunds what is left. StandinError if bad."""
    raw = text.strip().removeprefix("$").strip()
    if not text.strip():
        return None
    match = _DOLLARS.fullmatch(raw)
    if match is None or not (match["whole"] or match["frac"]):
        raise core.StandinError(_DOLLARS_HELP, param="amount")
    whole = match["whole"].replace(",", "").lstrip("0")
    if len(whole) > 12:  # far above any charge; no int() of a 400-digit string
        raise core.StandinError("That refund is larger than any payment.", param="amount")
    cents = int(whole or "0") * 100 + int((match["frac"] or "").ljust(2, "0"))
    if cents <= 0:
        raise core.StandinError("Enter a refund greater than $0.00 (empty refunds what is left).", param="amount")
    return cents


def _listify(node):
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def _authorized(request: HttpRequest) -> bool:
    """The configured secret key (settings.STRIPE_SECRET_KEY, the one the app's SDK sends), like Stripe,
    which answers only the account's own keys; compared in constant time."""
    key = settings.STRIPE_SECRET_KEY
    auth = request.headers.get("Authorization", "")
    return bool(key) and hmac.compare_digest(auth.encode(), f"Bearer {key}".encode())


def _api(view):
    """Stripe-style auth and errors for an API view. Called by servers with the secret key, never by a
    browser, hence no CSRF token (the key is the credential)."""

    @csrf_exempt
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not _authorized(request):
            err = core.StandinError("Invalid API Key provided.", status=401)
            return JsonResponse(err.body(), status=401)
        try:
            return view(request, *args, **kwargs)
        except core.StandinError as exc:
            return JsonResponse(exc.body(), status=exc.status)

    return wrapped


def _base_url(request) -> str:
    return request.build_absolute_uri(reverse("stripe_standin:home"))


def _webhook_url(request) -> str:
    return settings.STRIPE_STANDIN_WEBHOOK_URL or request.build_absolute_uri(reverse("billing:stripe_webhook"))


@_api
def sessions(request):
    if request.method == "POST":
        params = parse_params(request.POST)
        create = core.create_setup_session if params.get("mode") == "setup" else core.create_session
        session = create(
            params,
            idempotency_key=request.headers.get("Idempotency-Key"),
            base_url=_base_url(request),
            webhook_url=_webhook_url(request),
        )
        return JsonResponse(core.public(session))
    params = parse_params(request.GET)
    created = params.get("created") or {}
    gte = int(created["gte"]) if isinstance(created, dict) and created.get("gte") else None
    limit = min(int(params.get("limit", 10)), 100)
    return JsonResponse(core.list_sessions(created_gte=gte, limit=limit, starting_after=params.get("starting_after")))


@_api
def session_detail(request, session_id: str):
    expand = parse_params(request.GET).get("expand") or []
    expand = [expand] if isinstance(expand, str) else expand
    session = core.get(session_id, "checkout.session")
    if session.get("mode") == "setup":
        return JsonResponse(core.expand_setup_session(session, expand))
    return JsonResponse(core.expand_session(session, expand))


@_api
def session_expire(request, session_id: str):
    if request.method != "POST":
        raise core.StandinError("Use POST.", status=405)
    session, events = core.expire_session(session_id)
    core.deliver(core.webhook_url_for(session), events)
    return JsonResponse(core.public(session))


@_api
def refunds(request):
    if request.method != "POST":
        raise core.StandinError("Use POST.", status=405)
    refund, events = core.create_refund(
        parse_params(request.POST), idempotency_key=request.headers.get("Idempotency-Key")
    )
    core.deliver(core.webhook_url_for(core.charge_of(refund)), events)
    return JsonResponse(core.public(refund))


def _getter(type_):
    @_api
    def view(request, obj_id: str):
        return JsonResponse(core.public(core.get(obj_id, type_)))

    return view


@_api
def customers(request):
    if request.method != "POST":
        raise core.StandinError("Use POST.", status=405)
    customer = core.create_customer(parse_params(request.POST), idempotency_key=request.headers.get("Idempotency-Key"))
    return JsonResponse(core.public(customer))


@_api
def payment_intents(request):
    """Create (and confirm, off-session) a PaymentIntent on a saved card; a decline is Stripe's 402 card_error."""
    if request.method != "POST":
        raise core.StandinError("Use POST.", status=405)
    url = _webhook_url(request)
    try:
        pi, events = core.create_payment_intent(
            parse_params(request.POST), idempotency_key=request.headers.get("Idempotency-Key"), webhook_url=url
        )
    except core.CardErrorWithEvents as exc:
        core.deliver(core.webhook_url_for(exc.pi), exc.events)
        raise exc.card_error() from None
    core.deliver(core.webhook_url_for(pi), events)
    return JsonResponse(core.public(pi))


refund_detail = _getter("refund")
setup_intent_detail = _getter("setup_intent")
payment_method_detail = _getter("payment_method")
customer_detail = _getter("customer")
charge_detail = _getter("charge")
payment_intent_detail = _getter("payment_intent")
dispute_detail = _getter("dispute")


@csrf_exempt
def checkout_page(request, session_id: str):
    """The hosted checkout page: Pay (card or a delayed bank debit) or Cancel, plus delivery switches."""
    try:
        session = core.get(session_id, "checkout.session")
    except core.StandinError:
        raise Http404("No such checkout session") from None
    if session.get("mode") == "setup":
        return _setup_page(request, session)
    error = ""
    if request.method == "POST":
        options = {o for o in request.POST.getlist("delivery") if o in {"twice", "late", "reverse"}}
        url = core.webhook_url_for(session)
        try:
            if request.POST.get("action") == "cancel":
                return redirect(session["cancel_url"])
            method = request.POST.get("method", "card")
            if method not in {"card", "delayed_success", "delayed_fail"}:
                method = "card"
            session, events = core.pay(session_id, method)
        except core.StandinError as exc:
            error = exc.message
        else:
            core.deliver(url, events, options)
            if method != "card":
                core.settle_later(session_id, settings.STRIPE_STANDIN_ASYNC_DELAY, url, options)
            return redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id))
    items = session.get("_line_items") or []
    product = ((items[0].get("price_data") or {}).get("product_data") or {}) if items else {}
    return render(
        request,
        "stripe_standin/checkout.html",
        {
            "session": session,
            "product": product.get("name", ""),
            "description": product.get("description", ""),
            "dollars": f"{session['amount_total'] / 100:,.2f}",
            "error": error,
        },
        status=400 if error else 200,
    )


def _setup_page(request, session: dict):
    """The hosted page of a setup-mode session: pick a test card and Save card (no charge), or Cancel."""
    error = ""
    if request.method == "POST":
        if request.POST.get("action") == "cancel":
            return redirect(session["cancel_url"])
        try:
            session, events = core.save_card(session["id"], request.POST.get("card", ""))
        except core.StandinError as exc:
            error = exc.message
        else:
            core.deliver(core.webhook_url_for(session), events)
            return redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))
    cards = [
        {"number": n, "spaced": " ".join(n[i : i + 4] for i in range(0, 16, 4)), **c}
        for n, c in core.TEST_CARDS.items()
    ]
    return render(
        request,
        "stripe_standin/setup.html",
        {"session": session, "cards": cards, "error": error},
        status=400 if error else 200,
    )


def dashboard(request):
    """Recent payments with Refund / Dispute / Win / Lose buttons (what you would do in Stripe's dashboard).

    Open without signing in (it is the demo's Stripe), but its forms carry Django's CSRF token (the
    middleware checks it), so another site cannot make a visitor's browser refund or dispute payments."""
    message = ""
    if request.method == "POST":
        action, obj_id = request.POST.get("action", ""), request.POST.get("id", "")
        try:
            if action == "refund":
                cents = refund_cents(request.POST.get("amount", ""))
                params = {"charge": obj_id}
                if cents is not None:
                    params["amount"] = str(cents)
                obj, events = core.create_refund(params, idempotency_key=None)
                url = core.webhook_url_for(core.charge_of(obj))
            elif action == "dispute":
                obj, events = core.create_dispute(obj_id)
                url = core.webhook_url_for(core.charge_of(obj))
            elif action in ("win", "lose"):
                obj, events = core.close_dispute(obj_id, won=action == "win")
                url = core.webhook_url_for(core.charge_of(obj))
            else:
                raise core.StandinError("Unknown action.")
        except (core.StandinError, ValueError) as exc:
            message = getattr(exc, "message", str(exc))
        else:
            core.deliver(url, events)
            return redirect("stripe_standin:home")
    charges = [r.data for r in StandinObject.objects.filter(type="charge")[:50]]
    disputes = {}
    for r in StandinObject.objects.filter(type="dispute"):
        disputes.setdefault(r.data["charge"], r.data)
    for c in charges:
        c["dollars"] = f"{c['amount'] / 100:,.2f}"
        c["refunded_dollars"] = f"{c['amount_refunded'] / 100:,.2f}"
        c["dispute"] = disputes.get(c["id"])
    return render(
        request,
        "stripe_standin/dashboard.html",
        {"charges": charges, "message": message},
        status=400 if message else 200,
    )


def not_found(request, rest: str = ""):
    return JsonResponse(
        core.StandinError(f"Unrecognized request URL (/{rest}); the stand-in implements a subset of Stripe.").body(),
        status=404,
    )


def home_redirect(request) -> HttpResponse:
    return redirect("stripe_standin:home")
