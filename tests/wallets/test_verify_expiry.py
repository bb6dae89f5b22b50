"""verify_ledger's expiry checks (wallets/sql/problem_expiry_conserved.sql, problem_expired.sql).

The ledger primitive moves whatever legs a caller hands it, so a caller that forgot expiry (a transfer that
drops or changes the credits' day, credits sent to the Expired account by something other than the expiry run,
an expiry of credits before their day) writes a ledger the database accepts: these are the mistakes
verify_ledger must report. Each is written here through post_transfer itself, as such a caller would.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from expiry.services import run_expiry
from tests.expiry.helpers import days_pass, give, grant, in_days
from tests.factories import MembershipFactory, fund
from wallets.ledger import Leg, post_transfer
from wallets.models import NEVER, CreditType, ExternalCode, TransferKind, Wallet
from wallets.selectors import ledger_problems

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def promo():
    return CreditType.objects.get(slug="promo")


def _expiry_problems():
    return [p for p in ledger_problems() if p.kind == "expiry"]


def test_a_ledger_with_expiring_credits_handed_over_returned_and_expired_is_clean(org, promo):
    fund(org, 1_000)
    grant(org, 300, days=1)
    grant(org, 300, days=9)
    members = [MembershipFactory(org=org) for _ in range(3)]
    for m in members:
        give(org, m, 150)  # takes both days for the later members
    days_pass(1)
    run = run_expiry()
    assert run.credits == 300
    assert ledger_problems() == []
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "Ledger OK" in out.getvalue()


def test_an_internal_transfer_that_changes_the_credits_day_is_reported(org, promo):
    grant(org, 100, days=5)
    member = MembershipFactory(org=org)
    org_wallet, member_wallet = Wallet.objects.for_org(org), Wallet.objects.for_user(member.user)
    posted = post_transfer(
        kind=TransferKind.TRANSFER,
        org=org,
        legs=[
            Leg(org_wallet.pk, promo.pk, -40, None, False, in_days(5)),
            Leg(member_wallet.pk, promo.pk, 40, org.pk, False, NEVER),  # the day was dropped: credits made immortal
        ],
    )
    problems = _expiry_problems()
    days = sorted(p.detail for p in problems)
    assert len(problems) == 2, problems
    assert all(f"transfer {posted.transfer.pk}: credit type {promo.pk}" in d for d in days)
    assert any(f"expiring {in_days(5):%Y-%m-%d} sums to -40" in d for d in days)
    assert any("expiring 9999-12-31 sums to 40" in d for d in days)
    with pytest.raises(CommandError, match=r"\[expiry\] transfer"):
        call_command("verify_ledger")


def test_credits_sent_to_the_expired_account_by_something_else_are_reported(org, promo):
    grant(org, 100, days=5)
    expired = Wallet.objects.external(ExternalCode.EXPIRED)
    posted = post_transfer(
        kind=TransferKind.USAGE,
        org=org,
        legs=[
            Leg(Wallet.objects.for_org(org).pk, promo.pk, -10, None, False, in_days(5)),
            Leg(expired.pk, promo.pk, 10, org.pk, True),
        ],
    )
    [problem] = _expiry_problems()
    assert f"of transfer {posted.transfer.pk} (usage" in problem.detail
    assert "into Expired, but the transfer is not an Expiry" in problem.detail


def test_an_expiry_before_the_credits_day_is_reported(org, promo):
    grant(org, 100, days=5)
    expired = Wallet.objects.external(ExternalCode.EXPIRED)
    posted = post_transfer(
        kind=TransferKind.EXPIRY,
        org=org,
        legs=[
            Leg(Wallet.objects.for_org(org).pk, promo.pk, -100, None, False, in_days(5)),
            Leg(expired.pk, promo.pk, 100, org.pk, True),
        ],
    )
    [problem] = _expiry_problems()
    assert f"of transfer {posted.transfer.pk} (expiry, pocket expiring {in_days(5):%Y-%m-%d}" in problem.detail
    assert "took credits from a pocket before its expiry day" in problem.detail


def test_an_expiry_that_puts_credits_elsewhere_is_reported(org, promo):
    grant(org, 100, days=1)
    days_pass(1)
    usage = Wallet.objects.external(ExternalCode.USAGE)
    post_transfer(
        kind=TransferKind.EXPIRY,
        org=org,
        legs=[
            Leg(Wallet.objects.for_org(org).pk, promo.pk, -100, None, False, in_days(0)),
            Leg(usage.pk, promo.pk, 100, org.pk, True),
        ],
    )
    [problem] = _expiry_problems()
    assert "an Expiry put credits somewhere other than the Expired account" in problem.detail


def test_never_expiring_movements_raise_nothing(org, promo):
    fund(org, 500)
    member = MembershipFactory(org=org)
    give(org, member, 200, credit_type="org-allocated")
    assert _expiry_problems() == []
