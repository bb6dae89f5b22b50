"""Where the credits go on the pages: the Balance card's burn rate and runway, the Members list's "Used this
month", the member wallet's burn rate and 7-day chart (reporting/usage.py), with flat query counts."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import MembershipFactory, bulk_members
from wallets.models import CreditType
from wallets.services import member_charge_usage, org_transfer_to_member

pytestmark = pytest.mark.django_db


def give_and_use(org, membership, given, used):
    ct = CreditType.objects.get(slug="org-allocated")
    org_transfer_to_member(org=org, membership_id=membership.pk, credit_type=ct, amount=given)
    if used:
        member_charge_usage(org=org, membership_id=membership.pk, amount=used)


def in_workspace(client, membership):
    client.force_login(membership.user)
    client.post(reverse("workspace_switch"), {"workspace": membership.org.slug})


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_balance_card_shows_burn_rate_and_runway(client, funded_org, owner, member_membership):
    give_and_use(funded_org, member_membership, 3_000, 600)  # 20 a day over 30 days
    client.force_login(owner)
    page = text(client.get(reverse("billing:page", args=[funded_org.slug])).content.decode())
    assert "Burn rate 20 credits/day ($0.20/day) over the last 30 days" in page
    assert "Lasts about 11 months at this rate" in page  # the org wallet's 7,000 left / 20: 350 days
    card = text(client.get(reverse("billing:balance_card", args=[funded_org.slug])).content.decode())
    assert "Burn rate 20 credits/day" in card  # the card re-fetched after a movement keeps it


def test_balance_card_without_usage_says_so(client, funded_org, owner):
    client.force_login(owner)
    html = client.get(reverse("billing:page", args=[funded_org.slug])).content.decode()
    assert "No usage in the last 30 days." in html
    assert "Lasts about" not in html


def test_members_list_shows_used_this_month_in_one_query_whatever_the_size(client, funded_org, owner):
    people = bulk_members(funded_org, 5)
    for i, m in enumerate(people):
        give_and_use(funded_org, m, 500, 10 * (i + 1))
    client.force_login(owner)
    page = reverse("members:page", args=[funded_org.slug])
    client.get(page)
    with CaptureQueriesContext(connection) as small:
        html = client.get(page).content.decode()
    assert "Used this month" in html
    used = re.findall(r'data-testid="used-this-month">([^<]+)<', html)
    assert sorted(used) == sorted(["0 credits ($0.00)", *[f"{10 * (i + 1)} credits ($0.{i + 1}0)" for i in range(5)]])
    more = bulk_members(funded_org, 40, prefix="more")
    for m in more[:30]:
        give_and_use(funded_org, m, 100, 1)
    with CaptureQueriesContext(connection) as large:
        html = client.get(page, {"page": 2}).content.decode()
    assert len(large) == len(small)
    assert html.count('data-testid="used-this-month"') == 21  # 46 members, 25 on page 1


def test_member_wallet_shows_own_burn_rate_and_chart(client, funded_org, member_membership):
    give_and_use(funded_org, member_membership, 1_000, 300)
    other = MembershipFactory(org=funded_org, role="member")
    give_and_use(funded_org, other, 1_000, 900)  # someone else's usage: never on this member's page
    in_workspace(client, member_membership)
    html = client.get(reverse("wallet")).content.decode()
    page = text(html)
    assert f"Usage paid by {funded_org.name}" in page
    assert "Burn rate 10 credits/day ($0.10/day) over the last 30 days" in page
    assert "Lasts about 70 days at this rate" in page  # the 700 credits from this org left / 10
    assert html.count("data-usage-day") == 7
    assert re.search(r'aria-label="[A-Z][a-z]{2} \d+: 300 credits \(\$3\.00\)"', html)
    assert "900" not in page and "($9.00)" not in page


def test_member_wallet_without_usage(client, funded_org, member_membership):
    give_and_use(funded_org, member_membership, 1_000, 0)
    in_workspace(client, member_membership)
    html = client.get(reverse("wallet")).content.decode()
    assert "No usage in the last 30 days." in html
    assert 'data-testid="usage-chart-empty"' in html and "data-usage-day" not in html


def test_member_cannot_see_the_members_list_or_the_billing_card(client, funded_org, member_membership):
    give_and_use(funded_org, member_membership, 1_000, 300)
    client.force_login(member_membership.user)
    for url in (reverse("members:page", args=[funded_org.slug]), reverse("billing:page", args=[funded_org.slug])):
        response = client.get(url)
        assert response.status_code in (403, 404), url
        assert "credits/day" not in response.content.decode()
