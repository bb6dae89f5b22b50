"""The Usage page and its CSV export (web/views/usage.py): figures, range errors next to their field (400,
nothing shown), who may look, the same query count for 3 and 30 members, htmx paging, and the Billing tab."""

import csv
import io
import re
from datetime import UTC
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reporting.models import UsageRollup
from reporting.usage_page import roll_up_usage
from tests.factories import MembershipFactory, OrgFactory, UserFactory, bulk_members, fund
from wallets.models import CreditType
from wallets.services import member_charge_usage, org_transfer_to_member

pytestmark = pytest.mark.django_db


def give_and_use(org, membership, given, used):
    ct = CreditType.objects.get(slug="org-allocated")
    org_transfer_to_member(org=org, membership_id=membership.pk, credit_type=ct, amount=given)
    if used:
        member_charge_usage(org=org, membership_id=membership.pk, amount=used)


def response_day():
    return timezone.now().astimezone(UTC).date()


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def url(org, **params):
    return reverse("usage:page", args=[org.slug]) + ("?" + urlencode(params) if params else "")


def test_page_shows_members_by_usage_with_dollars_and_share(client, funded_org, owner, member_membership):
    member_membership.user.name = "Ana Lima"
    member_membership.user.save()
    bo = MembershipFactory(org=funded_org, role="member")
    give_and_use(funded_org, member_membership, 1_000, 300)
    give_and_use(funded_org, bo, 1_000, 100)
    client.force_login(owner)
    response = client.get(url(funded_org))
    assert response.status_code == 200
    page = text(response.content.decode())
    assert "400 credits ($4.00) used by 2 members" in page
    assert "Ana Lima" in page and "300 $3.00 75.0%" in page
    assert page.index("Ana Lima") < page.index(bo.user.email)  # most first
    assert "Export CSV" in page


def test_page_reads_the_rollup_and_the_tail_exactly(client, funded_org, owner, member_membership):
    give_and_use(funded_org, member_membership, 1_000, 300)
    roll_up_usage()
    member_charge_usage(org=funded_org, membership_id=member_membership.pk, amount=45)
    client.force_login(owner)
    page = text(client.get(url(funded_org, range="7d")).content.decode())
    assert "345 credits ($3.45) used by 1 member" in page
    assert UsageRollup.objects.get().rolled_until <= response_day()  # the 45 came after the watermark


def test_the_billing_tabs_link_to_usage(client, funded_org, owner):
    client.force_login(owner)
    html = client.get(reverse("billing:page", args=[funded_org.slug])).content.decode()
    assert f'href="{reverse("usage:page", args=[funded_org.slug])}"' in html


def test_the_usage_page_keeps_the_billing_tabs_with_usage_selected(client, funded_org, owner):
    """Usage is a page of its own: its tabs are plain links back to Credits and Credit Requests."""
    client.force_login(owner)
    html = client.get(url(funded_org)).content.decode()
    assert f'href="{reverse("billing:page", args=[funded_org.slug])}"' in html
    assert f'href="{reverse("billing:requests", args=[funded_org.slug])}"' in html
    assert re.search(r'aria-selected="true" id="tab-usage"[^>]*class="tab active"', html)
    assert 'hx-target="#tab-panel"' not in html and 'aria-controls="tab-panel"' not in html


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        (
            {"range": "custom", "from": "2026-12-09", "to": "2026-12-01"},
            "to-error",
            "The end date is before the start date.",
        ),
        ({"range": "custom", "from": "03/12/2026", "to": "2026-12-01"}, "from-error", "Enter a date like 2026-12-01."),
        ({"range": "custom", "from": "2020-01-01", "to": "2026-12-01"}, "to-error", "Choose at most 366 days"),
    ],
)
def test_bad_range_is_explained_next_to_the_field(client, funded_org, owner, params, field, message):
    client.force_login(owner)
    response = client.get(url(funded_org, **params))
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(rf'data-testid="{field}">{re.escape(message)}', html)
    assert 'aria-invalid="true"' in html
    assert 'data-testid="usage-members-table"' not in html  # no figures for a range that is not one
    export = client.get(reverse("usage:export", args=[funded_org.slug]) + "?" + response.request["QUERY_STRING"])
    assert export.status_code == 302 and "range=custom" in export["Location"]  # back to the page's explanation


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("admin", 200), ("manager", 200), ("member", 403)])
def test_who_may_look(client, org, role, status):
    user = org.memberships.get(role="owner").user if role == "owner" else MembershipFactory(org=org, role=role).user
    client.force_login(user)
    assert client.get(url(org)).status_code == status
    assert client.get(reverse("usage:export", args=[org.slug])).status_code == status


