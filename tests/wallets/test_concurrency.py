"""Real concurrency on PostgreSQL: threads with their own connections race on one org wallet."""

import pytest

from tests.concurrency import race, split
from tests.factories import MembershipFactory, fund
from wallets.errors import InsufficientCredits
from wallets.models import CreditType, Transfer, Wallet
from wallets.selectors import ledger_problems, wallet_balance
from wallets.services import org_transfer_to_member

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_transfers_never_overdraw_the_org_wallet(org):
    fund(org, 1_000)
    members = [MembershipFactory(org=org) for _ in range(4)]
    ct = CreditType.objects.get(slug="org-allocated")

    results, errors = split(
        race(
            8,
            lambda i: org_transfer_to_member(org=org, membership_id=members[i % 4].pk, credit_type=ct, amount=300),
        )
    )
    assert len(results) == 3  # 3 × 300 fits in 1,000; a fourth would overdraw
    assert len(errors) == 5
    assert all(isinstance(e, InsufficientCredits) for e in errors)
    assert wallet_balance(Wallet.objects.for_org(org)).total == 100
    assert ledger_problems() == []


def test_concurrent_posts_with_one_idempotency_key_move_once(org):
    fund(org, 1_000)
    member = MembershipFactory(org=org)
    ct = CreditType.objects.get(slug="org-allocated")

    results, errors = split(
        race(
            10,
            lambda i: org_transfer_to_member(
                org=org, membership_id=member.pk, credit_type=ct, amount=100, idempotency_key="double-click"
            ),
        )
    )
    assert errors == []
    assert len({t.transfer.pk for t in results}) == 1
    assert sum(1 for t in results if not t.replayed) == 1
    assert Transfer.objects.filter(idempotency_key="double-click").count() == 1
    assert wallet_balance(Wallet.objects.for_org(org)).total == 900
    assert ledger_problems() == []
