"""Running schedules: add / top-up amounts, recipients at run time, can't-afford skips, catch-up, returns."""

from datetime import date, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from members.services import member_remove
from orgs.models import Membership
from schedules.models import ReturnState, RunStatus, Schedule, ScheduleRun
from schedules.services import (
    MAX_CATCH_UP,
    allocation_fingerprint,
    allocation_key,
    run_due,
    run_schedule,
    schedule_pause,
    schedule_resume,
)
from tests.factories import MembershipFactory, fund, ledger_snapshot
from tests.schedules.helpers import make_schedule
from wallets.models import CreditType, Pocket, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems

pytestmark = pytest.mark.django_db


def funded_balance(membership) -> int:
    return sum(
        Pocket.objects.filter(
            wallet__user=membership.user, funding_org=membership.org, credit_type__slug="org-allocated"
        ).values_list("balance", flat=True)
    )


def org_balance(org) -> int:
    return sum(Pocket.objects.filter(wallet=Wallet.objects.for_org(org)).values_list("balance", flat=True))


def owner_membership(org):
    return Membership.objects.get(org=org, role="owner")


def test_add_gives_n_to_every_active_member_in_one_transfer(org):
    fund(org, 10_000)
    a, b = MembershipFactory(org=org), MembershipFactory(org=org, role="manager")
    schedule = make_schedule(org, amount=100)
    report = run_schedule(schedule.pk, today=date(2026, 1, 1))
    assert report.applied == 1
    run = ScheduleRun.objects.get(schedule=schedule)
    assert (run.status, run.members, run.credits, run.period_start) == (RunStatus.APPLIED, 3, 300, date(2026, 1, 1))
    transfer = Transfer.objects.get(kind=TransferKind.SCHEDULED_ALLOCATION)
    assert transfer.idempotency_key == allocation_key(schedule.pk, date(2026, 1, 1))
    assert transfer.entries.count() == 4  # one debit, one credit per member
    assert [funded_balance(m) for m in (a, b, owner_membership(org))] == [100, 100, 100]
    assert org_balance(org) == 10_000 - 300
    schedule.refresh_from_db()
    assert schedule.next_period_start == date(2026, 2, 1)
    assert schedule.last_run == run
    assert not ledger_problems()


def test_top_up_gives_only_the_gap_under_the_membership_locks(org):
    fund(org, 10_000)
    low, full = MembershipFactory(org=org), MembershipFactory(org=org)
    make_schedule(org, amount=70, name="seed", recipients="selected", members=[low, full], cadence="weekly")
    run_schedule(Schedule.objects.get(name="seed").pk, today=date(2026, 1, 1))  # both now hold 70
    extra = make_schedule(org, amount=80, name="extra", recipients="selected", members=[full])
    run_schedule(extra.pk, today=date(2026, 1, 1))  # full holds 150
    topup = make_schedule(org, amount=100, mode="top_up", name="top up", recipients="role", role="member")
    run_schedule(topup.pk, today=date(2026, 1, 1))
    run = ScheduleRun.objects.get(schedule=topup)
    assert (run.members, run.credits) == (1, 30)
    assert (funded_balance(low), funded_balance(full)) == (100, 150)
    # Nobody is below 100 any more: the next period has nothing to do, and nothing moves.
    before = ledger_snapshot()
    run_schedule(topup.pk, today=date(2026, 2, 1))
    assert ScheduleRun.objects.get(schedule=topup, period_start=date(2026, 2, 1)).status == RunStatus.NOTHING
    assert ledger_snapshot() == before


def test_members_who_joined_after_the_period_started_are_included_removed_ones_are_not(org):
    fund(org, 10_000)
    stays = MembershipFactory(org=org)
    leaves = MembershipFactory(org=org)
    schedule = make_schedule(org, amount=10, start_date=date(2026, 1, 1))
    member_remove(org=org, membership_id=leaves.pk, actor=None)
    late = MembershipFactory(org=org)
    assert late.joined_at.date() > date(2026, 1, 1)  # joined after the period started
    run_schedule(schedule.pk, today=date(2026, 1, 5))  # the run is late; recipients are read at run time
    assert funded_balance(stays) == 10 and funded_balance(late) == 10
    assert funded_balance(leaves) == 0
    assert ScheduleRun.objects.get(schedule=schedule).members == 3  # owner, stays, late


def test_selected_members_removed_since_are_dropped_at_run_time(org):
    fund(org, 1_000)
    keep, gone = MembershipFactory(org=org), MembershipFactory(org=org)
    schedule = make_schedule(org, amount=5, recipients="selected", members=[keep, gone])
    member_remove(org=org, membership_id=gone.pk, actor=None)
    run_schedule(schedule.pk, today=date(2026, 1, 1))
    assert (funded_balance(keep), funded_balance(gone)) == (5, 0)


