"""Emails as background tasks: queued in the database after commit, sent by the real worker, retried with
backoff, and a message that never goes out is left FAILED where staff can see it (Django admin)."""

import io
import signal

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from core.tasks import MAX_ATTEMPTS, RETRY_DELAYS, send_email
from tests.factories import UserFactory

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
BROKEN_MAILER = {"default": {"BACKEND": "tests.core.test_tasks.BrokenMailer"}}


class MailServerDown(Exception):
    pass


class BrokenMailer(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise MailServerDown("connection refused")


@pytest.fixture
def database_queue(settings):
    """The real backend (the suite runs tasks immediately); the worker's signal handlers are put back after."""
    settings.TASKS = DATABASE_QUEUE
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _run_worker() -> None:
    """What `manage.py db_worker` runs, in batch mode: every task that is due, then exit."""
    call_command("db_worker", batch=True, reload=False, startup_delay=False, interval=0, stdout=io.StringIO())


def _enqueue_after_commit(**message) -> None:
    with transaction.atomic():
        transaction.on_commit(lambda: send_email.enqueue(**message))


@pytest.mark.django_db(transaction=True)
def test_the_worker_sends_a_queued_email(database_queue):
    _enqueue_after_commit(subject="Hello", body="From the queue.\n", to=["ada@example.com"])
    [queued] = DBTaskResult.objects.all()
    assert queued.status == "READY" and queued.task_path == "core.tasks.send_email"
    assert mail.outbox == []  # nothing is sent by the process that enqueued it

    _run_worker()

    [message] = mail.outbox
    assert (message.subject, message.body, message.to) == ("Hello", "From the queue.\n", ["ada@example.com"])
    assert message.from_email == "Credits <credits@localhost>"
    queued.refresh_from_db()
    assert queued.status == "SUCCESSFUL" and queued.return_value == {"sent": True, "attempt": 1}


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_queues_nothing(database_queue):
    with pytest.raises(RuntimeError), transaction.atomic():
        transaction.on_commit(lambda: send_email.enqueue(subject="Never", body="", to=["ada@example.com"]))
        raise RuntimeError
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_failing_send_is_retried_with_backoff_then_left_failed_for_staff(database_queue, settings, client):
    settings.MAILERS = BROKEN_MAILER
    _enqueue_after_commit(subject="Invitation", body="Join us.", to=["bob@example.com"])

    [tried] = DBTaskResult.objects.all()
    for attempt in range(1, MAX_ATTEMPTS):
        before = timezone.now()
        _run_worker()  # this attempt fails; the next one waits, so the batch worker stops
        tried.refresh_from_db()
        assert tried.status == "SUCCESSFUL" and tried.return_value["sent"] is False
        assert "MailServerDown" in tried.return_value["error"]
        [retry] = DBTaskResult.objects.filter(status="READY")
        assert retry.args_kwargs["kwargs"]["attempt"] == attempt + 1
        assert str(retry.id) == tried.return_value["retry"]
        delay = RETRY_DELAYS[attempt - 1]
        assert before + delay <= retry.run_after <= timezone.now() + delay
        retry.run_after = timezone.now()  # time passes
        retry.save(update_fields=["run_after"])
        tried = retry

    _run_worker()  # the last attempt fails for good

    assert mail.outbox == []
    assert DBTaskResult.objects.count() == MAX_ATTEMPTS and not DBTaskResult.objects.filter(status="READY").exists()
    [failed] = DBTaskResult.objects.filter(status="FAILED")
    assert failed.args_kwargs["kwargs"]["attempt"] == MAX_ATTEMPTS
    assert failed.exception_class_path == "tests.core.test_tasks.MailServerDown"
    assert "connection refused" in failed.traceback

    staff = UserFactory(email="staff@example.com", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_dbtaskresult"))
    client.force_login(staff)
    changelist = reverse("admin:django_tasks_database_dbtaskresult_changelist")
    page = client.get(changelist, {"status__exact": "FAILED"})
    assert page.status_code == 200
    html = page.content.decode()
    assert str(failed.id) in html and "send_email" in html
    detail = client.get(reverse("admin:django_tasks_database_dbtaskresult_change", args=[failed.id]))
    assert detail.status_code == 200 and "connection refused" in detail.content.decode()


def test_without_a_queue_that_can_wait_a_failure_is_final(settings, caplog):
    """The immediate backend (tests, TASKS_BACKEND) cannot run a task later: no retry, the failure is logged."""
    settings.MAILERS = BROKEN_MAILER
    result = send_email.enqueue(subject="Now or never", body="", to=["ada@example.com"])
    assert result.status == "FAILED" and result.errors[0].exception_class_path.endswith("MailServerDown")
    assert "Could not send email 'Now or never'" in caplog.text and "giving up" in caplog.text
