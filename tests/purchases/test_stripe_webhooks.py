"""Stripe webhook: signatures, exactly-once fulfilment, async payments, expiry, refunds, disputes, outstanding balance.

The app's unchanged code talks to the Stripe stand-in over HTTP (the live server); events are built by the
stand-in, signed like Stripe signs them, and posted to the webhook through the Django test client.
"""

import json
import logging
import re

import pytest
from django.test import Client

from devtools.stripe_standin import core
from purchases import stripe_client
from purchases.models import Purchase, PurchaseStatus, StripeEvent
from tests.concurrency import race
from tests.factories import MembershipFactory, ledger_snapshot
from tests.purchases.stripe_fixtures import (  # noqa: F401 - fixture
    event_named,
    old_timestamp,
    paid_purchase,
    post_event,
    signed,
    standin_fixture,
    start,
)
from wallets.models import OutstandingBalance, Transfer, TransferKind, Wallet
from wallets.outstanding import OutstandingBalanceDue, org_outstanding_credits
from wallets.selectors import wallet_balance
from wallets.services import credit_type, org_transfer_to_member

pytestmark = pytest.mark.django_db(transaction=True)


def org_balance(org) -> int:
    return wallet_balance(Wallet.objects.for_org(org)).total


def refresh(p: Purchase) -> Purchase:
    return Purchase.objects.select_related("transfer").get(pk=p.pk)


# ---------------------------------------------------------------- signatures


def _completed_event(org, owner):
    purchase, events = paid_purchase(org, owner)
    return purchase, event_named(events, "checkout.session.completed")


@pytest.mark.parametrize(
    "case",
    ["missing", "forged", "old_timestamp", "tampered", "garbage", "wrong_scheme", "empty_body"],
)
def test_bad_signatures_are_400_and_write_nothing(standin, org, owner, case):
    purchase, evt = _completed_event(org, owner)
    payload, header = signed(evt)
    if case == "missing":
        header = None
    elif case == "forged":
        payload, header = signed(evt, secret="whsec_attacker")
    elif case == "old_timestamp":
        payload, header = signed(evt, timestamp=old_timestamp())
    elif case == "tampered":
        evt["data"]["object"]["amount_total"] = 1
        payload = json.dumps(evt)
    elif case == "garbage":
        header = "this is not a signature"
    elif case == "wrong_scheme":
        header = header.replace("v1=", "v0=")
    elif case == "empty_body":
        payload = ""
    before = ledger_snapshot()
    extra = {"HTTP_STRIPE_SIGNATURE": header} if header is not None else {}
    response = Client().post("/stripe/webhook/", data=payload, content_type="application/json", **extra)
    assert response.status_code == 400
    assert ledger_snapshot() == before
    assert StripeEvent.objects.count() == 0
    assert refresh(purchase).status == PurchaseStatus.PENDING


def _without(evt: dict, path: str) -> dict:
    """A copy of `evt` without the field at a dotted path."""
    evt = json.loads(json.dumps(evt))
    *parents, last = path.split(".")
    node = evt
    for name in parents:
        node = node[name]
    del node[last]
    return evt


