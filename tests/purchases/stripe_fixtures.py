"""Fixtures and helpers for Buy Credits tests: the Stripe stand-in served by the live server, signed events."""

import json
import time

import pytest
from django.test import Client

from devtools.stripe_standin import core
from purchases import stripe_client
from purchases.models import Purchase
from purchases.services import purchase_start

WEBHOOK = "/stripe/webhook/"


@pytest.fixture(name="standin")
def standin_fixture(live_server, settings):
    """The app's SDK talks to the stand-in inside the live server; its own deliveries are off (tests deliver)."""
    settings.STRIPE_API_BASE = f"{live_server.url}/stripe-standin"
    settings.STRIPE_STANDIN_WEBHOOK_URL = f"{live_server.url}{WEBHOOK}"
    settings.STRIPE_STANDIN_AUTODELIVER = False
    return live_server


@pytest.fixture(name="standin_in_process")
def standin_in_process_fixture(settings, transactional_db):
    """The app's SDK talks to the stand-in in-process, as it does on a server whose STRIPE_API_BASE is its own
    stand-in (devtools/stripe_standin/transport.py): no live server, no sockets. Its deliveries are off."""
    settings.STRIPE_STANDIN_AUTODELIVER = False
    client = stripe_client._http_client
    assert client is not None and client.handles(f"{settings.STRIPE_API_BASE}/v1/charges"), "stand-in not in-process"


def start(org, user, cents=2500) -> Purchase:
    return purchase_start(
        org=org,
        user=user,
        amount_cents=cents,
        success_url=lambda pk: (
            f"http://testserver/orgs/{org.slug}/billing/purchases/{pk}/?session_id={{CHECKOUT_SESSION_ID}}"
        ),
        cancel_url=lambda pk: f"http://testserver/orgs/{org.slug}/billing/purchases/{pk}/cancelled/",
    )


def signed(evt: dict, *, secret=None, timestamp=None) -> tuple[str, str]:
    payload = json.dumps(evt)
    return payload, stripe_client.sign_payload(payload, secret=secret, timestamp=timestamp)


def post_event(evt: dict, client: Client | None = None, **sign_kwargs):
    payload, header = signed(evt, **sign_kwargs)
    return (client or Client()).post(
        WEBHOOK, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )


def paid_purchase(org, user, cents=2500, method="card"):
    """A purchase whose checkout was paid in the stand-in; returns (purchase, events) with nothing delivered yet."""
    purchase = start(org, user, cents)
    _, events = core.pay(purchase.stripe_session_id, method)
    return purchase, events


def event_named(events, type_):
    return next(e for e in events if e["type"] == type_)


def old_timestamp():
    return int(time.time()) - 301
