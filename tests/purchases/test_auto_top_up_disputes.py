"""Disputes of auto top-up charges (docs/auto-top-up.md "Refunds and disputes"): the same code as a disputed Buy
Credits purchase (purchases.services.sync_claims_dispute) on the TopUpAttempt row: an open dispute holds the
credits (Dispute hold; what the wallet no longer has becomes the outstanding balance), a lost one keeps them,
a won one releases them (Dispute release), once whatever the webhooks do. The stand-in over real HTTP."""

import pytest

from devtools.stripe_standin import core
from purchases import stripe_client
from purchases.models import AutoTopUp, StripeEvent, TopUpAttempt, TopUpStatus
from tests.concurrency import race
from tests.factories import MembershipFactory, fund, ledger_snapshot
from tests.purchases.stripe_fixtures import event_named, paid_purchase, post_event, standin_fixture  # noqa: F401
from tests.purchases.test_auto_top_up import (
    _signed_in,
    configure,
    org_balance,
    payment_intents,
    save_card,
    spend,
)
from wallets.models import BalanceWatch, Transfer, TransferKind
from wallets.outstanding import org_outstanding_credits
from wallets.selectors import ledger_problems

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("standin")]


@pytest.fixture
def member(org):
    return MembershipFactory(org=org, role="member")


@pytest.fixture
def owner_client(owner):
    return _signed_in(owner)


def topped_up(org, owner_client, member) -> TopUpAttempt:
    """3,000 credits, auto top-up below 1,000 to 5,000; spending 2,500 tops up 4,500 credits for $45.00."""
    fund(org, 3_000)
    save_card(owner_client, org)
    configure(owner_client, org)
    spend(org, member, 2_500)
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.SUCCEEDED and org_balance(org) == 5_000
    return attempt


def deliver(events):
    for evt in events:
        assert post_event(evt).status_code == 200


def kinds(org, *names):
    return list(Transfer.objects.filter(org=org, kind__in=names).order_by("id").values_list("kind", "amount"))


def test_the_top_up_records_its_charge(org, owner_client, member):
    attempt = topped_up(org, owner_client, member)
    assert (
        attempt.charge_id
        and attempt.charge_id == core.get(attempt.payment_intent_id, "payment_intent")["latest_charge"]
    )


def test_a_dispute_holds_the_credits_once_and_a_replay_moves_nothing(org, owner_client, member):
    attempt = topped_up(org, owner_client, member)
    dispute, events = core.create_dispute(attempt.charge_id)
    deliver(events + events)  # the same event twice
    deliver([core.event("charge.dispute.updated", dispute)])  # another event, same facts
    attempt.refresh_from_db()
    assert (attempt.dispute_id, attempt.dispute_status) == (dispute["id"], "needs_response")
    assert (attempt.dispute_held_credits, attempt.dispute_outstanding_credits) == (4_500, 0)
    assert attempt.status == TopUpStatus.SUCCEEDED  # it was paid; the dispute is recorded beside it
    hold = Transfer.objects.get(org=org, kind=TransferKind.DISPUTE_HOLD)
    assert hold.amount == 4_500
    assert hold.idempotency_key == f"stripe:{attempt.payment_intent_id}:dispute:{dispute['id']}:hold"
    assert hold.memo == f"Credits held for a payment dispute on auto top-up #{attempt.pk}"
    assert org_balance(org) == 500 and org_outstanding_credits(org) == 0
    assert StripeEvent.objects.filter(event_id=events[0]["id"]).count() == 1
    assert ledger_problems() == []
    # The disputed card is not charged again by itself: the hold took the wallet below 1,000, and nothing started.
    row = AutoTopUp.objects.get(org=org)
    assert row.enabled is False and not BalanceWatch.objects.filter(ref_id=row.pk, purpose="auto_top_up").exists()
    assert TopUpAttempt.objects.count() == 1 and payment_intents().count() == 1