def test_a_run_the_org_cannot_afford_is_skipped_nothing_moves_and_admins_are_emailed(
    org, owner, django_capture_on_commit_callbacks
):
    fund(org, 250)
    MembershipFactory(org=org, role="admin", user__email="admin-sched@example.com")
    MembershipFactory(org=org)
    schedule = make_schedule(org, amount=100)  # 3 members x 100 = 300 > 250
    before, balance = ledger_snapshot(), org_balance(org)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        report = run_schedule(schedule.pk, today=date(2026, 1, 1))
    assert report.skipped == 1
    run = ScheduleRun.objects.get(schedule=schedule)
    assert (run.status, run.shortfall, run.transfer) == (RunStatus.SKIPPED, 50, None)
    assert ledger_snapshot() == before and org_balance(org) == balance == 250
    assert not ledger_problems()
    assert len(mail.outbox) == 1
    assert set(mail.outbox[0].to) == {owner.email, "admin-sched@example.com"}
    assert "skipped" in mail.outbox[0].subject and "50 credits" in mail.outbox[0].body
    schedule.refresh_from_db()
    assert schedule.next_period_start == date(2026, 2, 1)  # skipped means done for this period


def test_running_again_for_the_same_period_applies_it_once(org):
    fund(org, 10_000)
    MembershipFactory(org=org)
    schedule = make_schedule(org, amount=10)
    for _ in range(3):
        run_schedule(schedule.pk, today=date(2026, 1, 15))
        run_due(today=date(2026, 1, 15))
    assert Transfer.objects.filter(kind=TransferKind.SCHEDULED_ALLOCATION).count() == 1
    assert ScheduleRun.objects.filter(schedule=schedule).count() == 1


def test_a_run_row_already_there_only_advances(org):
    """A period whose run committed (e.g. a worker that crashed after its commit) is not applied again even
    if next_period_start were stale."""
    fund(org, 10_000)
    schedule = make_schedule(org, amount=10)
    run_schedule(schedule.pk, today=date(2026, 1, 1))
    Schedule.objects.filter(pk=schedule.pk).update(next_period_start=date(2026, 1, 1))  # stale pointer
    run_schedule(schedule.pk, today=date(2026, 1, 1))
    assert Transfer.objects.filter(kind=TransferKind.SCHEDULED_ALLOCATION).count() == 1
    schedule.refresh_from_db()
    assert schedule.next_period_start == date(2026, 2, 1)


def test_missed_periods_are_each_caught_up_once_bounded_per_pass(org):
    fund(org, 100_000)
    schedule = make_schedule(org, amount=10, cadence="weekly", start_date=date(2026, 1, 1))
    today = date(2026, 1, 1) + timedelta(weeks=20)  # 21 periods due
    run_schedule(schedule.pk, today=today)
    assert ScheduleRun.objects.filter(schedule=schedule).count() == MAX_CATCH_UP
    run_schedule(schedule.pk, today=today)
    run_schedule(schedule.pk, today=today)
    starts = list(
        ScheduleRun.objects.filter(schedule=schedule).order_by("period_start").values_list("period_start", flat=True)
    )
    assert starts == [date(2026, 1, 1) + timedelta(weeks=k) for k in range(21)]
    assert Transfer.objects.filter(kind=TransferKind.SCHEDULED_ALLOCATION).count() == 21


def test_end_date_stops_the_schedule(org):
    fund(org, 10_000)
    schedule = make_schedule(org, amount=10, start_date=date(2026, 1, 1), end_date=date(2026, 2, 15))
    run_schedule(schedule.pk, today=date(2026, 6, 1))
    assert ScheduleRun.objects.filter(schedule=schedule).count() == 2  # Jan 1 and Feb 1
    schedule.refresh_from_db()
    assert schedule.next_period_start is None


def test_paused_schedules_do_not_run_and_resume_does_not_catch_up(org):
    fund(org, 10_000)
    schedule = make_schedule(org, amount=10)
    schedule_pause(schedule)
    run_due(today=date(2026, 3, 1))
    assert not ScheduleRun.objects.exists()
    schedule_resume(schedule, today=date(2026, 3, 10))
    schedule.refresh_from_db()
    assert schedule.next_period_start == date(2026, 4, 1)


