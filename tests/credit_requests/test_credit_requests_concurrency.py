"""Real concurrency on PostgreSQL: admins race on one credit request; exactly one decision, at most one transfer."""

import threading

import pytest

from credit_requests.models import CreditRequest, CreditRequestStatus
from credit_requests.services import (
    MAX_PENDING_REQUESTS_PER_MEMBER,
    RequestAlreadyDecided,
    TooManyPendingRequests,
    credit_request_approve,
    credit_request_create,
    credit_request_reject,
)
from tests.concurrency import race_all, split
from tests.factories import MembershipFactory, fund
from wallets.models import Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def setup(org, owner):
    fund(org, 10_000)
    admin = MembershipFactory(org=org, role="admin").user
    member = MembershipFactory(org=org)
    req = credit_request_create(org=org, user=member.user, amount=500, reason="race").request
    return org, owner, admin, member, req


def test_two_admins_approving_at_once_pay_once(setup):
    org, owner, admin, member, req = setup
    results, errors = split(
        race_all(
            [
                lambda: credit_request_approve(org=org, request_id=req.pk, actor=owner, amount=500),
                lambda: credit_request_approve(org=org, request_id=req.pk, actor=admin, amount=300),
            ]
        )
    )
    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], RequestAlreadyDecided)
    req.refresh_from_db()
    assert req.status == CreditRequestStatus.APPROVED
    assert Transfer.objects.filter(kind=TransferKind.REQUEST_APPROVAL).count() == 1
    assert wallet_balance(Wallet.objects.for_user(member.user)).total == req.granted_amount
    assert wallet_balance(Wallet.objects.for_org(org)).total == 10_000 - req.granted_amount
    assert ledger_problems() == []


def test_many_admins_approving_at_once_pay_once(setup):
    org, _owner, admin, member, req = setup
    results, errors = split(
        race_all(
            [lambda: credit_request_approve(org=org, request_id=req.pk, actor=admin, amount=400) for _ in range(6)]
        )
    )
    assert len(results) == 1 and len(errors) == 5
    assert all(isinstance(e, RequestAlreadyDecided) for e in errors)
    assert Transfer.objects.filter(kind=TransferKind.REQUEST_APPROVAL).count() == 1
    assert wallet_balance(Wallet.objects.for_user(member.user)).total == 400
    assert ledger_problems() == []


def test_approve_and_reject_at_once_make_exactly_one_decision(setup):
    org, owner, admin, member, req = setup
    results, errors = split(
        race_all(
            [
                lambda: credit_request_approve(org=org, request_id=req.pk, actor=owner),
                lambda: credit_request_reject(org=org, request_id=req.pk, actor=admin, reason="No"),
            ]
        )
    )
    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], RequestAlreadyDecided)
    req.refresh_from_db()
    transfers = Transfer.objects.filter(kind=TransferKind.REQUEST_APPROVAL).count()
    if req.status == CreditRequestStatus.APPROVED:
        assert transfers == 1 and req.transfer_id is not None
        assert wallet_balance(Wallet.objects.for_user(member.user)).total == 500
    else:
        assert req.status == CreditRequestStatus.REJECTED
        assert transfers == 0 and req.transfer_id is None
        assert wallet_balance(Wallet.objects.for_user(member.user)).total == 0
    assert ledger_problems() == []


def test_parallel_submits_never_exceed_three_pending(org):
    member = MembershipFactory(org=org)
    results, errors = split(
        race_all(
            [
                lambda: credit_request_create(org=org, user=member.user, amount=10, reason="burst").request
                for _ in range(6)
            ]
        )
    )
    assert len(results) == MAX_PENDING_REQUESTS_PER_MEMBER
    assert all(isinstance(e, TooManyPendingRequests) for e in errors) and len(errors) == 3
    assert CreditRequest.objects.filter(membership=member, status="pending").count() == 3


def test_control_without_the_request_lock_both_admins_decide(setup, monkeypatch):
    """Control: with the row lock replaced by a plain read, both approvals 'succeed' (the race is real).

    Only the ledger's idempotency key (`request:<id>`) keeps it to one transfer; the lock is what makes
    the second admin see a clear "already approved" instead of a silent double decision.
    """
    import credit_requests.services as requests_module

    org, owner, admin, member, req = setup
    both_read = threading.Barrier(2)

    def unlocked_read(*, org, request_id):
        row = CreditRequest.objects.select_related("membership", "requester").get(pk=request_id, org=org)
        both_read.wait(timeout=10)
        return row

    monkeypatch.setattr(requests_module, "_lock_request", unlocked_read)
    results, errors = split(
        race_all(
            [
                lambda: credit_request_approve(org=org, request_id=req.pk, actor=owner),
                lambda: credit_request_approve(org=org, request_id=req.pk, actor=admin),
            ]
        )
    )
    assert errors == [] and len(results) == 2  # two decisions: the race the lock prevents
    assert Transfer.objects.filter(kind=TransferKind.REQUEST_APPROVAL).count() == 1  # the key's backstop
    assert wallet_balance(Wallet.objects.for_user(member.user)).total == 500
