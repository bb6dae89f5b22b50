"""Refunds and disputes on one charge take back at most what it bought, and the same Stripe facts end in the
same state whatever order their webhook events arrive in.

Each run is a fresh org buying $20.00 (2,000 credits) through the stand-in; Stripe then refunds it (part or all)
and a dispute is opened and won or lost. The events go through the real webhook path (signed, posted to
/stripe/webhook/, the handlers re-fetching from the stand-in through the SDK) either

- after Stripe has acted on everything, in every order (4! = 24; with the credits given away first, they landed
  before any event, so only the 6 orders of the other three matter), or
- one by one as Stripe sends them, for each point in time the refund can happen (before the dispute, while it
  is open, after it closed),

optionally with most of the credits given away first, so part of what is taken back becomes an outstanding
balance. Every run of one set of facts must end in one state, take back at most 2,000 credits, and leave a
ledger that verifies.
"""

import concurrent.futures
import itertools

import pytest
from django.db import connection
from django.test import Client

from devtools.stripe_standin import core
from purchases.models import Purchase, PurchaseStatus
from purchases.services import purchase_refresh
from tests.factories import MembershipFactory, OrgFactory, UserFactory
from tests.purchases.stripe_fixtures import (  # noqa: F401 - fixture
    event_named,
    paid_purchase,
    post_event,
    standin_in_process_fixture,
)
from wallets.models import Wallet
from wallets.outstanding import org_outstanding_credits
from wallets.selectors import ledger_problems, wallet_balance
from wallets.services import credit_type, org_transfer_to_member

pytestmark = pytest.mark.django_db(transaction=True)

CENTS = 2000  # $20.00
CREDITS = 2000
EVENTS = ("paid", "refunded", "dispute_created", "dispute_closed")
# When the refund happens at Stripe, relative to the dispute (events delivered as they are sent).
STRIPE_ORDERS = (
    ("refunded", "dispute_created", "dispute_closed"),
    ("dispute_created", "refunded", "dispute_closed"),
    ("dispute_created", "dispute_closed", "refunded"),
)
# (refund, outcome) -> (credits taken back, purchase status). The dispute is for the whole charge, as the
# stand-in (and Stripe, by default) opens it; what a refund already took back is never taken twice.
EXPECTED = {
    (1000, "won"): (1000, PurchaseStatus.PARTIALLY_REFUNDED),
    (1000, "lost"): (2000, PurchaseStatus.DISPUTED),
    (2000, "won"): (2000, PurchaseStatus.REFUNDED),
    (2000, "lost"): (2000, PurchaseStatus.DISPUTED),
}


def _charge_id(purchase: Purchase) -> str:
    session = core.get(purchase.stripe_session_id, "checkout.session")
    return core.get(session["payment_intent"], "payment_intent")["latest_charge"]


def _deliver(client: Client, evt: dict) -> None:
    response = post_event(evt, client)
    assert response.status_code == 200, (evt["type"], response.content)


def _run(refund_cents: int, outcome: str, give_away: int, *, stripe_order, delivery_order=None):
    """One purchase (a new org) through one history, in its own thread (and database connection).
    `delivery_order=None` delivers each event as soon as Stripe sends it."""
    try:
        return _history(refund_cents, outcome, give_away, stripe_order=stripe_order, delivery_order=delivery_order)
    finally:
        connection.close()


