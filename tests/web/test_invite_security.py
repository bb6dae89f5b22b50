"""The invitation page: a new address proves it by email before an account is made; joining an org that owes
credits; nothing partial when joining fails."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from members import services as svc
from orgs.models import Invitation, InvitationStatus, MemberDefaults, Membership, User
from tests.factories import UserFactory, fund, ledger_snapshot
from tests.members.helpers import PASSWORD, ask_for_link, invite_path, join_by_email
from wallets.models import OutstandingBalance, Wallet
from wallets.selectors import wallet_balance
from web.views.accounts import signup_token

pytestmark = pytest.mark.django_db


def _invite(org, owner, email="new@example.com", **kwargs):
    return svc.invitation_create(org=org, email=email, role="member", actor=owner, **kwargs)


# ---------------------------------------------------------------- the address is proved by email


def test_whoever_opens_the_link_cannot_create_the_invitees_account(
    client, org, owner, mailoutbox, django_capture_on_commit_callbacks
):
    """An admin (or anyone the link reached) posts a name and a password of their choosing: no account is
    made and nobody is signed in; the only effect is an email to the invited address."""
    inv = _invite(org, owner, email="victim@example.com")
    path = invite_path(inv)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(path, {"name": "Not the victim", "password": "admin-chosen-passphrase"})
    assert response.status_code == 200 and "Check your inbox" in response.content.decode()
    assert not User.objects.filter(email="victim@example.com").exists()
    assert not Membership.objects.filter(org=org, user__email="victim@example.com").exists()
    assert "_auth_user_id" not in client.session
    [message] = mailoutbox
    assert message.to == ["victim@example.com"] and "?confirm=" in message.body
    assert Invitation.objects.get(pk=inv.pk).status == InvitationStatus.PENDING


def test_only_the_emailed_link_lets_the_invitee_choose_a_password_and_join(
    client, funded_org, owner, mailoutbox, django_capture_on_commit_callbacks
):
    inv = _invite(funded_org, owner, credit_allocation=40)
    path = invite_path(inv)
    link = ask_for_link(client, path, django_capture_on_commit_callbacks, mailoutbox, name="Ada")
    page = client.get(link)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Create account and join" in html and 'value="Ada"' in html and 'value="new@example.com"' in html

    response = client.post(link, {"name": "Ada L", "password": PASSWORD})
    assert response.status_code == 302 and response.url == reverse("wallet")
    user = User.objects.get(email="new@example.com")
    assert user.name == "Ada L" and user.check_password(PASSWORD)
    assert Membership.objects.filter(org=funded_org, user=user, status="active").exists()
    assert wallet_balance(Wallet.objects.for_user(user)).total == 40
    assert int(client.session["_auth_user_id"]) == user.pk

    # The link works once: opened again (signed out), it says the invitation was used and to sign in.
    client.logout()
    before = ledger_snapshot()
    again = client.post(link, {"name": "Mallory", "password": "another-long-passphrase"})
    assert again.status_code == 400 and "already been used" in again.content.decode()
    assert "sign in" in again.content.decode().lower()
    assert User.objects.filter(email="new@example.com").count() == 1
    assert User.objects.get(email="new@example.com").check_password(PASSWORD)
    assert ledger_snapshot() == before


@pytest.mark.parametrize("forged", ["plain sign-up", "other invitation", "other address", "tampered", "garbage"])
def test_a_confirm_link_not_made_for_this_invitation_creates_nothing(client, org, owner, forged):
    inv = _invite(org, owner)
    other = _invite(org, owner, email="other@example.com")
    token = {
        "plain sign-up": signup_token(email="new@example.com"),
        "other invitation": signup_token(email="new@example.com", invitation=other.pk),
        "other address": signup_token(email="other@example.com", invitation=inv.pk),
        "tampered": signup_token(email="new@example.com", invitation=inv.pk)[:-3] + "AAA",
        "garbage": "not-a-token",
    }[forged]
    link = invite_path(inv) + "?" + f"confirm={token}"
    assert client.get(link).status_code == 400
    response = client.post(link, {"name": "X", "password": PASSWORD})
    assert response.status_code == 400
    assert not User.objects.filter(email__in=["new@example.com", "other@example.com"]).exists()
    assert not Membership.objects.filter(org=org).exclude(user=owner).exists()


def test_a_known_address_still_signs_in_to_join_and_gets_no_email(
    client, org, owner, mailoutbox, django_capture_on_commit_callbacks
):
    UserFactory(email="known@example.com", password="pw-correct-horse-battery")
    inv = _invite(org, owner, email="known@example.com")
    mailoutbox.clear()
    path = invite_path(inv)
    assert "Sign in and join" in client.get(path).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(path, {"password": "admin-guess"}).status_code == 400
    assert not Membership.objects.filter(org=org, user__email="known@example.com").exists()
    assert mailoutbox == []
    assert client.post(path, {"password": "pw-correct-horse-battery"}).status_code == 302
    assert Membership.objects.filter(org=org, user__email="known@example.com").exists()


def test_the_emailed_link_after_the_invitation_was_cancelled_creates_nothing(
    client, org, owner, mailoutbox, django_capture_on_commit_callbacks
):
    inv = _invite(org, owner)
    link = ask_for_link(client, invite_path(inv), django_capture_on_commit_callbacks, mailoutbox)
    svc.invitation_cancel(org=org, invitation_id=inv.pk, actor=owner)
    response = client.post(link, {"password": PASSWORD})
    assert response.status_code == 400 and "cancelled" in response.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()


# ---------------------------------------------------------------- an org that owes credits


def _owing_org(org, *, owes=500):
    """An org that holds credits but owes some after a refund or dispute, with every kind of welcome credit on."""
    fund(org, 10_000)
    OutstandingBalance.objects.create(org=org, credits=owes)
    MemberDefaults.objects.create(
        org=org, default_credit_allocation=100, auto_assign_seats=True, seat_assignment_credits=200
    )
    org.seats = 5
    org.save()
    return org


def _assert_joined_without_credits_and_admins_told(client, org, owner, email, response, before):
    assert response.status_code == 302 and response.url == reverse("wallet")
    membership = Membership.objects.get(org=org, user__email=email)
    assert membership.status == "active" and not membership.has_seat
    assert ledger_snapshot() == before  # nothing moved: the org owes credits
    assert "owes 500 credits" in membership.notice
    assert Invitation.objects.get(org=org, email=email).status == InvitationStatus.ACCEPTED
    # The joiner is welcomed, and not told the org's billing state.
    wallet = client.get(response.url).content.decode()
    flash = re.search(r'<div class="flash" role="status">.*?</div>', wallet, re.S).group(0)
    assert "Welcome to" in flash and "could not be given yet" in flash
    assert "owes" not in flash and "refund" not in flash and "500" not in flash
    # The admins see who needs attention, and why.
    admin = Client()
    admin.force_login(owner)
    members = admin.get(reverse("members:page", args=[org.slug])).content.decode()
    row = re.search(rf'<tr data-member="{re.escape(email)}">.*?</tr>', members, re.S).group(0)
    assert "Needs attention" in row and "owes 500 credits" in row


def test_a_new_person_joins_an_org_that_owes_credits_without_the_allocation(
    client, org, owner, mailoutbox, django_capture_on_commit_callbacks
):
    _owing_org(org)
    inv = _invite(org, owner, credit_allocation=20)
    before = ledger_snapshot()
    response = join_by_email(client, invite_path(inv), django_capture_on_commit_callbacks, mailoutbox, name="Nia")
    _assert_joined_without_credits_and_admins_told(client, org, owner, "new@example.com", response, before)


def test_a_known_person_signs_in_and_joins_an_org_that_owes_credits_without_the_allocation(client, org, owner):
    _owing_org(org)
    UserFactory(email="known@example.com", password="pw-correct-horse-battery")
    inv = _invite(org, owner, email="known@example.com", credit_allocation=20)
    before = ledger_snapshot()
    response = client.post(invite_path(inv), {"password": "pw-correct-horse-battery"})
    _assert_joined_without_credits_and_admins_told(client, org, owner, "known@example.com", response, before)


def test_when_joining_fails_no_account_is_left_behind(
    client, org, owner, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    """Account and membership are one transaction: a refusal while joining leaves no account without a membership."""
    inv = _invite(org, owner)
    link = ask_for_link(client, invite_path(inv), django_capture_on_commit_callbacks, mailoutbox)

    def refuse(**kwargs):
        raise svc.MemberError("Joining failed for a test.")

    monkeypatch.setattr(svc, "_welcome_credits", refuse)
    before = ledger_snapshot()
    response = client.post(link, {"name": "Orphan", "password": PASSWORD})
    assert response.status_code == 400 and "Joining failed for a test." in response.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()
    assert not Wallet.objects.filter(user__email="new@example.com").exists()
    assert Invitation.objects.get(pk=inv.pk).status == InvitationStatus.PENDING
    assert ledger_snapshot() == before
    assert "_auth_user_id" not in client.session