@pytest.mark.parametrize(
    "case",
    [
        "no_type",
        "no_id",
        "no_data",
        "no_object",
        "no_object_id",
        "object_id_not_a_string",
        "refund_without_object_id",
        "dispute_without_object_id",
        "json_list",
        "json_null",
    ],
)
def test_validly_signed_but_malformed_event_is_400_and_writes_nothing(standin, org, owner, case):
    """Signed with the right secret, but not an event we can act on: 400 (never a 500), nothing written."""
    purchase, events = paid_purchase(org, owner)
    evt = event_named(events, "checkout.session.completed")
    if case in ("no_type", "no_id", "no_data"):
        evt = _without(evt, case.removeprefix("no_"))
    elif case == "no_object":
        evt = _without(evt, "data.object")
    elif case == "no_object_id":
        evt = _without(evt, "data.object.id")
    elif case == "object_id_not_a_string":
        evt = json.loads(json.dumps(evt))
        evt["data"]["object"]["id"] = ["cs_1", "cs_2"]
    elif case == "refund_without_object_id":
        evt = _without(event_named(events, "charge.succeeded"), "data.object.id")
        evt["type"] = "charge.refunded"
    elif case == "dispute_without_object_id":
        evt = _without(core.event("charge.dispute.created", {"id": "dp_x", "object": "dispute"}), "data.object.id")
    before = ledger_snapshot()
    if case.startswith("json_"):
        payload = "[]" if case == "json_list" else "null"
        header = stripe_client.sign_payload(payload)
        response = Client().post(
            "/stripe/webhook/", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
    else:
        response = post_event(evt)
    assert response.status_code == 400, response.content
    assert ledger_snapshot() == before
    assert StripeEvent.objects.count() == 0
    assert refresh(purchase).status == PurchaseStatus.PENDING
    assert post_event(event_named(events, "checkout.session.completed")).status_code == 200  # the real one works
    assert refresh(purchase).status == PurchaseStatus.PAID


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        ("checkout.session.completed", {"id": "cs_test_unknown_to_stripe", "object": "checkout.session"}),
        ("checkout.session.expired", {"id": "cs_test_unknown_to_stripe", "object": "checkout.session"}),
        ("charge.refunded", {"id": "ch_test_unknown_to_stripe", "object": "charge"}),
        ("refund.created", {"id": "re_x", "object": "refund", "charge": "ch_test_unknown_to_stripe"}),
        ("charge.dispute.created", {"id": "dp_test_unknown_to_stripe", "object": "dispute"}),
    ],
)
def test_object_stripe_does_not_know_is_acknowledged_logged_and_changes_nothing(standin, org, owner, event_type, obj):
    """Stripe answers 404 for the object: it will never exist, so 200 (a 503 would have Stripe retry for
    days), logged, nothing written."""
    before = ledger_snapshot()
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logging.getLogger("credits.stripe").addHandler(handler)
    try:
        response = post_event(core.event(event_type, obj))
    finally:
        logging.getLogger("credits.stripe").removeHandler(handler)
    assert response.status_code == 200, response.content
    assert response.json()["outcome"].startswith("ignored: ")
    if event_type.startswith("checkout."):
        assert response.json()["outcome"] == "ignored: unknown session"
    assert any("no such object" in r.getMessage() for r in records)
    assert ledger_snapshot() == before
    assert StripeEvent.objects.count() == 0


