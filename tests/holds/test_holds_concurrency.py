"""Real concurrency on PostgreSQL: threads with their own connections race holds, captures, voids and expiry."""

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from apikeys.models import UsageCharge
from holds.errors import HoldExpired
from holds.models import Hold, HoldStatus
from holds.selectors import holds_problems
from holds.services import capture_hold, create_hold, expire_hold, void_hold
from members.services import member_remove
from tests.api.helpers import give, issue_key
from tests.concurrency import race
from tests.factories import MembershipFactory, fund
from wallets.errors import MemberNotActive
from wallets.models import Pocket, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems
from wallets.services import member_charge_usage

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def setup(org, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    cache.clear()
    fund(org, 1_000)
    member = MembershipFactory(org=org)
    give(org, member, 30)
    token = issue_key(org, "charge")[1]
    return org, member, token


def _post(token, path, body, key):
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").post(
        f"/api/v1{path}", json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )
    return response.status_code, response.content


def _member_total(org, member):
    wallet = Wallet.objects.for_user(member.user)
    return sum(Pocket.objects.filter(wallet=wallet, funding_org=org).values_list("balance", flat=True))


def test_50_concurrent_holds_with_a_balance_for_30_succeed_exactly_30_times(setup):
    org, member, token = setup
    results = race(50, lambda i: _post(token, "/holds", {"member_id": member.pk, "amount": 1}, f"job-{i}"))
    statuses = [r[0] if isinstance(r, tuple) else repr(r) for r in results]
    assert statuses.count(201) == 30, statuses
    assert statuses.count(402) == 20, statuses
    assert Hold.objects.filter(status=HoldStatus.OPEN).count() == 30
    assert Transfer.objects.filter(kind=TransferKind.HOLD).count() == 30
    body = json.loads(next(r[1] for r in results if r[0] == 402))
    assert body["code"] == "insufficient_credits" and body["shortfall"] == 1 and body["available"] == 0
    assert _member_total(org, member) == 0
    assert ledger_problems() == [] and holds_problems() == []


def test_concurrent_holds_and_usage_charges_never_overdraw(setup):
    """Holds and plain usage charges share the member's pockets: together they never take more than 30."""
    org, member, token = setup

    def go(i):
        if i % 2:
            return _post(token, "/holds", {"member_id": member.pk, "amount": 2}, f"h-{i}")
        return _post(token, "/usage", {"member_id": member.pk, "amount": 2}, f"u-{i}")

    results = race(30, go)
    ok = [r for r in results if isinstance(r, tuple) and r[0] == 201]
    assert len(ok) == 15, results
    assert all(isinstance(r, tuple) and r[0] in (201, 402) for r in results), results
    assert _member_total(org, member) == 0
    assert ledger_problems() == [] and holds_problems() == []


def test_50_concurrent_holds_with_one_key_hold_once(setup):
    _org, member, token = setup
    results = race(50, lambda i: _post(token, "/holds", {"member_id": member.pk, "amount": 30}, "one-job"))
    assert {r[0] for r in results if isinstance(r, tuple)} == {201}, results
    assert len({r[1] for r in results}) == 1
    assert Hold.objects.count() == 1 and Transfer.objects.filter(kind=TransferKind.HOLD).count() == 1
    assert ledger_problems() == [] and holds_problems() == []


