"""Auto top-up on the real task queue (django-tasks-db) and its worker: a crossing only enqueues a task (the
movement's path stays as it was), the worker charges once, and a declined card's retry waits in the queue with
run_after = the try + 1 hour."""

import io
import signal
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from purchases import auto_top_up
from purchases.models import TopUpAttempt, TopUpStatus
from tests.factories import MembershipFactory, fund
from tests.purchases.stripe_fixtures import standin_fixture  # noqa: F401
from tests.purchases.test_auto_top_up import DECLINES, configure, save_card, spend, top_up_credits
from wallets.signals import transfer_posted
from wallets.watches import _on_transfer_posted

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("standin")]

TASK = "purchases.auto_top_up.check_auto_top_up"


@pytest.fixture
def database_queue(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def run_worker():
    call_command("db_worker", batch=True, reload=False, startup_delay=False, interval=0, stdout=io.StringIO())


@pytest.fixture
def member(org):
    return MembershipFactory(org=org, role="member")


@pytest.fixture
def owner_client(owner):
    c = Client()
    c.force_login(owner)
    return c


def test_a_crossing_enqueues_one_task_and_the_worker_tops_up(org, owner, owner_client, member, database_queue):
    fund(org, 3_000)
    save_card(owner_client, org)
    assert configure(owner_client, org).status_code == 302
    run_worker()  # the check the settings save enqueued: above the threshold, nothing to do
    assert not TopUpAttempt.objects.exists()
    spend(org, member, 1)  # the member's first credits create their pocket: not what is measured
    with CaptureQueriesContext(connection) as crossing:
        spend(org, member, 2_499)  # 2,999 -> 500
    transfer_posted.disconnect(dispatch_uid="wallets.watches")
    try:
        with CaptureQueriesContext(connection) as plain:
            spend(org, member, 100)  # the same movement without balance watches
    finally:
        transfer_posted.connect(_on_transfer_posted, dispatch_uid="wallets.watches")
    sql = [q["sql"] for q in crossing.captured_queries]
    commit = sql.index("COMMIT")
    # The movement itself: at most the watches' one detection query more than without watches; after its
    # commit, auto top-up's receiver adds exactly one INSERT (the task), nothing else (no Stripe, no email).
    assert commit + 1 <= len(plain.captured_queries) + 1, sql
    after = sql[commit + 1 :]
    assert len(after) == 1 and after[0].startswith('INSERT INTO "django_tasks_database_dbtaskresult"'), after
    assert DBTaskResult.objects.filter(task_path=TASK, status="READY").count() == 1
    assert not TopUpAttempt.objects.exists()  # nothing charged inline
    run_worker()
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.SUCCEEDED and top_up_credits(org) == attempt.credits == 4_600


def test_a_declined_retry_waits_in_the_queue_for_one_hour(org, owner, owner_client, member, database_queue):
    fund(org, 3_000)
    save_card(owner_client, org, DECLINES)
    configure(owner_client, org)
    spend(org, member, 2_500)
    run_worker()
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.DECLINED
    waiting = DBTaskResult.objects.filter(task_path=TASK, status="READY").get()
    assert waiting.run_after == attempt.created_at + timedelta(hours=1) == attempt.next_retry_at
    run_worker()  # not due: the worker leaves it
    assert TopUpAttempt.objects.count() == 1
    DBTaskResult.objects.filter(pk=waiting.pk).update(run_after=attempt.created_at)  # an hour passes
    # The retry runs at its time (run_check compares with the clock; move the try back an hour instead).
    TopUpAttempt.objects.filter(pk=attempt.pk).update(next_retry_at=attempt.created_at)
    run_worker()
    assert list(TopUpAttempt.objects.order_by("try_number").values_list("try_number", "status")) == [
        (1, TopUpStatus.DECLINED),
        (2, TopUpStatus.DECLINED),
    ]
    second = TopUpAttempt.objects.get(try_number=2)
    assert second.next_retry_at == second.created_at + timedelta(hours=6)
    assert DBTaskResult.objects.filter(task_path=TASK, status="READY", run_after=second.next_retry_at).count() == 1
    assert top_up_credits(org) == 0
    assert auto_top_up.run_check(org.pk) == "retry not due"