def test_stripe_unreachable_is_still_503_so_stripe_retries(org, owner, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9/stripe-standin"  # nothing listens there
    evt = core.event("checkout.session.completed", {"id": "cs_test_x", "object": "checkout.session"})
    response = post_event(evt)
    assert response.status_code == 503
    assert StripeEvent.objects.count() == 0


def test_webhook_refuses_get(db):
    assert Client().get("/stripe/webhook/").status_code == 405


def test_previous_secret_is_accepted_during_rotation(standin, org, owner, settings):
    purchase, evt = _completed_event(org, owner)
    old = settings.STRIPE_WEBHOOK_SECRET
    settings.STRIPE_WEBHOOK_SECRET, settings.STRIPE_WEBHOOK_SECRET_PREVIOUS = "whsec_new_secret", old
    assert post_event(evt, secret=old).status_code == 200
    assert refresh(purchase).status == PurchaseStatus.PAID
    settings.STRIPE_WEBHOOK_SECRET_PREVIOUS = ""  # rotation over: the old secret is refused
    assert (
        post_event(
            event_named(core.pay(start(org, owner).stripe_session_id)[1], "charge.succeeded"), secret=old
        ).status_code
        == 400
    )


# ---------------------------------------------------------------- checkout fulfilment


def test_checkout_session_created_from_server_side_amount(standin, org, owner):
    purchase = start(org, owner, 2550)
    session = core.get(purchase.stripe_session_id, "checkout.session")
    assert session["mode"] == "payment"
    assert session["amount_total"] == 2550 and session["currency"] == "usd"
    assert session["client_reference_id"] == str(purchase.pk)
    assert session["metadata"] == {"org_id": str(org.pk), "purchase_id": str(purchase.pk), "credits": "2550"}
    assert purchase.checkout_url == session["url"]
    assert purchase.status == PurchaseStatus.PENDING and purchase.credits == 2550


def test_completed_event_credits_org_wallet_once(standin, org, owner):
    before = org_balance(org)
    purchase, events = paid_purchase(org, owner)
    for evt in events + events:  # every event twice
        assert post_event(evt).status_code == 200
    purchase = refresh(purchase)
    assert purchase.status == PurchaseStatus.PAID
    assert purchase.transfer.kind == TransferKind.PURCHASE and purchase.transfer.amount == 2500
    assert purchase.transfer.idempotency_key == f"stripe:{purchase.stripe_session_id}"
    assert purchase.payment_intent_id.startswith("pi_") and purchase.charge_id.startswith("ch_")
    assert org_balance(org) == before + 2500
    assert Transfer.objects.filter(kind=TransferKind.PURCHASE, org=org).count() == 1
    # Credits land in the org wallet as Org-allocated, not in the buyer's wallet.
    assert wallet_balance(Wallet.objects.for_user(owner)).total == 0
    by_type = {b.credit_type.slug: b.balance for b in wallet_balance(Wallet.objects.for_org(org)).by_type}
    assert by_type["org-allocated"] == 2500


def test_success_page_fulfils_before_the_webhook_and_the_webhook_is_then_a_noop(standin, org, owner):
    purchase, events = paid_purchase(org, owner)
    client = Client()
    client.force_login(owner)
    page = client.get(f"/orgs/{org.slug}/billing/purchases/{purchase.pk}/?session_id={purchase.stripe_session_id}")
    assert page.status_code == 200
    assert "2,500 credits landed" in page.content.decode()
    assert org_balance(org) == 2500
    assert post_event(event_named(events, "checkout.session.completed")).json()["outcome"] == "processed"
    assert org_balance(org) == 2500
    assert Transfer.objects.filter(org=org).count() == 1


def test_unpaid_checkout_shows_processing_and_moves_nothing(standin, org, owner):
    purchase = start(org, owner)
    client = Client()
    client.force_login(owner)
    before = ledger_snapshot()
    page = client.get(f"/orgs/{org.slug}/billing/purchases/{purchase.pk}/")
    assert "Payment processing…" in page.content.decode()
    assert 'hx-trigger="every 1s"' in page.content.decode()
    assert ledger_snapshot() == before


@pytest.mark.postgres
def test_same_event_100_times_20_concurrently_plus_success_page_credits_once(standin, org, owner):
    purchase, events = paid_purchase(org, owner)
    evt = event_named(events, "checkout.session.completed")
    payload, header = signed(evt)
    clients = [Client() for _ in range(20)]
    clients[0].force_login(owner)

    def worker(i):
        client, statuses = clients[i], []
        for n in range(5):
            if i == 0 and n == 2:
                r = client.get(f"/orgs/{org.slug}/billing/purchases/{purchase.pk}/")
                statuses.append(("page", r.status_code))
            r = client.post(
                "/stripe/webhook/", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
            )
            statuses.append(("hook", r.status_code))
        return statuses

    statuses = [s for worker_statuses in race(20, worker, check=True) for s in worker_statuses]
    assert [s for s in statuses if s[0] == "hook"] == [("hook", 200)] * 100
    assert ("page", 200) in statuses
    assert Transfer.objects.filter(org=org, kind=TransferKind.PURCHASE).count() == 1
    assert StripeEvent.objects.filter(event_id=evt["id"]).count() == 1
    assert org_balance(org) == 2500
    assert refresh(purchase).status == PurchaseStatus.PAID


def test_async_payment_succeeded_credits_after_completed(standin, org, owner):
    purchase, events = paid_purchase(org, owner, method="delayed_success")
    assert [e["type"] for e in events] == ["checkout.session.completed"]
    post_event(events[0])
    assert refresh(purchase).status == PurchaseStatus.PENDING
    assert org_balance(org) == 0
    _, later = core.settle_delayed(purchase.stripe_session_id)
    post_event(later[0])
    assert later[0]["type"] == "checkout.session.async_payment_succeeded"
    assert refresh(purchase).status == PurchaseStatus.PAID
    assert org_balance(org) == 2500


def test_async_events_out_of_order_credit_once(standin, org, owner):
    purchase, events = paid_purchase(org, owner, method="delayed_success")
    _, later = core.settle_delayed(purchase.stripe_session_id)
    post_event(later[0])  # succeeded arrives first
    post_event(events[0])  # then the (stale) completed
    post_event(later[0])
    assert refresh(purchase).status == PurchaseStatus.PAID
    assert org_balance(org) == 2500
    assert Transfer.objects.filter(org=org).count() == 1


def test_async_payment_failed_marks_failed_and_moves_nothing(standin, org, owner):
    purchase, events = paid_purchase(org, owner, method="delayed_fail")
    before = ledger_snapshot()
    _, later = core.settle_delayed(purchase.stripe_session_id)
    assert later[0]["type"] == "checkout.session.async_payment_failed"
    post_event(later[0])
    post_event(events[0])  # a late "completed" does not revive it
    assert refresh(purchase).status == PurchaseStatus.FAILED
    assert ledger_snapshot() == before


def test_expired_session_marks_expired_and_moves_nothing(standin, org, owner):
    purchase = start(org, owner)
    before = ledger_snapshot()
    session = stripe_client.expire_checkout_session(purchase.stripe_session_id)
    assert session["status"] == "expired"
    post_event(core.event("checkout.session.expired", core.get(purchase.stripe_session_id, "checkout.session")))
    assert refresh(purchase).status == PurchaseStatus.EXPIRED
    assert ledger_snapshot() == before
    with pytest.raises(core.StandinError):
        core.pay(purchase.stripe_session_id)


def test_cancel_page_expires_session_and_returns_to_billing(standin, org, owner):
    """Stripe's cancel link shows the page; its button (a POST with the CSRF token) expires the checkout."""
    purchase = start(org, owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = ledger_snapshot()
    url = f"/orgs/{org.slug}/billing/purchases/{purchase.pk}/cancelled/"
    page = client.get(url).content.decode()
    form = re.search(rf'<form method="post" action="{re.escape(url)}">(.*?)</form>', page, re.S)
    assert form and "Cancel checkout" in form.group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(1)).group(1)
    response = client.post(url, {"csrfmiddlewaretoken": token}, follow=True)
    assert response.redirect_chain[-1][0] == f"/orgs/{org.slug}/billing/"
    assert "Checkout cancelled" in response.content.decode()
    # The buyer cancelled it: "Cancelled", not Stripe's own timeout "Expired" (test_expired_session_marks_expired).
    assert refresh(purchase).status == PurchaseStatus.CANCELLED
    assert refresh(purchase).cancelled_at is not None
    assert core.get(purchase.stripe_session_id, "checkout.session")["status"] == "expired"
    assert ledger_snapshot() == before


def test_cancel_link_opened_from_anywhere_changes_nothing(standin, org, owner):
    """A GET of the cancel URL (a link or image on another site, a prefetch) expires nothing: the checkout in
    progress can still be paid. A POST without the page's CSRF token is refused."""
    purchase = start(org, owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    url = f"/orgs/{org.slug}/billing/purchases/{purchase.pk}/cancelled/"
    for _ in range(2):
        response = client.get(url, headers={"Referer": "https://evil.example/", "Sec-Fetch-Site": "cross-site"})
        assert response.status_code == 200
        assert "Cancel this checkout?" in response.content.decode()
    forged = client.post(url, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert refresh(purchase).status == PurchaseStatus.PENDING
    assert core.get(purchase.stripe_session_id, "checkout.session")["status"] == "open"
    _, events = core.pay(purchase.stripe_session_id)  # the buyer can still pay it
    post_event(event_named(events, "checkout.session.completed"))
    assert refresh(purchase).status == PurchaseStatus.PAID
    assert "Nothing to cancel" in client.get(url).content.decode()


def test_unknown_session_and_vanished_org_are_acknowledged_and_change_nothing(standin, org):
    before = ledger_snapshot()
    for meta in ({}, {"org_id": "999999", "purchase_id": "999999"}):
        session = core.create_session(
            {
                "mode": "payment",
                "line_items": [{"quantity": "1", "price_data": {"currency": "usd", "unit_amount": "2500"}}],
                "client_reference_id": meta.get("purchase_id"),
                "metadata": meta,
                "success_url": "http://x/s",
                "cancel_url": "http://x/c",
            },
            idempotency_key=None,
            base_url="http://x/",
            webhook_url="",
        )
        _, events = core.pay(session["id"])
        response = post_event(event_named(events, "checkout.session.completed"))
        assert response.status_code == 200
        assert response.json()["outcome"] == "ignored: unknown session"
        assert post_event(event_named(events, "charge.succeeded")).status_code == 200
    assert ledger_snapshot() == before
    assert Purchase.objects.count() == 0
    assert StripeEvent.objects.exclude(type="charge.succeeded").count() == 0


def test_unhandled_event_type_is_200(standin, db):
    response = post_event(core.event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored: unhandled type"


# ---------------------------------------------------------------- refunds, disputes, outstanding balance


def _paid(org, owner, cents=2500):
    purchase, events = paid_purchase(org, owner, cents)
    post_event(event_named(events, "checkout.session.completed"))
    return refresh(purchase)


def _deliver(events):
    for evt in events:
        assert post_event(evt).status_code == 200


def test_full_refund_takes_the_credits_back_once(standin, org, owner):
    purchase = _paid(org, owner)
    refund = stripe_client.create_refund(payment_intent=purchase.payment_intent_id)
    assert refund["status"] == "succeeded" and refund["amount"] == 2500
    charge = core.get(purchase.charge_id, "charge")
    events = [core.event("charge.refunded", charge), core.event("refund.created", core.get(refund["id"], "refund"))]
    _deliver(events + events)
    purchase = refresh(purchase)
    assert purchase.status == PurchaseStatus.REFUNDED
    assert purchase.refunded_cents == 2500 and purchase.refunded_credits == 2500
    assert org_balance(org) == 0
    assert Transfer.objects.filter(org=org, kind=TransferKind.REFUND).count() == 1
    assert org_outstanding_credits(org) == 0


def test_partial_refunds_take_proportional_credits(standin, org, owner):
    purchase = _paid(org, owner)
    stripe_client.create_refund(payment_intent=purchase.payment_intent_id, amount_cents=1000)
    _deliver([core.event("charge.refunded", core.get(purchase.charge_id, "charge"))])
    purchase = refresh(purchase)
    assert purchase.status == PurchaseStatus.PARTIALLY_REFUNDED
    assert org_balance(org) == 1500
    stripe_client.create_refund(payment_intent=purchase.payment_intent_id, amount_cents=1500)
    stale = core.event("charge.refunded", {**core.get(purchase.charge_id, "charge"), "amount_refunded": 1000})
    _deliver([core.event("charge.refunded", core.get(purchase.charge_id, "charge")), stale])
    purchase = refresh(purchase)
    assert purchase.status == PurchaseStatus.REFUNDED
    assert org_balance(org) == 0
    assert Transfer.objects.filter(org=org, kind=TransferKind.REFUND).count() == 2


def test_refund_of_credits_given_away_records_outstanding_balance(standin, org, owner):
    purchase = _paid(org, owner)
    member = MembershipFactory(org=org)
    org_transfer_to_member(org=org, membership_id=member.pk, credit_type=credit_type("org-allocated"), amount=2000)
    stripe_client.create_refund(payment_intent=purchase.payment_intent_id)
    _deliver([core.event("charge.refunded", core.get(purchase.charge_id, "charge"))])
    assert org_balance(org) == 0  # took the 500 that were there, never below zero
    assert org_outstanding_credits(org) == 2000
    assert refresh(purchase).status == PurchaseStatus.REFUNDED

    # Transfers out are blocked while it is outstanding, and nothing moves.
    before = ledger_snapshot()
    with pytest.raises(OutstandingBalanceDue):
        org_transfer_to_member(org=org, membership_id=member.pk, credit_type=credit_type("org-allocated"), amount=1)
    assert ledger_snapshot() == before

    # The Balance card shows it in red.
    client = Client()
    client.force_login(owner)
    page = client.get(f"/orgs/{org.slug}/billing/").content.decode()
    assert 'data-testid="outstanding-balance"' in page and "2,000 credits owed" in page

    # The next purchase pays it first: 2,500 bought, 2,000 settle the debt, 500 remain.
    settled = _paid(org, owner)
    assert org_outstanding_credits(org) == 0
    assert org_balance(org) == 500
    page = client.get(f"/orgs/{org.slug}/billing/purchases/{settled.pk}/").content.decode()
    assert "2,000 of these credits paid the organization's outstanding balance" in page
    org_transfer_to_member(org=org, membership_id=member.pk, credit_type=credit_type("org-allocated"), amount=500)


def test_dispute_holds_then_lost_keeps_them_taken(standin, org, owner):
    purchase = _paid(org, owner)
    dispute, events = core.create_dispute(purchase.charge_id)
    _deliver(events + events)
    purchase = refresh(purchase)
    assert purchase.status == PurchaseStatus.DISPUTED and purchase.dispute_held_credits == 2500
    assert org_balance(org) == 0
    assert Transfer.objects.filter(org=org, kind=TransferKind.DISPUTE_HOLD).count() == 1
    _, closed = core.close_dispute(dispute["id"], won=False)
    _deliver(closed + events)  # a late "created" after the loss changes nothing
    purchase = refresh(purchase)
    assert purchase.status == PurchaseStatus.DISPUTED and purchase.dispute_status == "lost"
    assert org_balance(org) == 0
    assert not Transfer.objects.filter(org=org, kind=TransferKind.DISPUTE_RELEASE).exists()


def test_dispute_won_releases_held_credits_and_cancels_its_outstanding_part(standin, org, owner):
    purchase = _paid(org, owner)
    member = MembershipFactory(org=org)
    org_transfer_to_member(org=org, membership_id=member.pk, credit_type=credit_type("org-allocated"), amount=1000)
    dispute, events = core.create_dispute(purchase.charge_id)
    _deliver(events)
    purchase = refresh(purchase)
    assert (purchase.dispute_held_credits, purchase.dispute_outstanding_credits) == (1500, 1000)
    assert org_outstanding_credits(org) == 1000 and org_balance(org) == 0
    _, closed = core.close_dispute(dispute["id"], won=True)
    _deliver(closed + closed)
    purchase = refresh(purchase)
    assert purchase.status == PurchaseStatus.PAID and purchase.dispute_status == "won"
    assert org_balance(org) == 1500
    assert org_outstanding_credits(org) == 0
    assert Transfer.objects.filter(org=org, kind=TransferKind.DISPUTE_RELEASE).count() == 1


def test_dispute_closed_before_created_event_moves_nothing(standin, org, owner):
    purchase = _paid(org, owner)
    dispute, created = core.create_dispute(purchase.charge_id)
    _, closed = core.close_dispute(dispute["id"], won=True)
    before = ledger_snapshot()
    _deliver(closed + created)  # the handler re-fetches the dispute: it is already won
    assert ledger_snapshot() == before
    assert refresh(purchase).status == PurchaseStatus.PAID


def test_outstanding_balance_never_negative_in_db(org):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        OutstandingBalance.objects.create(org=org, credits=-1)


def test_checkout_create_is_idempotent_per_purchase_and_refuses_changed_params(standin, org, owner):
    purchase = start(org, owner)
    key = f"credits-checkout-{purchase.pk}-{int(purchase.created_at.timestamp() * 1_000_000)}"
    args = dict(
        amount_cents=2500,
        currency="usd",
        credits=2500,
        purchase_id=purchase.pk,
        purchase_key=key.removeprefix("credits-checkout-"),
        org_id=org.pk,
        org_name=org.name,
        customer_email=owner.email,
        success_url=core.get(purchase.stripe_session_id, "checkout.session")["success_url"],
        cancel_url=core.get(purchase.stripe_session_id, "checkout.session")["cancel_url"],
    )
    assert stripe_client.create_checkout_session(**args)["id"] == purchase.stripe_session_id  # a retry: same session
    with pytest.raises(stripe_client.StripeError, match="same parameters"):
        stripe_client.create_checkout_session(**{**args, "amount_cents": 1})


def test_bulk_transfer_blocked_while_outstanding(org, owner):
    from wallets.services import org_bulk_transfer

    member = MembershipFactory(org=org)
    from tests.factories import fund

    fund(org, 1000)
    OutstandingBalance.objects.create(org=org, credits=10)
    before = ledger_snapshot()
    with pytest.raises(OutstandingBalanceDue) as exc:
        org_bulk_transfer(org=org, credit_type=credit_type("org-allocated"), amount_per_member=5)
    assert "owes 10 credits" in exc.value.message
    with pytest.raises(OutstandingBalanceDue):
        org_transfer_to_member(org=org, membership_id=member.pk, credit_type=credit_type("org-allocated"), amount=5)
    assert ledger_snapshot() == before


@pytest.mark.postgres
def test_twenty_different_refund_events_at_once_take_the_credits_back_once(standin, org, owner):
    purchase = _paid(org, owner)
    refund = stripe_client.create_refund(payment_intent=purchase.payment_intent_id)
    charge = core.get(purchase.charge_id, "charge")
    events = [core.event("charge.refunded", charge) for _ in range(10)]
    events += [core.event("refund.created", core.get(refund["id"], "refund")) for _ in range(10)]
    deliveries = [signed(evt) for evt in events]

    def worker(i):
        payload, header = deliveries[i]
        r = Client().post(
            "/stripe/webhook/", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
        return r.status_code

    codes = race(len(deliveries), worker, check=True)
    assert codes == [200] * 20
    assert Transfer.objects.filter(org=org, kind=TransferKind.REFUND).count() == 1
    assert org_balance(org) == 0
    assert refresh(purchase).status == PurchaseStatus.REFUNDED
    assert StripeEvent.objects.filter(type__in=["charge.refunded", "refund.created"]).count() == 20


def test_fast_credit_path_matches_the_wallet_service(org, owner):
    """The webhook's one-round-trip crediting writes exactly what org_credit_from_stripe writes (same fingerprint)."""
    from purchases.services import _credit_org_wallet
    from wallets.services import org_credit_from_stripe

    args = dict(org=org, amount=700, actor=owner, memo="m", idempotency_key="stripe:cs_same")
    first = _credit_org_wallet(**args)
    again = org_credit_from_stripe(**args)  # a replay through the service: same body, so no conflict
    assert again.replayed and again.transfer.pk == first.pk
    assert org_balance(org) == 700
