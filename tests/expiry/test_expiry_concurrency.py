"""Real concurrency on PostgreSQL: workers with their own connections run the expiry and the notices at once."""

import threading

import pytest
from django.core import mail
from django.db import connection, transaction

from expiry.models import ExpiryNotice
from expiry.services import announce_expiring, run_expiry
from tests.concurrency import race
from tests.expiry.helpers import days_pass, expired_total, give, grant
from tests.factories import MembershipFactory, OrgFactory, UserFactory
from wallets.models import Pocket, Transfer, TransferKind
from wallets.selectors import ledger_problems

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _expiring_orgs(n_orgs=3, members=4):
    orgs = [OrgFactory() for _ in range(n_orgs)]
    for org in orgs:
        grant(org, 1_000, days=1)
        for m in [MembershipFactory(org=org) for _ in range(members)]:
            give(org, m, 100)
    days_pass(1)
    return orgs


def test_eight_workers_at_once_expire_each_org_exactly_once():
    orgs = _expiring_orgs()

    results = race(8, lambda i: run_expiry())

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.transfers for r in results) == 3 and sum(r.credits for r in results) == 3_000
    assert sum(r.pockets for r in results) == 15  # per org: the org wallet's and four members'
    assert sorted(Transfer.objects.filter(kind=TransferKind.EXPIRY).values_list("org_id", flat=True)) == sorted(
        o.pk for o in orgs
    )
    assert [expired_total(o) for o in orgs] == [1_000] * 3
    assert not Pocket.objects.filter(balance__gt=0, is_external=False).exclude(expires_on__gt="9000-01-01").exists()
    assert ledger_problems() == []


def test_eight_workers_with_small_batches_still_expire_each_pocket_once(monkeypatch):
    monkeypatch.setattr("expiry.services.BATCH", 2)
    orgs = _expiring_orgs(n_orgs=2, members=5)

    results = race(8, lambda i: run_expiry())

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.pockets for r in results) == 12 and sum(r.credits for r in results) == 2_000
    assert [expired_total(o) for o in orgs] == [1_000] * 2
    assert ledger_problems() == []


def test_two_concurrent_announcements_send_each_notice_once():
    owner = UserFactory(email="owner@example.com")
    org = OrgFactory(name="Acme", owner=owner)
    MembershipFactory(org=org, role="admin", user=UserFactory(email="admin@example.com"))
    member = MembershipFactory(org=org, user=UserFactory(email="member@example.com"))
    grant(org, 500, days=5)
    give(org, member, 200)

    results = race(2, lambda i: announce_expiring())

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.notices for r in results) == [0, 3]
    assert sorted(m.to[0] for m in mail.outbox) == ["admin@example.com", "member@example.com", "owner@example.com"]
    assert ExpiryNotice.objects.count() == 3


def test_an_org_whose_pockets_stay_locked_is_left_for_the_next_run_and_the_others_expire():
    busy_org, free_org = _expiring_orgs(n_orgs=2, members=1)
    pocket = Pocket.objects.filter(org=busy_org, balance__gt=0, is_external=False).order_by("id").first()
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                Pocket.objects.select_for_update().get(pk=pocket.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = '200ms'")
        run = run_expiry()
    finally:
        release.set()
        holder.join()
        with connection.cursor() as cur:
            cur.execute("RESET lock_timeout")

    assert (run.orgs, run.busy, run.credits) == (1, 1, 1_000)
    assert (expired_total(busy_org), expired_total(free_org)) == (0, 1_000)
    assert run_expiry().credits == 1_000  # the next run takes the org it missed
    assert expired_total(busy_org) == 1_000
    assert ledger_problems() == []