def _history(refund_cents: int, outcome: str, give_away: int, *, stripe_order, delivery_order):
    owner = UserFactory(password=None)  # no password to hash: a run is a few webhooks
    org = OrgFactory(owner=owner)
    client = Client()
    purchase, pay_events = paid_purchase(org, owner, CENTS)
    events = {"paid": event_named(pay_events, "checkout.session.completed")}
    charge_id = _charge_id(purchase)
    if give_away:  # the credits landed (the success page) and most went to a member before any claim
        purchase_refresh(purchase)
        member = MembershipFactory(org=org, user=UserFactory(password=None))
        org_transfer_to_member(
            org=org, membership_id=member.pk, credit_type=credit_type("org-allocated"), amount=give_away
        )
    live = delivery_order is None
    if live:
        _deliver(client, events["paid"])
    dispute_id = None
    for step in stripe_order:
        if step == "refunded":
            _, sent = core.create_refund({"charge": charge_id, "amount": str(refund_cents)}, idempotency_key=None)
            evt = event_named(sent, "charge.refunded")
        elif step == "dispute_created":
            dispute, sent = core.create_dispute(charge_id)
            dispute_id, evt = dispute["id"], event_named(sent, "charge.dispute.created")
        else:
            _, sent = core.close_dispute(dispute_id, won=outcome == "won")
            evt = event_named(sent, "charge.dispute.closed")
        events[step] = evt
        if live:
            _deliver(client, evt)
    for name in delivery_order or ():
        _deliver(client, events[name])
    return _state(org, purchase, give_away)


def _state(org, purchase: Purchase, give_away: int) -> dict:
    p = Purchase.objects.get(pk=purchase.pk)
    wallet = wallet_balance(Wallet.objects.for_org(org)).total
    owed = org_outstanding_credits(org)
    claimed = p.refunded_credits + p.dispute_held_credits + p.dispute_outstanding_credits
    return {
        # What left the org for this charge: the credits no longer in its wallet (beyond what it gave away)
        # plus what it now owes.
        "taken": p.credits - give_away - wallet + owed,
        "claimed": claimed,
        "wallet": wallet,
        "owed": owed,
        "status": p.status,
        "refunded_cents": p.refunded_cents,
        "refunded_credits": p.refunded_credits,
        "dispute_status": p.dispute_status,
        "dispute_claim": p.dispute_held_credits + p.dispute_outstanding_credits,
    }


@pytest.mark.parametrize("give_away", [0, 1500], ids=["credits-in-wallet", "credits-given-away"])
@pytest.mark.parametrize("outcome", ["won", "lost"])
@pytest.mark.parametrize("refund_cents", [1000, 2000], ids=["partial-refund", "full-refund"])
def test_refund_and_dispute_take_back_the_same_at_most_once_in_any_order(
    standin_in_process, refund_cents, outcome, give_away
):
    histories = {}
    for order in itertools.permutations(EVENTS):  # Stripe acted on everything, then the events arrive
        if give_away and order[0] != "paid":
            continue  # the credits landed before any event (they were given away), so "paid" is a no-op anywhere
        histories["delivered " + " > ".join(order)] = dict(stripe_order=STRIPE_ORDERS[0], delivery_order=order)
    for stripe_order in STRIPE_ORDERS:  # each event arrives as soon as Stripe sends it
        histories["live " + " > ".join(stripe_order)] = dict(stripe_order=stripe_order)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:  # separate orgs: independent runs
        futures = {name: pool.submit(_run, refund_cents, outcome, give_away, **h) for name, h in histories.items()}
        runs = {name: future.result() for name, future in futures.items()}

    taken, status = EXPECTED[refund_cents, outcome]
    for name, state in runs.items():
        assert state["taken"] <= CREDITS, (name, state)
        assert state["taken"] == state["claimed"], (name, state)  # the purchase accounts for every credit taken
    reference = next(iter(runs.values()))
    different = {name: state for name, state in runs.items() if state != reference}
    assert not different, f"the same Stripe facts ended differently: {reference} vs {different}"
    assert (reference["taken"], reference["status"]) == (taken, status)
    assert reference["refunded_cents"] == refund_cents and reference["dispute_status"] == outcome
    if give_away:  # the wallet had 500 left: the rest of what was taken back is owed
        assert (reference["wallet"], reference["owed"]) == (0, taken - 500)
    else:
        assert (reference["wallet"], reference["owed"]) == (CREDITS - taken, 0)
    assert ledger_problems() == []
