"""manage.py reconcile_stripe: silent when Stripe and the ledger agree; lists each disagreement otherwise."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from devtools.stripe_standin import core
from devtools.stripe_standin.models import StandinObject
from purchases import stripe_client
from purchases.models import Purchase
from tests.purchases.stripe_fixtures import paid_purchase, post_event, standin_fixture, start  # noqa: F401

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
