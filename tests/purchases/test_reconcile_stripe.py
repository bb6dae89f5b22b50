"""manage.py reconcile_stripe: silent when Stripe and the ledger agree; lists each disagreement otherwise."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from devtools.stripe_standin import core
from devtools.stripe_standin.models import StandinObject
from purchases import stripe_client
from purchases.models import Purchase, TopUpAttempt, TopUpStatus
from tests.factories import MembershipFactory, fund
from tests.purchases.stripe_fixtures import paid_purchase, post_event, standin_fixture, start  # noqa: F401
from tests.purchases.test_auto_top_up import _signed_in, configure, save_card, spend

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("standin")]


def run(days=30) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("reconcile_stripe", days=days, stdout=out)
    except SystemExit as exc:
        return out.getvalue(), exc.code
    return out.getvalue(), 0


def test_in_sync_prints_nothing(org, owner):
    _, events = paid_purchase(org, owner)
    post_event(events[0])
    start(org, owner)  # an open, unpaid checkout is fine
    assert run() == ("", 0)


def test_paid_session_without_credits_is_listed(org, owner):
    purchase, _ = paid_purchase(org, owner)  # paid at Stripe, no event delivered
    out, code = run()
    assert code == 1
    assert out.strip() == (
        f"PAID WITHOUT CREDITS  {purchase.stripe_session_id}  $25.00  purchase #{purchase.pk} (Acme Quantum)"
    )


def test_credits_without_paid_session_are_listed(org, owner):
    purchase, events = paid_purchase(org, owner)
    post_event(events[0])
    row = StandinObject.objects.get(pk=purchase.stripe_session_id)
    row.data["payment_status"] = "unpaid"  # e.g. credits granted for a session Stripe never saw paid
    row.save()
    out, code = run()
    assert code == 1
    assert f"CREDITS WITHOUT PAID SESSION  purchase #{purchase.pk}" in out
    assert "is complete/unpaid" in out


def test_rejects_nonsense_days(db):
    with pytest.raises(CommandError):
        call_command("reconcile_stripe", days=0)


def test_sessions_are_listed_page_by_page_through_the_sdk(org, owner):
    for _ in range(3):
        _, events = paid_purchase(org, owner)
        post_event(events[0])
    assert core.list_sessions(created_gte=None, limit=2, starting_after=None)["has_more"] is True
    listed = [s["id"] for s in stripe_client.list_checkout_sessions(created_gte=0, limit=2)]
    assert sorted(listed) == sorted(Purchase.objects.values_list("stripe_session_id", flat=True))
    assert run() == ("", 0)


def test_demo_seeded_purchases_are_not_listed(settings):
    """seed_demo's purchases are Paid rows linked to their transfers but were never checked out: no session to
    compare, so they are neither 'credits without a paid session' nor orphan purchase transfers."""
    call_command("seed_demo", stdout=io.StringIO())
    seeded = Purchase.objects.filter(org__slug="quantum-lab")
    assert seeded.count() == 3 and not seeded.filter(stripe_session_id__isnull=False).exists()
    assert run() == ("", 0)


# ---------------------------------------------------------------- auto top-up's off-session charges


@pytest.fixture
def topping_up(org, owner):
    """An org whose auto top-up (below 1,000 to 5,000, card 4242) is armed, and a function that crosses below."""
    member = MembershipFactory(org=org, role="member")
    owner_client = _signed_in(owner)
    fund(org, 3_000)
    save_card(owner_client, org)
    configure(owner_client, org)
    return lambda: spend(org, member, 2_500)


def test_top_ups_in_sync_print_nothing(org, owner, topping_up):
    topping_up()
    assert TopUpAttempt.objects.get().status == TopUpStatus.SUCCEEDED
    _, events = paid_purchase(org, owner)
    post_event(events[0])
    assert run() == ("", 0)


def test_a_top_up_charge_stripe_has_and_the_ledger_lacks_is_listed(org, monkeypatch, topping_up):
    real = stripe_client.charge_saved_card
    # Stripe answered "processing" and the payment_intent.succeeded webhook was lost: paid at Stripe, no credits.
    monkeypatch.setattr(stripe_client, "charge_saved_card", lambda **kw: {**real(**kw), "status": "processing"})
    topping_up()
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.PENDING and attempt.transfer_id is None and attempt.payment_intent_id
    assert core.get(attempt.payment_intent_id, "payment_intent")["status"] == "succeeded"
    out, code = run()
    assert code == 1
    assert (
        out.strip()
        == f"PAID WITHOUT CREDITS  {attempt.payment_intent_id}  $45.00  auto top-up #{attempt.pk} (Acme Quantum)"
    )
    # The webhook arrives after all: credited once, and they agree.
    post_event(core.event("payment_intent.succeeded", core.get(attempt.payment_intent_id, "payment_intent")))
    assert run() == ("", 0)


def test_top_up_credits_without_a_paid_charge_are_listed(org, topping_up):
    topping_up()
    attempt = TopUpAttempt.objects.get()
    row = StandinObject.objects.get(pk=attempt.payment_intent_id)
    row.data["status"] = "requires_payment_method"  # e.g. credits granted for a charge Stripe never saw paid
    row.save()
    out, code = run()
    assert code == 1
    assert out.strip() == (
        f"CREDITS WITHOUT PAID CHARGE  auto top-up #{attempt.pk} (Acme Quantum)  4,500 credits  payment intent "
        f"{attempt.payment_intent_id} is requires_payment_method"
    )


def test_a_top_up_left_without_stripes_answer_is_listed_once_it_is_stale(org, monkeypatch, topping_up):
    real = stripe_client.charge_saved_card

    def lost(**kwargs):
        real(**kwargs)  # Stripe charged, but its answer never arrived
        raise stripe_client.StripeError("connection reset")

    monkeypatch.setattr(stripe_client, "charge_saved_card", lost)
    topping_up()
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.PENDING and not attempt.payment_intent_id
    assert run() == ("", 0)  # the sweep asks Stripe again after 2 minutes: not a problem yet
    TopUpAttempt.objects.filter(pk=attempt.pk).update(created_at=timezone.now() - timedelta(hours=2))
    out, code = run()
    assert code == 1
    assert out.strip() == f"TOP-UP NOT SETTLED  auto top-up #{attempt.pk} (Acme Quantum)  $45.00  no answer from Stripe"
