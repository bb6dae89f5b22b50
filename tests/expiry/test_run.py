"""The daily expiry run (expiry.services.run_expiry): org wallets and members lose what expired, once."""

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from core.periodic import registered
from expiry.services import InvalidExpiryDay, run_expiry
from expiry.tasks import expire_due_credits
from tests.expiry.helpers import balances, days_pass, expired_total, give, grant, in_days
from tests.factories import MembershipFactory, OrgFactory, fund, ledger_snapshot
from wallets.models import NEVER, Entry, ExternalCode, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_org_wallet_credits_expire_on_their_day_and_the_rest_stay(org):
    fund(org, 500)  # never expires
    grant(org, 300, days=2)
    grant(org, 200, days=5)
    days_pass(2)
    today = timezone.localdate()
    wallet = Wallet.objects.for_org(org)

    run = run_expiry()

    assert (run.orgs, run.pockets, run.credits, run.transfers, run.busy) == (1, 1, 300, 1, 0)
    assert balances(wallet) == {("org-allocated", None, NEVER): 500, ("promo", None, in_days(3)): 200}
    transfer = Transfer.objects.get(kind=TransferKind.EXPIRY)
    assert transfer.org == org and transfer.amount == 300
    assert transfer.idempotency_key.startswith(f"expiry:{today:%Y-%m-%d}:")
    expired = Wallet.objects.external(ExternalCode.EXPIRED)
    [into] = Entry.objects.filter(transfer=transfer, amount__gt=0)
    assert (into.wallet, into.pocket.funding_org, into.pocket.expires_on, into.amount) == (expired, org, NEVER, 300)
    assert expired_total(org) == 300
    assert ledger_problems() == []


def test_a_member_loses_the_expiring_credits_handed_over_on_the_day(org):
    grant(org, 100, days=3)
    grant(org, 100, days=10)
    member = MembershipFactory(org=org)
    give(org, member, 150)  # the soonest first: 100 expiring in 3 days, 50 in 10 days
    member_wallet = Wallet.objects.for_user(member.user)
    assert balances(member_wallet) == {("promo", org.pk, in_days(3)): 100, ("promo", org.pk, in_days(10)): 50}

    days_pass(2)
    assert run_expiry().pockets == 0  # due tomorrow: nothing yet
    days_pass(1)
    run = run_expiry()

    assert (run.pockets, run.credits, run.transfers) == (1, 100, 1)
    assert balances(member_wallet) == {("promo", org.pk, in_days(7)): 50}
    assert balances(Wallet.objects.for_org(org)) == {("promo", None, in_days(7)): 50}
    assert expired_total(org) == 100
    assert ledger_problems() == []


def test_one_transfer_per_org_takes_org_and_member_pockets_together(org, other_org):
    grant(org, 100, days=1)
    members = [MembershipFactory(org=org) for _ in range(3)]
    for m in members:
        give(org, m, 20)
    grant(other_org, 70, days=1)
    days_pass(1)

    run = run_expiry()

    assert (run.orgs, run.pockets, run.credits, run.transfers) == (2, 5, 170, 2)
    by_org = dict(Transfer.objects.filter(kind=TransferKind.EXPIRY).values_list("org_id", "amount"))
    assert by_org == {org.pk: 100, other_org.pk: 70}
    mine = Transfer.objects.get(kind=TransferKind.EXPIRY, org=org)
    assert mine.entries.filter(amount__lt=0).count() == 4  # the org wallet's pocket and the three members'
    assert (expired_total(org), expired_total(other_org)) == (100, 70)
    assert ledger_problems() == []


def test_a_second_run_the_same_day_is_a_no_op(org):
    grant(org, 100, days=1)
    days_pass(1)
    first = run_expiry()
    before = ledger_snapshot()

    second = run_expiry()

    assert first.credits == 100 and (second.orgs, second.pockets, second.credits, second.transfers) == (0, 0, 0, 0)
    assert ledger_snapshot() == before
    assert Transfer.objects.filter(kind=TransferKind.EXPIRY).count() == 1


