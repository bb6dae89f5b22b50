"""Real concurrency on PostgreSQL: removals racing transfers, double accepts, seats racing for the last seat."""

import threading
import time

import pytest
from django.db import transaction

from members import services as svc
from orgs.models import Invitation, InvitationStatus, MemberDefaults, Membership, MembershipStatus
from tests.concurrency import race_all, split
from tests.factories import MembershipFactory, UserFactory, fund
from wallets.errors import MemberNotActive
from wallets.models import CreditType, Pocket, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance
from wallets.services import org_bulk_transfer, org_transfer_to_member

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _org_total(org):
    return wallet_balance(Wallet.objects.for_org(org)).total


def _left_behind(org, user):
    return sum(Pocket.objects.filter(wallet__user=user, funding_org=org).values_list("balance", flat=True))


def test_remove_while_a_transfer_is_in_flight_returns_its_credits(org, owner):
    """The transfer holds the membership lock and has moved credits but not committed; the removal waits,
    then returns those credits too."""
    fund(org, 1_000)
    member = MembershipFactory(org=org)
    ct = CreditType.objects.get(slug="org-allocated")
    moved = threading.Event()

    def slow_transfer():
        with transaction.atomic():
            t = org_transfer_to_member(org=org, membership_id=member.pk, credit_type=ct, amount=300)
            moved.set()
            time.sleep(0.5)
        return t

    def remove():
        moved.wait(5)
        return svc.member_remove(org=org, membership_id=member.pk, actor=owner)

    results, errors = split(race_all([slow_transfer, remove]))
    assert errors == []
    removal = next(r for r in results if isinstance(r, svc.Removal))
    assert removal.returned == 300
    assert _left_behind(org, member.user) == 0
    assert _org_total(org) == 1_000
    assert ledger_problems() == []


@pytest.mark.parametrize("round_", range(3))
def test_remove_racing_many_transfers_never_leaves_credits_behind_or_overdraws(org, owner, round_):
    fund(org, 1_000)
    member = MembershipFactory(org=org)
    ct = CreditType.objects.get(slug="org-allocated")
    transfers = [
        (lambda: org_transfer_to_member(org=org, membership_id=member.pk, credit_type=ct, amount=150)) for _ in range(6)
    ]
    bulk = [lambda: org_bulk_transfer(org=org, credit_type=ct, amount_per_member=10, membership_ids=[member.pk])]
    remove = [lambda: svc.member_remove(org=org, membership_id=member.pk, actor=owner)]
    results, errors = split(race_all(transfers[:3] + remove + transfers[3:] + bulk))
    assert all(isinstance(e, (MemberNotActive,)) or "Not enough" in str(e) for e in errors), errors
    assert sum(1 for r in results if isinstance(r, svc.Removal)) == 1
    assert Membership.objects.get(pk=member.pk).status == MembershipStatus.REMOVED
    assert _left_behind(org, member.user) == 0  # whatever landed before the removal went back
    assert _org_total(org) == 1_000
    assert ledger_problems() == []
    assert Transfer.objects.filter(kind=TransferKind.RETURN).count() <= 1


def test_two_accepts_of_one_invitation_join_once_and_move_credits_once(org, owner):
    fund(org, 1_000)
    MemberDefaults.objects.create(
        org=org, default_credit_allocation=100, auto_assign_seats=True, seat_assignment_credits=200
    )
    org.seats = 5
    org.save()
    inv = svc.invitation_create(org=org, email="new@example.com", role="member", credit_allocation=50, actor=owner)
    user = UserFactory(email="new@example.com")

    results, errors = split(
        race_all([lambda: svc.invitation_accept(invitation_id=inv.pk, user=user) for _ in range(4)])
    )
    assert errors == []
    assert sum(1 for r in results if not r.replayed) == 1
    assert Membership.objects.filter(org=org, user=user).count() == 1
    assert wallet_balance(Wallet.objects.for_user(user)).total == 350
    assert _org_total(org) == 650
    assert Transfer.objects.filter(org=org, kind=TransferKind.INVITE_ALLOCATION).count() == 1
    assert Transfer.objects.filter(org=org, kind=TransferKind.DEFAULT_ALLOCATION).count() == 1
    assert Transfer.objects.filter(org=org, kind=TransferKind.SEAT_CREDITS).count() == 1
    assert Invitation.objects.get(pk=inv.pk).status == InvitationStatus.ACCEPTED
    assert ledger_problems() == []


def test_seat_assignments_racing_for_two_seats_give_out_exactly_two(org, owner):
    fund(org, 10_000)
    MemberDefaults.objects.create(org=org, seat_assignment_credits=100)
    org.seats = 2
    org.save()
    members = [MembershipFactory(org=org) for _ in range(6)]
    results, errors = split(
        race_all([(lambda m=m: svc.seat_assign(org=org, membership_id=m.pk, actor=owner)) for m in members])
    )
    assert len(results) == 2 and len(errors) == 4
    assert all(isinstance(e, svc.NoFreeSeat) for e in errors)
    assert svc.seats_used(org) == 2
    assert _org_total(org) == 9_800
    assert ledger_problems() == []


@pytest.mark.parametrize("locked", [True, False], ids=["membership-locked", "control-without-lock"])
def test_transfer_checked_before_a_removal_lands_before_the_return_only_with_the_lock(org, owner, monkeypatch, locked):
    """A transfer has checked the member is active and is about to move credits when the removal starts.
    With the membership row lock the removal waits and returns those credits. The control drops that lock
    and shows the race is real: the credits land on a removed member and are left behind."""
    from wallets import services

    fund(org, 1_000)
    member = MembershipFactory(org=org)
    ct = CreditType.objects.get(slug="org-allocated")
    checked, removed = threading.Event(), threading.Event()
    real = services._lock_member_wallets  # org_transfer_to_member's lock: the membership row, plus wallet ids

    def lock_then_pause(*, org, membership_id):
        if locked:
            ids = real(org=org, membership_id=membership_id)
        else:
            from wallets.models import Wallet

            m = Membership.objects.select_related("user").get(pk=membership_id, status=MembershipStatus.ACTIVE)
            ids = (Wallet.objects.for_org(org).pk, Wallet.objects.for_user(m.user).pk)
        checked.set()
        removed.wait(1.5)  # with the lock, the removal cannot finish, so this times out and the transfer goes on
        return ids

    monkeypatch.setattr(services, "_lock_member_wallets", lock_then_pause)

    def transfer():
        return org_transfer_to_member(org=org, membership_id=member.pk, credit_type=ct, amount=300)

    def remove():
        checked.wait(5)
        try:
            return svc.member_remove(org=org, membership_id=member.pk, actor=owner)
        finally:
            removed.set()

    results, errors = split(race_all([transfer, remove]))
    assert errors == []
    removal = next(r for r in results if isinstance(r, svc.Removal))
    assert removal.returned == (300 if locked else 0)
    if locked:
        assert _left_behind(org, member.user) == 0
        assert _org_total(org) == 1_000
    else:
        assert _left_behind(org, member.user) == 300  # the race the lock prevents
        assert _org_total(org) == 700
    assert ledger_problems() == []
