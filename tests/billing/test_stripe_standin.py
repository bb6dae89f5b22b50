"""The Stripe stand-in speaks enough Stripe for the official SDK, and its delivery switches do what they say."""

import json
import time
import urllib.request

import pytest
import stripe

from billing import stripe_client
from billing.stripe_standin import core
from billing.stripe_standin.views import parse_params
from tests.billing.stripe_fixtures import paid_purchase, standin_fixture, start  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("standin")]


def test_sdk_errors_come_back_as_stripe_errors(org, owner):
    with pytest.raises(stripe.InvalidRequestError, match=r"No such checkout\.session"):
        stripe_client.retrieve_checkout_session("cs_test_nope")
    purchase = start(org, owner)
    stripe_client.expire_checkout_session(purchase.stripe_session_id)
    with pytest.raises(stripe.InvalidRequestError, match="status of open"):
        stripe_client.expire_checkout_session(purchase.stripe_session_id)


def test_api_needs_a_secret_key(standin):
    request = urllib.request.Request(f"{standin.url}/stripe-standin/v1/charges/ch_x")  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request)  # noqa: S310
    assert exc.value.code == 401
    assert json.loads(exc.value.read())["error"]["message"] == "Invalid API Key provided."


def test_refunds_cannot_exceed_the_charge(org, owner):
    purchase, _ = paid_purchase(org, owner)
    pi = core.get(purchase.stripe_session_id, "checkout.session")["payment_intent"]
    stripe_client.create_refund(payment_intent=pi, amount_cents=2000)
    with pytest.raises(stripe.InvalidRequestError, match="greater than unrefunded amount"):
        stripe_client.create_refund(payment_intent=pi, amount_cents=501)
    assert stripe_client.retrieve_charge(core.get(pi, "payment_intent")["latest_charge"])["amount_refunded"] == 2000


def test_bracket_params_parse_like_stripe():
    from django.http import QueryDict

    q = QueryDict(
        "line_items[0][price_data][unit_amount]=2500&line_items[0][quantity]=1&metadata[org_id]=7&expand[0]=payment_intent"
    )
    assert parse_params(q) == {
        "line_items": [{"price_data": {"unit_amount": "2500"}, "quantity": "1"}],
        "metadata": {"org_id": "7"},
        "expand": ["payment_intent"],
    }


def test_delivery_switches_twice_reverse_and_late(org, owner, settings, standin):
    _, events = paid_purchase(org, owner)
    url = f"{standin.url}/stripe/webhook/"
    statuses = core.deliver(url, events, {"twice", "reverse"}, background=False)
    assert statuses == [200] * (2 * len(events))
    settings.STRIPE_STANDIN_LATE_DELAY = 0.3
    t = time.perf_counter()
    assert core.deliver(url, events[:1], {"late"}, background=False) == [200]
    assert time.perf_counter() - t >= 0.3


def test_delivered_events_verify_with_the_sdk(org, owner):
    _, events = paid_purchase(org, owner)
    payload = json.dumps(events[0])
    header = core.sign(payload)
    assert stripe_client.construct_event(payload.encode(), header)["id"] == events[0]["id"]


def test_dashboard_refund_reaches_the_app_through_signed_webhooks(org, owner, settings, standin):
    """What an operator does in Stripe's dashboard, end to end: the stand-in delivers the events itself."""
    from django.test import Client

    from billing.models import Purchase, PurchaseStatus
    from tests.billing.stripe_fixtures import post_event

    settings.STRIPE_STANDIN_AUTODELIVER = True
    purchase, events = paid_purchase(org, owner)
    post_event(events[0])
    purchase = Purchase.objects.get(pk=purchase.pk)
    client = Client()
    assert (
        client.post(
            f"{standin.url}/stripe-standin/", {"action": "refund", "id": purchase.charge_id, "amount": "10"}
        ).status_code
        == 302
    )

    def wait_for(predicate):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.1)
        return False

    assert wait_for(lambda: Purchase.objects.get(pk=purchase.pk).status == PurchaseStatus.PARTIALLY_REFUNDED)
    assert Purchase.objects.get(pk=purchase.pk).refunded_credits == 1000
    page = client.get(f"{standin.url}/stripe-standin/").content.decode()
    assert purchase.charge_id in page and "$10.00" in page
