"""Real concurrency on PostgreSQL through the API: 50 threads, each with its own connection, charge one
member at the same moment."""

import json

import pytest
from django.core.cache import cache
from django.test import Client

from apikeys.models import IdempotencyRecord, UsageCharge
from tests.api.helpers import give, issue_key
from tests.concurrency import race
from tests.factories import MembershipFactory, fund
from wallets.models import Transfer, TransferKind
from wallets.results import UsageCharged
from wallets.selectors import ledger_problems
from wallets.services import member_charge_usage

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

N = 50


@pytest.fixture
def setup(org):
    cache.clear()
    fund(org, 1_000)
    member = MembershipFactory(org=org)
    give(org, member, 30)
    token = issue_key(org, "charge")[1]
    return org, member, token


def _charge(token, member, key):
    response = Client(HTTP_AUTHORIZATION=f"Bearer {token}").post(
        "/api/v1/usage",
        json.dumps({"member_id": member.pk, "amount": 1, "description": "job"}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    return response.status_code, response.content


def test_50_concurrent_charges_with_a_balance_for_30_succeed_exactly_30_times(setup, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    org, member, token = setup
    results = race(N, lambda i: _charge(token, member, f"job-{i}"))
    statuses = [r[0] if isinstance(r, tuple) else repr(r) for r in results]
    assert statuses.count(201) == 30, statuses
    assert statuses.count(402) == 20, statuses
    assert Transfer.objects.filter(org=org, kind=TransferKind.USAGE).count() == 30
    assert UsageCharge.objects.count() == 30
    body = json.loads(next(r[1] for r in results if r[0] == 402))
    assert body["code"] == "insufficient_credits" and body["shortfall"] == 1 and body["available"] == 0
    assert ledger_problems() == []


def test_50_concurrent_charges_with_one_idempotency_key_succeed_once(setup, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    org, member, token = setup
    results = race(N, lambda i: _charge(token, member, "the-same-job"))
    assert all(isinstance(r, tuple) for r in results), results
    assert {r[0] for r in results} == {201}
    assert len({r[1] for r in results}) == 1  # every caller got the first response, byte for byte
    assert Transfer.objects.filter(org=org, kind=TransferKind.USAGE).count() == 1
    assert UsageCharge.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
    assert ledger_problems() == []


def test_concurrent_service_charges_never_overdraw(setup):
    """The service on its own (no API, no idempotency record): the membership lock serialises charges."""
    org, member, _ = setup
    results = race(20, lambda i: member_charge_usage(org=org, membership_id=member.pk, amount=2))
    assert sum(1 for r in results if isinstance(r, UsageCharged)) == 15
    assert all(type(r).__name__ == "InsufficientCredits" for r in results if not isinstance(r, UsageCharged))
    assert ledger_problems() == []


def test_concurrent_service_charges_with_one_key_that_empties_the_wallet_replay_not_402(setup):
    """The service alone, 20 callers with one key charging the member's whole balance: one charge, 19 replays.
    The callers that waited for the membership read a snapshot from before the first charge committed; the
    balance they then find is 0, and they must look the key up again instead of answering 402."""
    org, member, _ = setup
    results = race(
        20, lambda i: member_charge_usage(org=org, membership_id=member.pk, amount=30, idempotency_key="drain")
    )
    assert all(isinstance(r, UsageCharged) for r in results), results
    assert sum(1 for r in results if not r.replayed) == 1
    assert len({r.transfer.pk for r in results}) == 1
    assert Transfer.objects.filter(org=org, kind=TransferKind.USAGE).count() == 1
    assert ledger_problems() == []


@pytest.mark.parametrize("round_", range(3))
def test_many_members_charged_at_once_all_succeed_even_on_a_fresh_usage_pocket(org, round_):
    """Eight members charged at the same moment, on an org whose Usage pocket does not exist yet: every
    charge waits on that one pocket (created by the first), and none may come back 'busy' or short.
    (A ledger statement whose pocket lookup was inlined into the locking query dropped the freshly
    created, concurrently updated Usage pocket after the wait: half of these came back LedgerBusy.)"""
    members = [MembershipFactory(org=org) for _ in range(8)]
    fund(org, 1_000)
    for m in members:
        give(org, m, 10)
    results = race(16, lambda i: member_charge_usage(org=org, membership_id=members[i % 8].pk, amount=1))
    assert all(isinstance(r, UsageCharged) for r in results), results
    assert Transfer.objects.filter(org=org, kind=TransferKind.USAGE).count() == 16
    assert ledger_problems() == []