def test_a_dispute_holds_exactly_what_it_holds_on_a_purchase(org, owner, owner_client, member):
    """The same wallet facts give the same claims and ledger kinds on a purchase and on a top-up."""
    attempt = topped_up(org, owner_client, member)
    spend(org, member, 3_500)  # 5,000 -> 1,500: above the threshold, nothing starts
    _, events = core.create_dispute(attempt.charge_id)
    deliver(events)
    attempt.refresh_from_db()
    # 1,500 held from the wallet, 3,000 it no longer has become the outstanding balance (as for a purchase).
    assert (attempt.dispute_held_credits, attempt.dispute_outstanding_credits) == (1_500, 3_000)
    assert org_balance(org) == 0 and org_outstanding_credits(org) == 3_000
    assert kinds(org, TransferKind.DISPUTE_HOLD) == [(TransferKind.DISPUTE_HOLD, 1_500)]
    assert ledger_problems() == []

    # A purchase of the same $45.00 in the same state (wallet 1,500, the rest of its credits gone): the same claims.
    purchase, pevents = paid_purchase(org, owner, cents=4_500)
    deliver([event_named(pevents, "checkout.session.completed")])
    purchase.refresh_from_db()
    # Its credits paid the outstanding 3,000 first, so 1,500 of them are in the wallet, as after the top-up's spend.
    assert org_outstanding_credits(org) == 0 and org_balance(org) == 1_500
    _, pdevents = core.create_dispute(purchase.charge_id)
    deliver(pdevents)
    purchase.refresh_from_db()
    assert (purchase.dispute_held_credits, purchase.dispute_outstanding_credits) == (1_500, 3_000)
    assert org_outstanding_credits(org) == 3_000
    assert [k for k, _ in kinds(org, TransferKind.DISPUTE_HOLD)] == [TransferKind.DISPUTE_HOLD] * 2
    assert ledger_problems() == []


def test_a_won_dispute_releases_the_credits_and_cancels_its_outstanding_part(org, owner_client, member):
    attempt = topped_up(org, owner_client, member)
    spend(org, member, 3_500)
    dispute, events = core.create_dispute(attempt.charge_id)
    deliver(events)
    assert org_outstanding_credits(org) == 3_000 and org_balance(org) == 0
    _, closed = core.close_dispute(dispute["id"], won=True)
    deliver(closed + closed + events)  # replays, and a late "created" after the win
    attempt.refresh_from_db()
    assert attempt.dispute_status == "won"
    assert (attempt.dispute_held_credits, attempt.dispute_outstanding_credits) == (0, 0)
    assert org_outstanding_credits(org) == 0 and org_balance(org) == 1_500
    release = Transfer.objects.get(org=org, kind=TransferKind.DISPUTE_RELEASE)
    assert release.amount == 1_500
    assert release.idempotency_key == f"stripe:{attempt.payment_intent_id}:dispute:{dispute['id']}:release"
    assert kinds(org, TransferKind.DISPUTE_HOLD) == [(TransferKind.DISPUTE_HOLD, 1_500)]
    assert ledger_problems() == []


def test_a_lost_dispute_keeps_the_credits_taken(org, owner_client, member):
    attempt = topped_up(org, owner_client, member)
    dispute, events = core.create_dispute(attempt.charge_id)
    deliver(events)
    _, closed = core.close_dispute(dispute["id"], won=False)
    deliver(closed + events + closed)  # a late "created" after the loss changes nothing
    attempt.refresh_from_db()
    assert attempt.dispute_status == "lost" and attempt.dispute_held_credits == 4_500
    assert org_balance(org) == 500
    assert kinds(org, TransferKind.DISPUTE_HOLD, TransferKind.DISPUTE_RELEASE) == [(TransferKind.DISPUTE_HOLD, 4_500)]
    assert ledger_problems() == []


