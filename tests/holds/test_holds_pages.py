"""The member's wallet shows "N held" and the org's members list shows each member's held credits, at the
same query counts (the members list folds the held sum into its one member query)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from holds.services import capture_hold, create_hold
from tests.api.helpers import give
from tests.factories import MembershipFactory, fund

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(org):
    fund(org, 1_000)
    m = MembershipFactory(org=org)
    give(org, m, 500)
    return m


def test_wallet_shows_held_credits_and_they_leave_the_balance(client, org, member):
    client.force_login(member.user)
    html = client.get(reverse("wallet")).content.decode()
    assert 'data-testid="wallet-held"' not in html
    with CaptureQueriesContext(connection) as without_holds:
        client.get(reverse("wallet"))
    create_hold(org=org, membership_id=member.pk, amount=120)
    create_hold(org=org, membership_id=member.pk, amount=30)
    with CaptureQueriesContext(connection) as with_holds:
        html = client.get(reverse("wallet")).content.decode()
    assert "150 held" in html and 'data-testid="wallet-balance-total">350<' in html
    assert len(with_holds) == len(without_holds)


def test_a_captured_hold_is_no_longer_held(client, org, member):
    hold = create_hold(org=org, membership_id=member.pk, amount=100).hold
    capture_hold(org=org, hold_id=hold.pk, amount=60)
    client.force_login(member.user)
    html = client.get(reverse("wallet")).content.decode()
    assert 'data-testid="wallet-held"' not in html
    assert 'data-testid="wallet-balance-total">440<' in html


def test_members_list_shows_held_per_member_at_the_same_query_count(client, org, owner, member):
    client.force_login(owner)
    page = reverse("members:page", args=[org.slug])
    client.get(page)
    with CaptureQueriesContext(connection) as before:
        assert "held</span>" not in client.get(page).content.decode()
    other = MembershipFactory(org=org)
    give(org, other, 50)
    create_hold(org=org, membership_id=member.pk, amount=75)
    create_hold(org=org, membership_id=member.pk, amount=25)
    create_hold(org=org, membership_id=other.pk, amount=7)
    with CaptureQueriesContext(connection) as after:
        html = client.get(page).content.decode()
    assert len(after) == len(before)
    assert html.count('data-testid="member-held"') == 2
    assert ">100 held ($1.00)<" in html and ">7 held ($0.07)<" in html
