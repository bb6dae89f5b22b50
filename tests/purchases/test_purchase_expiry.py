"""Purchased credits that expire (issue 19, docs/stripe.md "Expiring purchased credits"): the org's "purchased
credits expire after N months" setting gives a purchase (and an auto top-up) its day once, when the credits land;
a replayed webhook credits once into that pocket, a later change of the setting leaves the day be; a refund takes
the purchase's own pocket first, then the soonest-expiring; a won dispute gives the held credits back with the
days they had. Through the real webhook path and the Stripe stand-in."""

import datetime

import pytest
from django.utils import timezone

from devtools.stripe_standin import core
from purchases.models import Purchase, TopUpAttempt
from purchases.services import add_months, purchase_refresh, purchased_credits_expire_on
from tests.concurrency import race
from tests.expiry.helpers import balances, in_days
from tests.factories import MembershipFactory, UserFactory, fund
from tests.purchases.stripe_fixtures import (  # noqa: F401 - fixtures
    event_named,
    paid_purchase,
    post_event,
    standin_fixture,
    standin_in_process_fixture,
)
from tests.purchases.test_auto_top_up import _signed_in
from tests.purchases.test_auto_top_up_disputes import topped_up
from wallets.models import NEVER, Transfer, TransferKind, Wallet
from wallets.outstanding import org_outstanding_credits
from wallets.selectors import ledger_problems
from wallets.services import credit_type, org_credit_from_stripe, org_transfer_to_member

CENTS = 2000  # $20.00: 2,000 credits
DB = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (datetime.date(2027, 1, 31), 1, datetime.date(2027, 2, 28)),
        (datetime.date(2028, 1, 31), 1, datetime.date(2028, 2, 29)),
        (datetime.date(2027, 3, 31), 1, datetime.date(2027, 4, 30)),
        (datetime.date(2026, 12, 3), 1, datetime.date(2027, 1, 3)),
        (datetime.date(2026, 8, 31), 6, datetime.date(2027, 2, 28)),
        (datetime.date(2026, 12, 15), 12, datetime.date(2027, 12, 15)),
        (datetime.date(2026, 5, 20), 25, datetime.date(2028, 6, 20)),
    ],
)
def test_months_are_calendar_months_with_the_day_clamped(day, months, expected):
    assert add_months(day, months) == expected


def _org_pockets(org) -> dict:
    return {day: bal for (_slug, _fo, day), bal in balances(Wallet.objects.for_org(org)).items()}


def _deliver(evt) -> None:
    response = post_event(evt)
    assert response.status_code == 200, response.content


def _charge_id(purchase: Purchase) -> str:
    session = core.get(purchase.stripe_session_id, "checkout.session")
    return core.get(session["payment_intent"], "payment_intent")["latest_charge"]


@pytest.fixture
def buyer(org, owner):
    org.purchased_credits_expire_months = 3
    org.save(update_fields=["purchased_credits_expire_months"])
    return org, owner


def _buy(org, owner, cents=CENTS) -> tuple[Purchase, dict]:
    purchase, events = paid_purchase(org, owner, cents)
    completed = event_named(events, "checkout.session.completed")
    _deliver(completed)
    return Purchase.objects.get(pk=purchase.pk), completed


@DB
def test_a_purchase_under_the_setting_credits_a_pocket_expiring_n_months_after_it_is_paid(standin_in_process, buyer):
    org, owner = buyer
    purchase, completed = _buy(org, owner)
    day = add_months(timezone.localdate(), 3)
    assert purchase.status == "paid" and purchase.credits_expire_on == day
    assert purchase_refresh(purchase).credits_expire_on == day
    assert _org_pockets(org) == {day: purchase.credits}
    # A replayed webhook and the success page credit nothing more, into no other pocket.
    _deliver(completed)
    purchase_refresh(Purchase.objects.get(pk=purchase.pk))
    assert Transfer.objects.filter(org=org, kind=TransferKind.PURCHASE).count() == 1
    assert _org_pockets(org) == {day: purchase.credits}
    # A later change of the setting leaves the purchase's day alone; the next purchase gets the new one.
    org.purchased_credits_expire_months = 6
    org.save(update_fields=["purchased_credits_expire_months"])
    _deliver(completed)
    assert Purchase.objects.get(pk=purchase.pk).credits_expire_on == day
    second, _ = _buy(org, owner)
    assert second.credits_expire_on == add_months(timezone.localdate(), 6)
    assert _org_pockets(org) == {day: purchase.credits, second.credits_expire_on: second.credits}
    assert ledger_problems() == []


