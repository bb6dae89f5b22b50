"""Real threads on PostgreSQL: many sign-ups through one invitation at the same moment make one account,
join once and move the welcome credits once; every other request is told the invitation was used (sign in),
never a 500."""

import re

import pytest
from django.core import mail
from django.test import Client

from members import services as svc
from orgs.models import Invitation, InvitationStatus, MemberDefaults, Membership, User
from tests.concurrency import race, split
from tests.factories import fund
from tests.members.helpers import PASSWORD, confirm_link, invite_path
from wallets.models import Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

RACERS = 10


def _setup(org, owner):
    fund(org, 1_000)
    MemberDefaults.objects.create(org=org, default_credit_allocation=100)
    return svc.invitation_create(org=org, email="race@example.com", role="member", credit_allocation=50, actor=owner)


def test_ten_sign_ups_on_one_invitation_link_make_one_account_and_no_500(org, owner):
    inv = _setup(org, owner)
    path = invite_path(inv)
    mail.outbox.clear()
    assert Client().post(path, {"name": "Racer"}).status_code == 200  # "Email me a link": after commit, sent
    link = confirm_link(mail.outbox[-1])
    clients = [Client(raise_request_exception=False) for _ in range(RACERS)]
    for c in clients:
        assert c.get(link).status_code == 200  # everyone has the form open

    def submit(i):
        response = clients[i].post(link, {"name": f"Racer {i}", "password": PASSWORD})
        return response.status_code, response.content.decode()

    results, errors = split(race(RACERS, submit))
    assert errors == []
    statuses = sorted(status for status, _ in results)
    assert statuses == [302] + [400] * (RACERS - 1), statuses
    for status, html in results:
        if status == 400:
            message = re.search(r'role="alert">([^<]*)<', html).group(1)
            assert "already been used" in message and "sign in" in message, message
    user = User.objects.get(email="race@example.com")
    assert Membership.objects.filter(org=org, user=user).count() == 1
    assert Wallet.objects.filter(user=user).count() == 1
    assert wallet_balance(Wallet.objects.for_user(user)).total == 150  # 100 default + 50 invite, once each
    assert Transfer.objects.filter(org=org, kind=TransferKind.DEFAULT_ALLOCATION).count() == 1
    assert Transfer.objects.filter(org=org, kind=TransferKind.INVITE_ALLOCATION).count() == 1
    assert Invitation.objects.get(pk=inv.pk).status == InvitationStatus.ACCEPTED
    assert ledger_problems() == []


def test_the_service_racing_itself_creates_one_account(org, owner):
    inv = _setup(org, owner)

    def accept(i):
        return svc.invitation_accept_new_user(
            invitation_id=inv.pk, email="race@example.com", name=f"Racer {i}", password=PASSWORD
        )

    results, errors = split(race(RACERS, accept))
    assert len(results) == 1 and len(errors) == RACERS - 1
    assert all(isinstance(e, svc.InvitationUsed) for e in errors), errors
    assert User.objects.filter(email="race@example.com").count() == 1
    assert wallet_balance(Wallet.objects.for_user(results[0].membership.user)).total == 150
    assert ledger_problems() == []