def test_a_dispute_closed_before_its_created_event_arrives_moves_nothing(org, owner_client, member):
    attempt = topped_up(org, owner_client, member)
    dispute, created = core.create_dispute(attempt.charge_id)
    _, closed = core.close_dispute(dispute["id"], won=True)
    before = ledger_snapshot()
    deliver(closed + created)  # the handler re-fetches the dispute: it is already won
    assert ledger_snapshot() == before
    attempt.refresh_from_db()
    assert attempt.dispute_status == "won" and attempt.dispute_held_credits == 0
    assert AutoTopUp.objects.get(org=org).enabled is True  # no open dispute was ever seen


def test_ten_concurrent_deliveries_hold_once(org, owner_client, member):
    attempt = topped_up(org, owner_client, member)
    dispute, events = core.create_dispute(attempt.charge_id)
    # Five copies of one event (the event id's unique row) and five distinct events (the attempt's row lock).
    batch = [events[0]] * 5 + [core.event("charge.dispute.updated", dispute) for _ in range(5)]
    assert race(10, lambda i: post_event(batch[i]).status_code, check=True) == [200] * 10
    attempt.refresh_from_db()
    assert attempt.dispute_held_credits == 4_500
    assert kinds(org, TransferKind.DISPUTE_HOLD) == [(TransferKind.DISPUTE_HOLD, 4_500)]
    assert org_balance(org) == 500
    assert StripeEvent.objects.filter(event_id__in={e["id"] for e in batch}).count() == 6
    assert ledger_problems() == []


@pytest.mark.parametrize("refund_first", [True, False])
def test_refund_and_dispute_never_claim_the_same_credits_in_either_order(org, owner_client, member, refund_first):
    """The top-up's refunds now go through the same claims code: refunds + dispute <= credits, in any order."""
    attempt = topped_up(org, owner_client, member)
    charge_event = lambda: core.event("charge.refunded", core.get(attempt.charge_id, "charge"))  # noqa: E731
    if refund_first:
        stripe_client.create_refund(payment_intent=attempt.payment_intent_id, amount_cents=1_500)
        deliver([charge_event()])
    _, events = core.create_dispute(attempt.charge_id, amount=4_500)
    deliver(events)
    if not refund_first:
        stripe_client.create_refund(payment_intent=attempt.payment_intent_id, amount_cents=1_500)
        deliver([charge_event()])
    attempt.refresh_from_db()
    assert (attempt.refunded_credits, attempt.dispute_held_credits) == (1_500, 3_000)
    assert org_balance(org) == 500  # 5,000 - 4,500 either way: nothing claimed twice
    assert ledger_problems() == []


def test_a_dispute_that_overtakes_the_payment_settles_it_first_then_holds(org, owner_client, member, monkeypatch):
    """Stripe's answer and the payment_intent.succeeded webhook both lost: the dispute event settles the try from
    the re-fetched PaymentIntent (credits land once), then holds them, as a purchase's dispute does."""
    real = stripe_client.charge_saved_card

    def lost(**kwargs):
        real(**kwargs)
        raise stripe_client.StripeError("connection reset")

    monkeypatch.setattr(stripe_client, "charge_saved_card", lost)
    fund(org, 3_000)
    save_card(owner_client, org)
    configure(owner_client, org)
    spend(org, member, 2_500)
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.PENDING and not attempt.payment_intent_id
    pi = payment_intents().get().data
    _, events = core.create_dispute(pi["latest_charge"])
    deliver(events + events)
    attempt.refresh_from_db()
    assert attempt.status == TopUpStatus.SUCCEEDED and attempt.payment_intent_id == pi["id"]
    assert attempt.dispute_held_credits == 4_500
    assert kinds(org, TransferKind.AUTO_TOP_UP, TransferKind.DISPUTE_HOLD) == [
        (TransferKind.AUTO_TOP_UP, 4_500),
        (TransferKind.DISPUTE_HOLD, 4_500),
    ]
    assert org_balance(org) == 500 and ledger_problems() == []
