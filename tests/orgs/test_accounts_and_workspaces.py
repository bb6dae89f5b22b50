"""Sign up, sign in with email, sign out, and the workspace switcher."""

import pytest
from django.urls import reverse

from orgs.middleware import SESSION_KEY
from tests.factories import MembershipFactory, UserFactory
from wallets.models import Wallet

pytestmark = pytest.mark.django_db


def test_sign_up_creates_user_with_default_wallet_and_signs_in(client):
    response = client.post(
        reverse("signup"), {"name": "Ada", "email": "Ada@Example.com", "password": "a-long-unusual-passphrase"}
    )
    assert response.status_code == 302
    wallet = Wallet.objects.get(user__email="ada@example.com")
    assert wallet.name == "Default wallet"
    assert client.get(reverse("wallet")).status_code == 200


def test_sign_up_with_taken_email_does_not_say_whose_it_is(client):
    UserFactory(email="taken@example.com")
    response = client.post(reverse("signup"), {"email": "taken@example.com", "password": "a-long-unusual-passphrase"})
    assert response.status_code == 200
    assert "Could not create an account with this email" in response.content.decode()


def test_sign_in_with_email_and_password_then_sign_out(client):
    UserFactory(email="sam@example.com", password="pw-correct-horse-battery")
    response = client.post(reverse("login"), {"username": "sam@example.com", "password": "pw-correct-horse-battery"})
    assert response.status_code == 302
    assert client.get(reverse("wallet")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("wallet")).status_code == 302


def test_wrong_password_gets_a_clear_error(client):
    UserFactory(email="sam@example.com")
    response = client.post(reverse("login"), {"username": "sam@example.com", "password": "nope"})
    assert "do not match an account" in response.content.decode()


def test_workspace_switcher_lists_orgs_and_switches(client, org, owner):
    client.force_login(owner)
    html = client.get(reverse("wallet")).content.decode()
    assert 'aria-label="Switch workspace"' in html
    assert ">Personal<" in html.replace("\n", "") or "Personal" in html
    assert org.name in html
    response = client.post(reverse("workspace_switch"), {"workspace": org.slug})
    assert response.status_code == 302
    assert response.url == reverse("billing:page", args=[org.slug])
    assert client.session[SESSION_KEY] == org.pk
    html = client.get(reverse("wallet")).content.decode()
    assert f'<span class="switcher-name">{org.name}</span>' in html
    assert reverse("billing:page", args=[org.slug]) in html  # sidebar shows Billing to the owner
    client.post(reverse("workspace_switch"), {"workspace": "personal"})
    assert SESSION_KEY not in client.session


def test_an_org_page_shows_that_org_as_the_workspace_without_touching_the_session(client, org, other_org, owner):
    """A link straight to an org's page (an email, a bookmark) shows that org in the switcher; a GET never
    rewrites the session, so only the switcher changes the workspace other pages use."""
    MembershipFactory(org=other_org, user=owner, role="admin")
    client.force_login(owner)
    client.post(reverse("workspace_switch"), {"workspace": other_org.slug})
    html = client.get(reverse("billing:page", args=[org.slug])).content.decode()
    assert f'<span class="switcher-name">{org.name}</span>' in html
    assert client.session[SESSION_KEY] == other_org.pk
    html = client.get(reverse("wallet")).content.decode()
    assert f'<span class="switcher-name">{other_org.name}</span>' in html


def test_an_org_page_of_an_org_you_left_does_not_become_the_workspace(client, org, other_org):
    outsider = MembershipFactory(org=other_org, role="admin").user
    client.force_login(outsider)
    assert client.get(reverse("billing:page", args=[org.slug])).status_code == 404
    html = client.get(reverse("wallet")).content.decode()
    assert '<span class="switcher-name">Personal</span>' in html


def test_member_switching_lands_on_wallet_without_billing_link(client, org, member_membership):
    client.force_login(member_membership.user)
    response = client.post(reverse("workspace_switch"), {"workspace": org.slug})
    assert response.url == reverse("wallet")
    html = client.get(reverse("wallet")).content.decode()
    assert reverse("billing:page", args=[org.slug]) not in html


def test_switching_to_an_org_you_are_not_in_is_404(client, org, other_org):
    outsider = MembershipFactory(org=other_org).user
    client.force_login(outsider)
    assert client.post(reverse("workspace_switch"), {"workspace": org.slug}).status_code == 404


def test_switch_requires_csrf(org, owner):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(owner)
    assert csrf_client.post(reverse("workspace_switch"), {"workspace": org.slug}).status_code == 403


def test_wallet_page_shows_balance_by_type_and_funding_org(client, funded_org, member_membership):
    from wallets.models import CreditType
    from wallets.services import org_transfer_to_member

    org_transfer_to_member(
        org=funded_org,
        membership_id=member_membership.pk,
        credit_type=CreditType.objects.get(slug="org-allocated"),
        amount=321,
        memo="For the demo",
    )
    client.force_login(member_membership.user)
    html = client.get(reverse("wallet")).content.decode()
    assert 'aria-labelledby="wallet-heading"' in html
    assert ">321<" in html
    assert funded_org.name in html
    assert "For the demo" in html


def test_createsuperuser_users_get_a_default_wallet_too():
    from django.core.management import call_command

    call_command("createsuperuser", email="root@example.com", interactive=False, verbosity=0)
    assert Wallet.objects.filter(user__email="root@example.com", kind="user").count() == 1
