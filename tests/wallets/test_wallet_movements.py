"""The Wallet page's movements: a member's own Default wallet, newest first, keyset-paginated."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import MembershipFactory
from wallets.models import CreditType, Entry, Wallet
from wallets.selectors import wallet_entries_page
from wallets.services import org_transfer_to_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_member(funded_org):
    member = MembershipFactory(org=funded_org)
    ct = CreditType.objects.get(slug="org-allocated")
    for i in range(30):
        org_transfer_to_member(org=funded_org, membership_id=member.pk, credit_type=ct, amount=i + 1, memo=f"m{i + 1}")
    return member


def test_pages_cover_every_entry_once_stable_under_inserts(paid_member, funded_org):
    wallet = Wallet.objects.for_user(paid_member.user)
    first = wallet_entries_page(wallet, limit=25)
    assert [e.amount for e in first.entries][:3] == [30, 29, 28]
    ct = CreditType.objects.get(slug="org-allocated")
    org_transfer_to_member(org=funded_org, membership_id=paid_member.pk, credit_type=ct, amount=500)
    second = wallet_entries_page(wallet, before=first.older, limit=25)
    assert [e.amount for e in second.entries] == [5, 4, 3, 2, 1] and second.older is None


def test_member_sees_own_movements_paginated_with_htmx_and_plain_links(client, paid_member):
    client.force_login(paid_member.user)
    html = client.get(reverse("wallet")).content.decode()
    assert html.count('<td data-label="Date"><time') == 25 and ">m30<" in html and ">m5<" not in html
    older = Entry.objects.filter(wallet__user=paid_member.user).order_by("-id")[24].pk
    assert f'rel="next" href="/wallet/?before={older}"' in html
    partial = client.get(
        reverse("wallet") + f"?before={older}", headers={"HX-Request": "true", "HX-Target": "movements"}
    ).content.decode()
    assert (
        "<html" not in partial
        and partial.count('<td data-label="Date"><time') == 5
        and ">m5<" in partial
        and 'rel="next"' not in partial
    )


def test_kind_filter_and_malformed_values(client, paid_member):
    client.force_login(paid_member.user)
    assert client.get(reverse("wallet") + "?kind=purchase").content.decode().count('<td data-label="Date"><time') == 0
    assert "No transactions of this kind." in client.get(reverse("wallet") + "?kind=purchase").content.decode()
    for bad, message in (("?kind=heist", "is not a kind of transaction"), ("?before=abc", "page link is not valid")):
        response = client.get(reverse("wallet") + bad)
        assert response.status_code == 200
        html = response.content.decode()
        assert message in html and html.count('<td data-label="Date"><time') == 25


def test_only_my_own_wallet(client, paid_member, funded_org):
    other = MembershipFactory(org=funded_org)
    client.force_login(other.user)
    assert "No credits yet." in client.get(reverse("wallet")).content.decode()


def test_wallet_page_query_count_is_flat(client, paid_member, funded_org):
    client.force_login(paid_member.user)
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("wallet"))
    ct = CreditType.objects.get(slug="org-allocated")
    for _ in range(40):
        org_transfer_to_member(org=funded_org, membership_id=paid_member.pk, credit_type=ct, amount=1)
    with CaptureQueriesContext(connection) as large:
        html = client.get(reverse("wallet")).content.decode()
    older = html[html.index("?before=") : html.index('"', html.index("?before="))]
    with CaptureQueriesContext(connection) as deep:
        client.get(reverse("wallet") + older)
    # 10, plus one for the credits held by open holds (templates/wallets/_held.html, holds.selectors: one sum)
    assert len(small) == len(large) == len(deep) <= 11
