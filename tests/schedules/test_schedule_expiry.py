"""Expiry travels through schedules (issue 19, docs/schedules.md): an allocation sends the org wallet's
soonest-expiring credits first and each member's pockets keep their days; the return of unused credits gives
each member pocket back to the org wallet's pocket of the same day; top-up and "can the org afford it" count
every pocket, whatever its day."""

from datetime import date

import pytest

from schedules.models import ReturnState, RunStatus, ScheduleRun
from schedules.services import run_due, run_schedule
from tests.expiry.helpers import balances, in_days
from tests.factories import MembershipFactory, fund, ledger_snapshot
from tests.schedules.helpers import make_schedule
from wallets.models import NEVER, CreditType, Entry, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems
from wallets.services import member_charge_usage, org_credit_from_stripe, org_transfer_to_member

pytestmark = pytest.mark.django_db


def _mine(member) -> dict:
    return {day: bal for (_slug, _fo, day), bal in balances(Wallet.objects.for_user(member.user)).items()}


def _org(org) -> dict:
    return {day: bal for (_slug, _fo, day), bal in balances(Wallet.objects.for_org(org)).items()}


@pytest.fixture
def two(org):
    """An org wallet with 150 credits expiring in 20 days and 100 that never expire (no pocket alone can pay
    for 200), and two members."""
    org_credit_from_stripe(org=org, amount=150, expires_on=in_days(20))
    fund(org, 100)
    a, b = MembershipFactory(org=org), MembershipFactory(org=org)
    return a, b


def test_an_allocation_sends_the_soonest_expiring_credits_and_members_keep_their_days(org, two):
    a, b = two
    schedule = make_schedule(org, amount=100, recipients="selected", members=[a, b])
    run_schedule(schedule.pk, today=date(2026, 1, 1))
    run = ScheduleRun.objects.get(schedule=schedule)
    assert (run.status, run.members, run.credits) == (RunStatus.APPLIED, 2, 200)
    assert _mine(a) == {in_days(20): 100}
    assert _mine(b) == {in_days(20): 50, NEVER: 50}
    assert _org(org) == {NEVER: 50}
    # One SCHEDULED_ALLOCATION transfer, its org-wallet debit split over the two pockets.
    transfer = Transfer.objects.get(kind=TransferKind.SCHEDULED_ALLOCATION)
    org_wallet = Wallet.objects.for_org(org)
    assert sorted(
        (e.pocket.expires_on, e.amount)
        for e in Entry.objects.filter(transfer=transfer, wallet=org_wallet).select_related("pocket")
    ) == [(in_days(20), -150), (NEVER, -50)]
    assert ledger_problems() == []


def test_a_run_replayed_for_the_same_period_moves_nothing_more(org, two):
    a, b = two
    schedule = make_schedule(org, amount=100, recipients="selected", members=[a, b])
    run_schedule(schedule.pk, today=date(2026, 1, 1))
    before = ledger_snapshot()
    run_schedule(schedule.pk, today=date(2026, 1, 15))
    assert ledger_snapshot() == before
    assert ledger_problems() == []


def test_an_allocation_larger_than_every_pocket_together_is_skipped_and_nothing_moves(org, two):
    a, b = two
    schedule = make_schedule(org, amount=126, recipients="selected", members=[a, b])
    before = ledger_snapshot()
    run_schedule(schedule.pk, today=date(2026, 1, 1))
    run = ScheduleRun.objects.get(schedule=schedule)
    assert (run.status, run.shortfall) == (RunStatus.SKIPPED, 2)
    assert ledger_snapshot() == before
    assert ledger_problems() == []


def test_the_unused_credits_go_back_with_their_days(org, two):
    a, b = two
    schedule = make_schedule(org, amount=100, recipients="selected", members=[a, b], return_unused=True)
    run_schedule(schedule.pk, today=date(2026, 1, 1))
    member_charge_usage(org=org, membership_id=a.pk, amount=30, description="job")  # from a's 20-day credits
    fund(org, 1_000)  # February's allocation must not take the returned credits' place in this check
    run_due(today=date(2026, 2, 1))
    jan = ScheduleRun.objects.get(schedule=schedule, period_start=date(2026, 1, 1))
    assert (jan.return_state, jan.returned_credits) == (ReturnState.RETURNED, 170)
    org_wallet = Wallet.objects.for_org(org)
    credited = sorted(
        (e.pocket.expires_on, e.amount)
        for e in Entry.objects.filter(transfer=jan.return_transfer, wallet=org_wallet).select_related("pocket")
    )
    assert credited == [(in_days(20), 120), (NEVER, 50)]
    debited = sorted(
        (e.wallet_id, e.pocket.expires_on, e.amount)
        for e in Entry.objects.filter(transfer=jan.return_transfer, amount__lt=0).select_related("pocket")
    )
    wa, wb = Wallet.objects.for_user(a.user).pk, Wallet.objects.for_user(b.user).pk
    assert debited == sorted([(wa, in_days(20), -70), (wb, in_days(20), -50), (wb, NEVER, -50)])
    # February's allocation went out soonest-first again: the returned 20-day credits first.
    feb = ScheduleRun.objects.get(schedule=schedule, period_start=date(2026, 2, 1))
    assert feb.status == RunStatus.APPLIED
    assert _mine(a) == {in_days(20): 100}
    assert _mine(b) == {in_days(20): 20, NEVER: 80}
    assert ledger_problems() == []


def test_top_up_counts_every_pocket_of_the_member_whatever_its_day(org, two):
    a, _b = two
    ct = CreditType.objects.get(slug="org-allocated")
    org_transfer_to_member(org=org, membership_id=a.pk, credit_type=ct, amount=160)  # 150 of 20 days, 10 never
    assert _mine(a) == {in_days(20): 150, NEVER: 10}
    topup = make_schedule(org, amount=200, mode="top_up", recipients="selected", members=[a])
    run_schedule(topup.pk, today=date(2026, 1, 1))
    run = ScheduleRun.objects.get(schedule=topup)
    assert (run.status, run.members, run.credits) == (RunStatus.APPLIED, 1, 40)
    assert _mine(a) == {in_days(20): 150, NEVER: 50}
    assert ledger_problems() == []
