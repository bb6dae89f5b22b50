"""Bulk transfer service: one transfer, one debit, one credit per member, all or nothing."""

import pytest

from orgs.models import MembershipStatus
from tests.factories import MembershipFactory, bulk_members, ledger_snapshot
from wallets.errors import InsufficientCredits, MemberNotActive
from wallets.models import CreditType, Entry, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance
from wallets.services import org_bulk_transfer

pytestmark = pytest.mark.django_db


@pytest.fixture
def ct():
    return CreditType.objects.get(slug="org-allocated")


def test_bulk_to_all_members_is_one_transfer_with_one_debit(funded_org, ct):
    bulk_members(funded_org, 30)
    transfer = org_bulk_transfer(
        org=funded_org, credit_type=ct, amount_per_member=100, memo="Monthly allocation"
    ).transfer
    assert transfer.kind == TransferKind.BULK_TRANSFER
    entries = Entry.objects.filter(transfer_id=transfer.pk)
    assert entries.filter(amount__lt=0).count() == 1
    assert entries.filter(amount=100).count() == 31  # 30 members + the owner
    assert wallet_balance(Wallet.objects.for_org(funded_org)).total == 10_000 - 3_100
    assert ledger_problems() == []


def test_bulk_to_selected_members(funded_org, ct):
    a, b, _c = (MembershipFactory(org=funded_org) for _ in range(3))
    org_bulk_transfer(org=funded_org, credit_type=ct, amount_per_member=7, membership_ids=[a.pk, b.pk])
    assert wallet_balance(Wallet.objects.for_user(a.user)).total == 7
    assert wallet_balance(Wallet.objects.for_user(_c.user)).total == 0


def test_bulk_blocked_when_org_holds_less_than_total(funded_org, ct):
    bulk_members(funded_org, 9)  # 10 with the owner
    before = ledger_snapshot()
    with pytest.raises(InsufficientCredits) as exc:
        org_bulk_transfer(org=funded_org, credit_type=ct, amount_per_member=1_001)
    assert exc.value.shortfall == 10
    assert ledger_snapshot() == before


def test_bulk_with_a_removed_or_foreign_member_moves_nothing(funded_org, other_org, ct):
    a = MembershipFactory(org=funded_org)
    removed = MembershipFactory(org=funded_org)
    removed.status = MembershipStatus.REMOVED
    removed.save()
    foreign = MembershipFactory(org=other_org)
    before = ledger_snapshot()
    for ids in ([a.pk, removed.pk], [a.pk, foreign.pk]):
        with pytest.raises(MemberNotActive):
            org_bulk_transfer(org=funded_org, credit_type=ct, amount_per_member=1, membership_ids=ids)
    assert ledger_snapshot() == before