def test_another_orgs_admin_gets_404(client, org, other_org):
    client.force_login(MembershipFactory(org=other_org, role="admin").user)
    assert client.get(url(org)).status_code == 404
    assert client.get(reverse("usage:export", args=[org.slug])).status_code == 404


def test_same_query_count_for_3_and_30_members(client, funded_org, owner):
    client.force_login(owner)
    counts = []
    members = bulk_members(funded_org, 30, prefix="qc")
    for n in (3, 30):
        for m in members[: n if n == 3 else 30][(0 if n == 3 else 3) :]:
            give_and_use(funded_org, m, 50, 1 + m.pk % 7)
        client.get(url(funded_org))  # warm the session and caches
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url(funded_org))
        assert f"used by {n} members" in text(response.content.decode())
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts
    assert counts[0] <= 6, counts  # session, user, membership, members page, days (+ savepoint-free)


def test_pages_of_50_with_htmx(client, funded_org, owner):
    for m in bulk_members(funded_org, 55, prefix="pg"):
        give_and_use(funded_org, m, 20, 1 + m.pk % 9)
    client.force_login(owner)
    html = client.get(url(funded_org)).content.decode()
    assert html.count('data-testid="usage-member-row"') == 50
    next_link = re.search(r'rel="next" href="\?([^"]+)"', html).group(1).replace("&amp;", "&")
    part = client.get(url(funded_org) + "?" + next_link, headers={"HX-Request": "true", "HX-Target": "usage-results"})
    body = part.content.decode()
    assert "<html" not in body and body.count('data-testid="usage-member-row"') == 5
    assert part["HX-Push-Url"].startswith(reverse("usage:page", args=[funded_org.slug]))
    assert "First page" in body and 'rel="next"' not in body


def test_a_bad_page_link_shows_the_first_page(client, funded_org, owner, member_membership):
    give_and_use(funded_org, member_membership, 100, 10)
    client.force_login(owner)
    response = client.get(url(funded_org, cursor="garbage!"))
    assert response.status_code == 200
    assert "That page link is not valid any more" in response.content.decode()


def test_csv_export_streams_member_by_day_rows(client, funded_org, owner, member_membership):
    give_and_use(funded_org, member_membership, 1_000, 250)
    client.force_login(owner)
    response = client.get(reverse("usage:export", args=[funded_org.slug]) + "?range=30d")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv" and "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["date", "member", "email", "credits", "usd"]
    assert [r[2:] for r in rows[1:]] == [[member_membership.user.email, "250", "2.50"]]


def test_empty_range_says_so(client, org, owner):
    client.force_login(owner)
    page = text(client.get(url(org)).content.decode())
    assert "No usage in this range." in page and "0 credits ($0.00) used by 0 members" in page


def test_other_orgs_usage_is_not_shown(client, funded_org, owner, member_membership):
    other = OrgFactory(name="Elsewhere", owner=UserFactory(email="else@example.com"))
    fund(other, 500)
    there = MembershipFactory(org=other, user=member_membership.user, role="member")
    give_and_use(other, there, 200, 70)
    client.force_login(owner)
    assert "No usage in this range." in text(client.get(url(funded_org)).content.decode())
