"""Exactly one email per crossing under real concurrency (PostgreSQL, threads with their own connections), and
the real task worker (database queue) end to end."""

import io
import signal

import pytest
from django.core import mail
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from alerts.evaluation import evaluate
from alerts.models import AlertRule, AlertState
from alerts.services import save_org_rules
from tests.concurrency import race, split
from tests.factories import MembershipFactory, UserFactory, fund
from wallets.models import BalanceWatch, CreditType, Wallet
from wallets.selectors import ledger_problems, wallet_balance
from wallets.services import org_transfer_to_member

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_concurrent_movements_crossing_at_once_send_one_email_per_admin(org, owner):
    fund(org, 1_000)
    MembershipFactory(org=org, role="admin", user=UserFactory(email="admin@example.com"))
    members = [MembershipFactory(org=org) for _ in range(20)]
    ct = CreditType.objects.get(slug="org-allocated")
    save_org_rules(org=org, thresholds={None: 950, ct: 900}, actor=owner)

    results, errors = split(
        race(20, lambda i: org_transfer_to_member(org=org, membership_id=members[i].pk, credit_type=ct, amount=10))
    )
    assert errors == [] and len(results) == 20
    assert wallet_balance(Wallet.objects.for_org(org)).total == 800  # every rule crossed, by one movement each
    # Two rules crossed (the total at 950, Org-allocated at 900): one email per rule to each owner/admin.
    assert sorted(m.to[0] for m in mail.outbox) == ["admin@example.com"] * 2 + ["owner@example.com"] * 2
    assert set(AlertRule.objects.values_list("state", flat=True)) == {AlertState.FIRED}
    assert ledger_problems() == []


def test_twenty_concurrent_evaluations_of_one_crossing_send_one_email(org, owner):
    """Signals can arrive many times at once (two movements, retries): the row lock lets one decide."""
    fund(org, 100)
    rule = AlertRule.objects.create(org=org, wallet=Wallet.objects.for_org(org), threshold=500)
    results, errors = split(race(20, lambda i: evaluate(rule.pk)))
    assert errors == []
    assert sum(r.emails for r in results) == 1 and [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert AlertRule.objects.get(pk=rule.pk).state == AlertState.FIRED


@pytest.fixture
def database_queue(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _run_worker() -> None:
    call_command("db_worker", batch=True, reload=False, startup_delay=False, interval=0, stdout=io.StringIO())


def test_the_real_worker_evaluates_then_sends(database_queue, org, owner):
    fund(org, 1_000)
    member = MembershipFactory(org=org)
    ct = CreditType.objects.get(slug="org-allocated")
    save_org_rules(org=org, thresholds={None: 500}, actor=owner)
    _run_worker()  # the evaluation on save: above, armed, nothing to send
    assert mail.outbox == [] and AlertRule.objects.get(org=org).last_balance == 1_000

    org_transfer_to_member(org=org, membership_id=member.pk, credit_type=ct, amount=600)
    assert mail.outbox == []  # the request only queued the alert task
    queued = DBTaskResult.objects.filter(status="READY").values_list("task_path", flat=True)
    assert list(queued) == ["alerts.tasks.evaluate_alert"]
    _run_worker()
    _run_worker()  # the emails the evaluation queued (if the first batch did not already take them)
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert "below 500 credits" in mail.outbox[0].subject
    assert not DBTaskResult.objects.exclude(status="SUCCESSFUL").exists()


def test_two_admins_saving_the_same_thresholds_at_once_make_one_rule_and_one_email(org, owner):
    """A double click or two admins: one rule per (wallet, credit type), one watch, one email (the threshold is
    above the balance, so the first save fires it; the others find it unchanged)."""
    fund(org, 100)
    admins = [owner] + [MembershipFactory(org=org, role="admin").user for _ in range(2)]
    ct = CreditType.objects.get(slug="org-allocated")
    results, errors = split(
        race(10, lambda i: save_org_rules(org=org, thresholds={None: 1_000, ct: 500}, actor=admins[i % 3]))
    )
    assert errors == [] and len(results) == 10
    assert AlertRule.objects.count() == 2
    assert BalanceWatch.objects.filter(purpose="alert").count() == 2
    assert len(mail.outbox) == 2 * 3  # two rules fired once each, to each of the three owner/admins
