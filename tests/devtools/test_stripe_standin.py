"""The Stripe stand-in speaks enough Stripe for the official SDK, and its delivery switches do what they say."""

import json
import re
import time
import urllib.request

import pytest
import stripe

from devtools.stripe_standin import core
from devtools.stripe_standin.views import parse_params
from purchases import stripe_client
from tests.purchases.stripe_fixtures import paid_purchase, standin_fixture, start  # noqa: F401

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

    from purchases.models import Purchase, PurchaseStatus
    from tests.purchases.stripe_fixtures import post_event

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


def test_api_answers_only_the_configured_secret_key(standin, settings):
    """Like Stripe: the account's secret key, not any string that looks like a test key."""
    url = f"{standin.url}/stripe-standin/v1/charges/ch_x"
    key = settings.STRIPE_SECRET_KEY
    assert key.startswith("sk_test_")
    for header in (
        "Bearer sk_test_someone_elses_key",
        f"Bearer {key[:-1]}",
        f"Bearer {key}x",
        f"Bearer  {key}",
        f"Basic {key}",
        key,
        "Bearer ",
    ):
        request = urllib.request.Request(url, headers={"Authorization": header})  # noqa: S310
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(request)  # noqa: S310
        assert exc.value.code == 401, header
        assert json.loads(exc.value.read()) == {
            "error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}
        }
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request)  # noqa: S310
    assert exc.value.code == 404  # past the key check: there is no such charge
    assert json.loads(exc.value.read())["error"]["code"] == "resource_missing"


def _charge_state(charge_id):
    from devtools.stripe_standin.models import StandinObject

    charge = core.get(charge_id, "charge")
    return (
        charge["amount_refunded"],
        charge["refunded"],
        StandinObject.objects.filter(type__in=["refund", "dispute"]).count(),
    )


def test_dashboard_actions_need_the_csrf_token(org, owner, standin):
    """Another site cannot make a visitor's browser refund or dispute payments in a running demo: a POST
    without the form's token is refused (403) and changes nothing."""
    from django.test import Client

    purchase, _ = paid_purchase(org, owner)
    pi = core.get(purchase.stripe_session_id, "checkout.session")["payment_intent"]
    charge_id = core.get(pi, "payment_intent")["latest_charge"]
    before = _charge_state(charge_id)
    dashboard = "/stripe-standin/"
    for action in ("refund", "dispute"):
        forged = Client(enforce_csrf_checks=True).post(
            dashboard, {"action": action, "id": charge_id}, headers={"Origin": "https://evil.example"}
        )
        assert forged.status_code == 403, action
    # A visitor who has the page open (so has the CSRF cookie) is no less protected without the token.
    visitor = Client(enforce_csrf_checks=True)
    assert visitor.get(dashboard).status_code == 200
    assert visitor.post(dashboard, {"action": "refund", "id": charge_id}).status_code == 403
    assert _charge_state(charge_id) == before


def test_dashboard_actions_work_from_its_own_page_without_signing_in(org, owner, standin):
    import re

    from django.test import Client

    purchase, _ = paid_purchase(org, owner)
    pi = core.get(purchase.stripe_session_id, "checkout.session")["payment_intent"]
    charge_id = core.get(pi, "payment_intent")["latest_charge"]
    visitor = Client(enforce_csrf_checks=True)  # nobody signed in: the demo's dashboard is open
    page = visitor.get("/stripe-standin/").content.decode()
    forms = re.findall(r"<form method=\"post\">(.*?)</form>", page, re.S)
    assert forms and all('name="csrfmiddlewaretoken"' in form for form in forms)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = visitor.post(
        "/stripe-standin/", {"csrfmiddlewaretoken": token, "action": "refund", "id": charge_id, "amount": "10"}
    )
    assert response.status_code == 302
    amount_refunded, refunded, objects = _charge_state(charge_id)
    assert (amount_refunded, refunded) == (1000, False) and objects == 1


def _dashboard_refund(charge_id, amount):
    from django.test import Client

    return Client().post("/stripe-standin/", {"action": "refund", "id": charge_id, "amount": amount})


@pytest.fixture
def dashboard_charge(org, owner):
    """A paid $25.00 charge shown on the dashboard."""
    purchase, _ = paid_purchase(org, owner)
    pi = core.get(purchase.stripe_session_id, "checkout.session")["payment_intent"]
    return core.get(pi, "payment_intent")["latest_charge"]


@pytest.mark.parametrize(
    "amount",
    [
        "١٢",
        "１２",
        "inf",
        "-inf",
        "nan",
        "1e3",
        "1E1",
        "+5",
        "-5",
        "1_0",
        "0",
        "0.00",
        "1.234",
        "10.5.5",
        ".",
        "$",
        "abc",
        "12 34",
        "0x1A",
        "1" * 400,
    ],
)
def test_dashboard_refund_amount_is_strict_dollars(dashboard_charge, amount):
    """float() took '١٢' (refunded $12) and 'inf' (a 500): dollars are ASCII digits with at most two decimals."""
    before = _charge_state(dashboard_charge)
    response = _dashboard_refund(dashboard_charge, amount)
    assert response.status_code == 400, amount
    html = response.content.decode()
    assert re.search(r'role="alert">[^<]*refund', html, re.I), amount  # says what is wrong
    assert _charge_state(dashboard_charge) == before


@pytest.mark.parametrize(
    ("amount", "cents"), [("10", 1000), ("7.5", 750), ("$0.01", 1), (" 12.34 ", 1234), ("$ 3.00", 300), ("", 2500)]
)
def test_dashboard_refund_takes_dollars_and_cents(dashboard_charge, amount, cents):
    """Empty refunds what is left, like Stripe's dashboard."""
    assert _dashboard_refund(dashboard_charge, amount).status_code == 302
    assert _charge_state(dashboard_charge)[0] == cents


def test_dashboard_refund_above_the_charge_says_so_and_changes_nothing(dashboard_charge):
    before = _charge_state(dashboard_charge)
    response = _dashboard_refund(dashboard_charge, "1,000.00")
    assert response.status_code == 400
    assert "greater than unrefunded amount" in response.content.decode()
    assert _charge_state(dashboard_charge) == before
