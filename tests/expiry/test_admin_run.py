"""Staff run the daily expiry on demand from Django admin (Credit expiry > Expiry notices > Run expiry now)."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tests.expiry.helpers import days_pass, expired_total, grant
from tests.factories import UserFactory, fund, ledger_snapshot
from wallets.models import Transfer, TransferKind
from wallets.selectors import ledger_problems

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

RUN = reverse("admin:expiry_expirynotice_run")
CHANGELIST = reverse("admin:expiry_expirynotice_changelist")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser():
    user = UserFactory(email="staff@example.com", is_staff=True)
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    return user


@pytest.fixture
def due(org):
    """300 Promo credits whose day has come, beside 500 that never expire and 200 that expire later."""
    fund(org, 500)
    grant(org, 300, days=2)
    grant(org, 200, days=9)
    days_pass(2)
    return org


def test_run_page_shows_what_is_due_then_expires_it_once(superuser, due):
    client = _client(superuser)
    listing = client.get(CHANGELIST)
    assert f'href="{RUN}">Run expiry now</a>' in listing.content.decode()

    page = client.get(RUN)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Due now: <strong>300 credits ($3.00)</strong> in 1\npocket of 1 org." in text
    assert 'value="Expire due credits now">' in text  # enabled

    done = client.post(RUN, follow=True)
    assert done.redirect_chain == [(RUN, 302)]
    text = done.content.decode()
    assert "Expired 300 credits ($3.00) in 1 pocket of 1 org (1 Expiry transfer) for " in text
    assert "Nothing is due to expire" in text  # the page after the run
    assert expired_total(due) == 300
    assert Transfer.objects.filter(kind=TransferKind.EXPIRY).count() == 1

    # A second click (or a second member of staff) moves nothing more.
    before = ledger_snapshot()
    again = client.post(RUN, follow=True)
    assert "Nothing was due to expire on or before" in again.content.decode()
    assert ledger_snapshot() == before
    assert ledger_problems() == []


def test_with_nothing_due_the_button_is_disabled_and_a_post_moves_nothing(superuser, org):
    fund(org, 500)
    grant(org, 200, days=9)
    client = _client(superuser)
    text = client.get(RUN).content.decode()
    assert "Nothing is due to expire on or before" in text
    assert 'value="Expire due credits now" disabled>' in text
    before = ledger_snapshot()
    assert "Nothing was due" in client.post(RUN, follow=True).content.decode()
    assert ledger_snapshot() == before


def test_staff_without_the_permission_to_add_transfers_cannot_run_it(due):
    plain = UserFactory(email="plain-staff@example.com", is_staff=True)
    plain.user_permissions.add(Permission.objects.get(codename="view_expirynotice"))
    client = _client(plain)
    assert "Run expiry now" not in client.get(CHANGELIST).content.decode()
    before = ledger_snapshot()
    assert client.get(RUN).status_code == 403
    assert client.post(RUN).status_code == 403
    assert ledger_snapshot() == before

    # Given the permission to add ledger transfers, the same person can.
    plain.user_permissions.add(Permission.objects.get(codename="add_transfer", content_type__app_label="wallets"))
    client = _client(UserFactory._meta.model.objects.get(pk=plain.pk))  # permissions are cached per user object
    assert client.post(RUN).status_code == 302
    assert expired_total(due) == 300


def test_signed_out_and_members_are_sent_to_the_admin_sign_in(due, owner):
    before = ledger_snapshot()
    for client in (Client(), _client(owner)):
        response = client.post(RUN)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert ledger_snapshot() == before
