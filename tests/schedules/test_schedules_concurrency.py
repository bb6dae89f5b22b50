"""Exactly once with real concurrency on PostgreSQL: 20 schedulers for one period apply it once, and the
real task worker (database queue) runs the periodic task."""

import io
import signal
from datetime import date

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from schedules.models import RunStatus, ScheduleRun
from schedules.services import run_due
from schedules.tasks import run_due_schedules
from tests.concurrency import race_all
from tests.factories import bulk_members, fund
from tests.schedules.helpers import make_schedule
from wallets.models import Transfer, TransferKind
from wallets.selectors import ledger_problems

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_concurrent_schedulers_apply_one_period_once(org):
    fund(org, 100_000)
    bulk_members(org, 50)
    schedule = make_schedule(org, amount=7)
    other = make_schedule(org, amount=3, name="weekly", cadence="weekly")
    results = race_all([lambda: run_due(today=date(2026, 1, 1)) for _ in range(20)])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.applied for r in results) == 2  # one period of each schedule, by whichever scheduler got it
    allocations = Transfer.objects.filter(kind=TransferKind.SCHEDULED_ALLOCATION)
    assert allocations.count() == 2
    assert sorted(allocations.values_list("amount", flat=True)) == [51 * 3, 51 * 7]
    assert ScheduleRun.objects.filter(schedule=schedule).count() == 1
    assert ScheduleRun.objects.filter(schedule=other).count() == 1
    assert not ledger_problems()


def test_twenty_concurrent_schedulers_catching_up_apply_each_missed_period_once(org):
    fund(org, 100_000)
    bulk_members(org, 10)
    schedule = make_schedule(org, amount=5, cadence="every_n_days", every_days=3, start_date=date(2026, 1, 1))
    results = race_all([lambda: run_due(today=date(2026, 1, 10)) for _ in range(20)])  # Jan 1, 4, 7 and 10 are due
    assert not [r for r in results if isinstance(r, Exception)], results
    runs = ScheduleRun.objects.filter(schedule=schedule)
    assert sorted(runs.values_list("period_start", flat=True)) == [date(2026, 1, d) for d in (1, 4, 7, 10)]
    assert all(r.status == RunStatus.APPLIED for r in runs)
    assert Transfer.objects.filter(kind=TransferKind.SCHEDULED_ALLOCATION).count() == 4
    assert not ledger_problems()


@pytest.fixture
def database_queue(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_the_real_worker_runs_the_periodic_task_once_per_period(org, database_queue):
    fund(org, 1_000)
    today = timezone.localdate()
    schedule = make_schedule(org, amount=9, cadence="weekly", start_date=today, today=today)
    run_due_schedules.enqueue()
    run_due_schedules.enqueue()  # the clock enqueued it twice (two clocks, or a slow worker)
    assert DBTaskResult.objects.filter(status="READY").count() == 2
    call_command("db_worker", batch=True, reload=False, startup_delay=False, interval=0, stdout=io.StringIO())
    results = list(DBTaskResult.objects.order_by("enqueued_at"))
    assert [r.status for r in results] == ["SUCCESSFUL", "SUCCESSFUL"]
    assert [r.return_value["applied"] for r in results] == [1, 0]
    run = ScheduleRun.objects.get(schedule=schedule)
    assert (run.status, run.period_start, run.credits) == (RunStatus.APPLIED, today, 9)
    assert Transfer.objects.filter(kind=TransferKind.SCHEDULED_ALLOCATION).count() == 1