@DB
def test_without_the_setting_purchased_credits_never_expire(standin_in_process, org, owner):
    assert purchased_credits_expire_on(org) is None
    purchase, _ = _buy(org, owner)
    assert purchase.credits_expire_on is None and purchase.expires_on == NEVER
    assert _org_pockets(org) == {NEVER: purchase.credits}
    assert ledger_problems() == []


@DB
def test_an_outstanding_balance_is_paid_from_the_new_purchases_own_pocket(standin_in_process, buyer):
    org, owner = buyer
    first, _ = _buy(org, owner)
    member = MembershipFactory(org=org, user=UserFactory(password=None))
    org_transfer_to_member(org=org, membership_id=member.pk, credit_type=credit_type("org-allocated"), amount=1_500)
    _, events = core.create_refund({"charge": _charge_id(first), "amount": str(CENTS)}, idempotency_key=None)
    _deliver(event_named(events, "charge.refunded"))
    assert org_outstanding_credits(org) == 1_500 and _org_pockets(org) == {}
    second, _ = _buy(org, owner)
    assert org_outstanding_credits(org) == 0
    assert _org_pockets(org) == {second.credits_expire_on: second.credits - 1_500}
    assert ledger_problems() == []


@DB
def test_a_refund_takes_the_purchases_own_pocket_first_then_the_soonest_expiring(standin_in_process, buyer):
    org, owner = buyer
    fund(org, 1_000)  # never expires
    org_credit_from_stripe(org=org, amount=500, expires_on=in_days(10))
    purchase, _ = _buy(org, owner)
    day = purchase.credits_expire_on
    charge_id = _charge_id(purchase)
    # Half refunded: all of it from the purchase's own pocket, though the 10-day credits expire sooner.
    _, events = core.create_refund({"charge": charge_id, "amount": str(CENTS // 2)}, idempotency_key=None)
    _deliver(event_named(events, "charge.refunded"))
    assert _org_pockets(org) == {NEVER: 1_000, in_days(10): 500, day: 1_000}
    # A member is handed 1,200 (the soonest first: the 10-day 500, then 700 of the purchase's), then the rest is
    # refunded: the purchase's 300 left first, then the soonest-expiring (nothing left of the 10-day), then never.
    member = MembershipFactory(org=org, user=UserFactory(password=None))
    org_transfer_to_member(org=org, membership_id=member.pk, credit_type=credit_type("org-allocated"), amount=1_200)
    assert _org_pockets(org) == {NEVER: 1_000, day: 300}
    _, events = core.create_refund({"charge": charge_id, "amount": str(CENTS // 2)}, idempotency_key=None)
    _deliver(event_named(events, "charge.refunded"))
    assert _org_pockets(org) == {NEVER: 300}
    assert Purchase.objects.get(pk=purchase.pk).refunded_credits == 2_000
    assert ledger_problems() == []


@DB
def test_a_never_expiring_purchases_refund_takes_the_never_expiring_pocket_first(standin_in_process, org, owner):
    org_credit_from_stripe(org=org, amount=500, expires_on=in_days(10))
    purchase, _ = _buy(org, owner)
    _, events = core.create_refund({"charge": _charge_id(purchase), "amount": "500"}, idempotency_key=None)
    _deliver(event_named(events, "charge.refunded"))
    assert _org_pockets(org) == {in_days(10): 500, NEVER: 1_500}
    assert ledger_problems() == []


@DB
def test_a_won_dispute_gives_the_held_credits_back_with_their_days(standin_in_process, buyer):
    org, owner = buyer
    fund(org, 1_000)  # never expires
    org_credit_from_stripe(org=org, amount=500, expires_on=in_days(10))
    purchase, _ = _buy(org, owner)
    day = purchase.credits_expire_on
    member = MembershipFactory(org=org, user=UserFactory(password=None))
    org_transfer_to_member(org=org, membership_id=member.pk, credit_type=credit_type("org-allocated"), amount=2_200)
    assert _org_pockets(org) == {NEVER: 1_000, day: 300}
    dispute, events = core.create_dispute(_charge_id(purchase))
    _deliver(event_named(events, "charge.dispute.created"))
    p = Purchase.objects.get(pk=purchase.pk)
    # The purchase's own 300 first, then the never-expiring 1,000; the 700 the wallet no longer has are owed.
    assert p.dispute_days == [[day.isoformat(), 300], [NEVER.isoformat(), 1_000]]
    assert (p.dispute_held_credits, p.dispute_outstanding_credits) == (1_300, 700)
    assert _org_pockets(org) == {} and org_outstanding_credits(org) == 700
    assert ledger_problems() == []
    _, events = core.close_dispute(dispute["id"], won=True)
    _deliver(event_named(events, "charge.dispute.closed"))
    p = Purchase.objects.get(pk=purchase.pk)
    assert p.dispute_days == [] and (p.dispute_held_credits, p.dispute_outstanding_credits) == (0, 0)
    assert org_outstanding_credits(org) == 0
    assert _org_pockets(org) == {NEVER: 1_000, day: 300}
    release = Transfer.objects.get(org=org, kind=TransferKind.DISPUTE_RELEASE)
    assert release.amount == 1_300
    assert ledger_problems() == []


@DB
def test_a_refund_of_held_credits_keeps_them_out_of_the_won_disputes_release(standin_in_process, buyer):
    org, owner = buyer
    fund(org, 1_000)  # never expires
    purchase, _ = _buy(org, owner)
    day = purchase.credits_expire_on
    charge_id = _charge_id(purchase)
    dispute, events = core.create_dispute(charge_id)
    _deliver(event_named(events, "charge.dispute.created"))
    assert Purchase.objects.get(pk=purchase.pk).dispute_days == [[day.isoformat(), 2_000]]
    _, events = core.create_refund({"charge": charge_id, "amount": str(CENTS // 4)}, idempotency_key=None)
    _deliver(event_named(events, "charge.refunded"))
    p = Purchase.objects.get(pk=purchase.pk)
    assert (p.refunded_credits, p.dispute_held_credits) == (500, 1_500)
    assert p.dispute_days == [[day.isoformat(), 1_500]]
    _, events = core.close_dispute(dispute["id"], won=True)
    _deliver(event_named(events, "charge.dispute.closed"))
    assert _org_pockets(org) == {NEVER: 1_000, day: 1_500}
    assert ledger_problems() == []


@DB
def test_concurrent_deliveries_credit_one_pocket_once_and_hold_and_release_its_days_once(standin_in_process, buyer):
    org, owner = buyer
    fund(org, 1_000)  # never expires
    purchase, events = paid_purchase(org, owner, CENTS)
    completed = event_named(events, "checkout.session.completed")
    # Ten deliveries of the paid event at once: one PURCHASE, into the pocket of the purchase's day.
    assert race(10, lambda i: post_event(completed).status_code, check=True) == [200] * 10
    purchase = Purchase.objects.get(pk=purchase.pk)
    day = add_months(timezone.localdate(), 3)
    assert purchase.credits_expire_on == day
    assert Transfer.objects.filter(org=org, idempotency_key=purchase.ledger_key).count() == 1
    assert _org_pockets(org) == {NEVER: 1_000, day: 2_000}
    # The dispute's events at once (five copies of one, five distinct): one hold, its days recorded once.
    member = MembershipFactory(org=org, user=UserFactory(password=None))
    org_transfer_to_member(org=org, membership_id=member.pk, credit_type=credit_type("org-allocated"), amount=1_500)
    assert _org_pockets(org) == {NEVER: 1_000, day: 500}
    dispute, sent = core.create_dispute(_charge_id(purchase))
    batch = [event_named(sent, "charge.dispute.created")] * 5
    batch += [core.event("charge.dispute.updated", dispute) for _ in range(5)]
    assert race(10, lambda i: post_event(batch[i]).status_code, check=True) == [200] * 10
    p = Purchase.objects.get(pk=purchase.pk)
    assert p.dispute_days == [[day.isoformat(), 500], [NEVER.isoformat(), 1_000]]
    assert Transfer.objects.filter(org=org, kind=TransferKind.DISPUTE_HOLD).count() == 1
    assert ledger_problems() == []
    # The win, delivered five times at once: one release, to the same days.
    _, sent = core.close_dispute(dispute["id"], won=True)
    closed = event_named(sent, "charge.dispute.closed")
    assert race(5, lambda i: post_event(closed).status_code, check=True) == [200] * 5
    assert Transfer.objects.filter(org=org, kind=TransferKind.DISPUTE_RELEASE).count() == 1
    assert _org_pockets(org) == {NEVER: 1_000, day: 500}
    assert org_outstanding_credits(org) == 0
    assert ledger_problems() == []


@pytest.mark.usefixtures("standin")
@pytest.mark.django_db(transaction=True)
def test_an_auto_top_up_under_the_setting_credits_a_pocket_expiring_n_months_later(org, owner):
    org.purchased_credits_expire_months = 2
    org.save(update_fields=["purchased_credits_expire_months"])
    member = MembershipFactory(org=org, role="member")
    attempt = topped_up(org, _signed_in(owner), member)
    day = add_months(timezone.localdate(), 2)
    assert TopUpAttempt.objects.get(pk=attempt.pk).credits_expire_on == day
    assert _org_pockets(org)[day] == 4_500
    assert ledger_problems() == []