@pytest.mark.parametrize("round_", range(3))
def test_capture_and_void_racing_on_one_hold_have_one_outcome(setup, round_):
    org, member, token = setup
    hold = create_hold(org=org, membership_id=member.pk, amount=20, idempotency_key="h").hold

    def go(i):
        if i % 2:
            return ("capture", _post(token, f"/holds/{hold.pk}/capture", {"amount": 15}, f"c-{i}")[0])
        return ("void", _post(token, f"/holds/{hold.pk}/void", {}, f"v-{i}")[0])

    results = race(10, go)
    assert all(isinstance(r, tuple) for r in results), results
    hold.refresh_from_db()
    assert hold.status in (HoldStatus.CAPTURED, HoldStatus.VOIDED)
    winner = "capture" if hold.status == HoldStatus.CAPTURED else "void"
    # Every caller of the winning verb gets 200 (the same outcome, replayed); every loser gets 409.
    assert all(status == (200 if verb == winner else 409) for verb, status in results), results
    # A capture is a release of the hold to the member then the charge (two transfers); a void, one release.
    assert Transfer.objects.filter(kind=TransferKind.HOLD_CAPTURE).count() == (1 if winner == "capture" else 0)
    assert Transfer.objects.filter(kind=TransferKind.HOLD_RELEASE).count() == 1
    assert UsageCharge.objects.count() == (1 if winner == "capture" else 0)
    assert _member_total(org, member) == (10 + 5 if winner == "capture" else 30)
    assert ledger_problems() == [] and holds_problems() == []


def test_capture_void_and_expiry_racing_on_an_expired_hold_expire_it_once(setup):
    """Services alone, the hold just past its expiry: captures and voids are refused, the expiry task (run by
    several workers at once) releases it exactly once."""
    org, member, _ = setup
    hold = create_hold(org=org, membership_id=member.pk, amount=20, idempotency_key="h").hold
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(milliseconds=1))

    def go(i):
        if i % 3 == 0:
            return capture_hold(org=org, hold_id=hold.pk, amount=10)
        if i % 3 == 1:
            return void_hold(org=org, hold_id=hold.pk)
        return expire_hold(org=org, hold_id=hold.pk)

    results = race(12, go)
    assert all(isinstance(r, HoldExpired) for i, r in enumerate(results) if i % 3 != 2), results
    expired = [r for i, r in enumerate(results) if i % 3 == 2]
    assert sum(1 for r in expired if r is not None and not r.replayed) == 1, expired
    hold.refresh_from_db()
    assert hold.status == HoldStatus.EXPIRED
    assert Transfer.objects.filter(kind=TransferKind.HOLD_RELEASE).count() == 1
    assert not Transfer.objects.filter(kind=TransferKind.HOLD_CAPTURE).exists()
    assert _member_total(org, member) == 30
    assert ledger_problems() == [] and holds_problems() == []


@pytest.mark.parametrize("round_", range(3))
def test_captures_racing_a_removal_and_usage_charges_lose_nothing(setup, owner, round_):
    """Captures (one statement each: hold, membership, pockets locked in that order) race the member's removal
    (membership, then pockets) and usage charges on the same pockets. Whichever order they commit in: every hold
    is captured once for what was asked, the rest of a hold goes to the member (then back to the org with the
    Return) or, once the member is removed, straight to the org wallet, and no credit is made or lost."""
    org, member, _ = setup
    holds = [create_hold(org=org, membership_id=member.pk, amount=5, idempotency_key=f"h{i}").hold for i in range(3)]
    org_wallet = Wallet.objects.for_org(org)
    org_before = sum(Pocket.objects.filter(wallet=org_wallet).values_list("balance", flat=True))

    def go(i):
        if i < 3:
            return capture_hold(org=org, hold_id=holds[i].pk, amount=3)
        if i == 3:
            return member_remove(org=org, membership_id=member.pk, actor=owner)
        return member_charge_usage(org=org, membership_id=member.pk, amount=2, idempotency_key=f"u{i}")

    results = race(6, go)
    captures, charges = results[:3], results[4:]
    assert all(r.hold.status == HoldStatus.CAPTURED and r.hold.captured == 3 for r in captures), results
    assert not isinstance(results[3], Exception), results
    charged = sum(2 for r in charges if not isinstance(r, Exception))
    # A charge after the removal is refused (not a member): nothing else.
    assert all(isinstance(r, MemberNotActive) for r in charges if isinstance(r, Exception)), results
    assert _member_total(org, member) == 0
    org_after = sum(Pocket.objects.filter(wallet=org_wallet).values_list("balance", flat=True))
    assert org_after - org_before == 30 - 9 - charged
    assert Transfer.objects.filter(kind=TransferKind.HOLD_CAPTURE).count() == 3
    assert ledger_problems() == [] and holds_problems() == []