def test_a_past_day_catches_up_and_leaves_what_is_due_later(org):
    grant(org, 100, days=1)
    grant(org, 40, days=3)
    days_pass(3)  # one expired two days ago, the other today

    run = run_expiry(timezone.localdate() - datetime.timedelta(days=2))

    assert run.credits == 100
    assert balances(Wallet.objects.for_org(org)) == {("promo", None, timezone.localdate()): 40}
    assert run_expiry().credits == 40
    assert ledger_problems() == []


@pytest.mark.parametrize("day", [1, 30])
def test_a_day_in_the_future_is_refused_and_nothing_moves(org, day):
    grant(org, 100, days=1)
    before = ledger_snapshot()

    with pytest.raises(InvalidExpiryDay, match="after today"):
        run_expiry(in_days(day))

    assert ledger_snapshot() == before


def test_a_datetime_is_not_a_day(org):
    with pytest.raises(InvalidExpiryDay, match="YYYY-MM-DD"):
        run_expiry(datetime.datetime.now())


def test_personal_credits_and_never_expiring_pockets_are_left_alone(org):
    fund(org, 100)
    member = MembershipFactory(org=org)
    give(org, member, 60, credit_type="org-allocated")
    before = ledger_snapshot()

    assert run_expiry().pockets == 0
    assert ledger_snapshot() == before


def test_batches_of_pockets_each_expire_once(org, monkeypatch):
    monkeypatch.setattr("expiry.services.BATCH", 2)
    grant(org, 500, days=1)
    members = [MembershipFactory(org=org) for _ in range(4)]
    for m in members:
        give(org, m, 10)
    days_pass(1)

    run = run_expiry()

    assert (run.orgs, run.pockets, run.credits, run.transfers) == (1, 5, 500, 3)  # 2 + 2 + 1 pockets
    keys = list(Transfer.objects.filter(kind=TransferKind.EXPIRY).values_list("idempotency_key", flat=True))
    assert len(set(keys)) == 3
    assert expired_total(org) == 500 and run_expiry().transfers == 0
    assert ledger_problems() == []


def test_the_periodic_task_expires_what_is_due(org):
    grant(org, 100, days=1)
    days_pass(1)

    result = expire_due_credits.enqueue().return_value

    assert result["credits"] == 100 and result["day"] == timezone.localdate().isoformat()
    assert expired_total(org) == 100


def test_the_periodic_tasks_are_registered():
    names = {p.name for p in registered()}
    assert {"expiry.tasks.expire_due_credits", "expiry.tasks.announce_expiring_credits"} <= names


def test_the_command_expires_and_reports(org):
    grant(org, 1_234, days=1)
    days_pass(1)
    out = StringIO()

    call_command("expire_credits", stdout=out)

    assert "Expired 1,234 credits in 1 pockets of 1 orgs (1 transfers)" in out.getvalue()
    assert expired_total(org) == 1_234


def test_the_command_takes_a_past_day_and_refuses_a_future_or_bad_one(org):
    grant(org, 10, days=1)
    days_pass(2)
    before = ledger_snapshot()
    with pytest.raises(CommandError, match="after today"):
        call_command("expire_credits", "--day", in_days(1).isoformat(), stdout=StringIO())
    with pytest.raises(CommandError, match="not a date"):
        call_command("expire_credits", "--day", "yesterday", stdout=StringIO())
    assert ledger_snapshot() == before

    out = StringIO()
    call_command("expire_credits", "--day", in_days(-1).isoformat(), stdout=out)
    assert "Expired 10 credits" in out.getvalue() and expired_total(org) == 10


def test_many_orgs_many_pockets_in_one_run():
    orgs = [OrgFactory() for _ in range(3)]
    for org in orgs:
        grant(org, 90, days=1)
        for m in [MembershipFactory(org=org) for _ in range(3)]:
            give(org, m, 30)
    days_pass(1)

    run = run_expiry()

    assert (run.orgs, run.pockets, run.credits, run.transfers) == (3, 9, 270, 3)  # org wallet pockets are empty
    assert ledger_problems() == []