def test_unused_credits_return_at_period_end(org):
    fund(org, 10_000)
    spender, saver = MembershipFactory(org=org), MembershipFactory(org=org)
    schedule = make_schedule(org, amount=100, return_unused=True, recipients="selected", members=[spender, saver])
    run_schedule(schedule.pk, today=date(2026, 1, 1))
    # the spender uses 60 of the 100 (usage charge); the saver keeps it all
    from wallets.services import member_charge_usage

    member_charge_usage(org=org, membership_id=spender.pk, amount=60, description="job")
    run_schedule(schedule.pk, today=date(2026, 1, 20))  # period not over: nothing returns
    assert not Transfer.objects.filter(kind=TransferKind.SCHEDULED_RETURN).exists()
    run_due(today=date(2026, 2, 1))  # period over: return January's unused, then February's allocation
    ret = Transfer.objects.get(kind=TransferKind.SCHEDULED_RETURN)
    assert ret.amount == 40 + 100
    jan = ScheduleRun.objects.get(schedule=schedule, period_start=date(2026, 1, 1))
    assert (jan.return_state, jan.returned_credits) == (ReturnState.RETURNED, 140)
    assert (funded_balance(spender), funded_balance(saver)) == (100, 100)  # February's allocation only
    run_due(today=date(2026, 2, 1))
    assert Transfer.objects.filter(kind=TransferKind.SCHEDULED_RETURN).count() == 1
    assert not ledger_problems()


def test_the_periodic_task_is_registered():
    from core.periodic import registered

    assert any(p.name == "schedules.tasks.run_due_schedules" and p.every_seconds == 60 for p in registered())


def test_credit_type_used_is_the_schedules(org):
    fund(org, 1_000)
    schedule = make_schedule(org, amount=1)
    run_schedule(
        schedule.pk, today=timezone.localdate() if schedule.start_date > timezone.localdate() else date(2026, 1, 1)
    )
    ct = CreditType.objects.get(slug="org-allocated")
    assert set(
        Transfer.objects.get(kind=TransferKind.SCHEDULED_ALLOCATION).entries.values_list("credit_type_id", flat=True)
    ) == {ct.pk}


def test_a_transfer_already_posted_under_the_period_key_is_replayed_not_moved_again(org):
    """The ledger's key is the last backstop: if the period's transfer exists (the run row lost, say), the run
    replays it and records it; credits do not move twice."""
    from wallets.ledger import Leg, post_transfer

    fund(org, 1_000)
    member = MembershipFactory(org=org)
    schedule = make_schedule(org, amount=10, recipients="selected", members=[member])
    ct = CreditType.objects.get(slug="org-allocated")
    first = post_transfer(
        kind=TransferKind.SCHEDULED_ALLOCATION,
        org=org,
        idempotency_key=allocation_key(schedule.pk, date(2026, 1, 1)),
        fingerprint=allocation_fingerprint(schedule.pk, date(2026, 1, 1)),
        legs=[
            Leg(Wallet.objects.for_org(org).pk, ct.pk, -10),
            Leg(Wallet.objects.for_user(member.user).pk, ct.pk, 10, org.pk),
        ],
    ).transfer
    run_schedule(schedule.pk, today=date(2026, 1, 1))
    run = ScheduleRun.objects.get(schedule=schedule)
    assert run.transfer_id == first.pk and run.status == RunStatus.APPLIED
    assert Transfer.objects.filter(kind=TransferKind.SCHEDULED_ALLOCATION).count() == 1
    assert funded_balance(member) == 10
    assert not ledger_problems()


def test_a_paused_schedules_due_return_is_still_made(org):
    fund(org, 1_000)
    member = MembershipFactory(org=org)
    schedule = make_schedule(org, amount=30, return_unused=True, recipients="selected", members=[member])
    run_schedule(schedule.pk, today=date(2026, 1, 1))
    schedule_pause(schedule)
    run_due(today=date(2026, 2, 1))
    assert Transfer.objects.get(kind=TransferKind.SCHEDULED_RETURN).amount == 30
    assert funded_balance(member) == 0
    assert ScheduleRun.objects.count() == 1  # no February allocation while paused


def test_a_crash_midway_rolls_the_period_back_and_the_next_pass_applies_it_once(org, monkeypatch):
    """The worker dies after the transfer was posted but before the run row is written: the transfer rolls back
    with it (one transaction), and the next pass applies the period once."""
    fund(org, 1_000)
    MembershipFactory(org=org)
    schedule = make_schedule(org, amount=10)
    before = ledger_snapshot()

    def crash(self, *args, **kwargs):
        raise RuntimeError("worker killed")

    with monkeypatch.context() as m:
        m.setattr(ScheduleRun, "save", crash)
        with pytest.raises(RuntimeError):
            run_schedule(schedule.pk, today=date(2026, 1, 1))
    assert ledger_snapshot() == before
    schedule.refresh_from_db()
    assert schedule.next_period_start == date(2026, 1, 1) and not ScheduleRun.objects.exists()
    run_schedule(schedule.pk, today=date(2026, 1, 3))
    run_schedule(schedule.pk, today=date(2026, 1, 3))
    assert Transfer.objects.filter(kind=TransferKind.SCHEDULED_ALLOCATION).count() == 1
    assert ScheduleRun.objects.get().period_start == date(2026, 1, 1)
    assert not ledger_problems()
