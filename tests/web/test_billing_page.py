"""The Billing page: who may see it, what the Balance card says, tabs, and a flat query count."""

import pytest
from django.urls import reverse

from tests.factories import MembershipFactory, bulk_members, fund

pytestmark = pytest.mark.django_db


def test_owner_sees_balance_total_and_split(client, funded_org, owner):
    fund(funded_org, 250, "promo")
    client.force_login(owner)
    response = client.get(reverse("billing:page", args=[funded_org.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'aria-labelledby="balance-heading"' in html
    assert ">10,250<" in html  # total first
    assert "Org-allocated <strong>10,000</strong>" in html
    assert "Promo <strong>250</strong>" in html
    assert 'role="tablist"' in html
    assert 'aria-selected="true"' in html and ">Credits<" in html


def test_manager_sees_billing_read_only(client, funded_org, manager_membership):
    client.force_login(manager_membership.user)
    response = client.get(reverse("billing:page", args=[funded_org.slug]))
    assert response.status_code == 200
    assert "You can view Billing as a manager" in response.content.decode()
    assert 'class="card-actions"' not in response.content.decode()


def test_member_gets_403(client, funded_org, member_membership):
    client.force_login(member_membership.user)
    assert client.get(reverse("billing:page", args=[funded_org.slug])).status_code == 403
    assert client.get(reverse("billing:requests", args=[funded_org.slug])).status_code == 403


def test_other_orgs_admin_gets_404(client, funded_org, other_org):
    admin_elsewhere = MembershipFactory(org=other_org, role="admin")
    client.force_login(admin_elsewhere.user)
    assert client.get(reverse("billing:page", args=[funded_org.slug])).status_code == 404


def test_removed_admin_gets_404(client, funded_org, admin_membership):
    admin_membership.status = "removed"
    admin_membership.save()
    client.force_login(admin_membership.user)
    assert client.get(reverse("billing:page", args=[funded_org.slug])).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, funded_org):
    response = client.get(reverse("billing:page", args=[funded_org.slug]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_credit_requests_tab_full_page_and_htmx_partial(client, funded_org, owner):
    client.force_login(owner)
    url = reverse("billing:requests", args=[funded_org.slug])
    full = client.get(url).content.decode()
    assert 'id="tab-requests" href="%s" aria-selected="true"' % url in full
    assert "<html" in full
    partial = client.get(url, headers={"HX-Request": "true", "HX-Target": "tab-panel"}).content.decode()
    assert "<html" not in partial
    assert 'id="tab-panel"' in partial
    assert 'hx-swap-oob="outerHTML:.tabs"' in partial


def test_empty_org_shows_what_to_do(client, org, owner):
    client.force_login(owner)
    html = client.get(reverse("billing:page", args=[org.slug])).content.decode()
    assert "No credits have moved yet." in html


def test_balance_card_partial(client, funded_org, owner):
    client.force_login(owner)
    html = client.get(reverse("billing:balance_card", args=[funded_org.slug])).content.decode()
    assert html.strip().startswith('<section id="balance-card"')
    assert "10,000" in html


@pytest.mark.parametrize("tab_url", ["billing:page", "billing:requests"])
def test_billing_page_query_count_is_flat(client, funded_org, owner, django_assert_max_num_queries, tab_url):
    """At most 16 queries, the same for 5 and 5,000 members."""
    client.force_login(owner)
    url = reverse(tab_url, args=[funded_org.slug])
    bulk_members(funded_org, 5)
    client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    bulk_members(funded_org, 4_995)
    with CaptureQueriesContext(connection) as large:
        assert client.get(url).status_code == 200
    assert len(small) == len(large)
    # 12, plus one for the Balance card's burn rate (reporting.usage.org_burn_rate), plus one for its low-balance
    # alert banner (alerts.templatetags.alerts.org_alert_rules: the org's rules, owner/admins only), plus the
    # Auto top-up section's settings row and, when there is one, its latest attempts (owner/admins only)
    assert len(large) <= 16


def test_purchase_links_to_its_ledger_transfer_which_shows_the_movement(
    client, org, owner, manager_membership, member_membership, other_org
):
    import re

    from django.utils import timezone

    from purchases.models import Purchase

    transfer = fund(org, 2_500)
    Purchase.objects.create(
        org=org,
        created_by=owner,
        amount_cents=2_500,
        credits=2_500,
        status="paid",
        transfer=transfer,
        paid_at=timezone.now(),
    )
    url = reverse("billing:transfer_detail", args=[org.slug, transfer.pk])
    client.force_login(owner)
    for page in ("billing:page", "billing:purchases"):
        assert (
            f'<a href="{url}">Transaction #{transfer.pk}</a>'
            in client.get(reverse(page, args=[org.slug])).content.decode()
        )
    html = client.get(url).content.decode()
    assert f"<h1>Transaction #{transfer.pk}</h1>" in html
    assert "Purchase of " in html and "test funding" in html
    assert "Acme Quantum org wallet" in html and "Stripe" in html
    assert ">+2,500<" in html and ">-2,500<" in html
    # "See it in Transactions" opens the list filtered so that this row shows.
    link = re.search(r'href="([^"]+)">See it in Transactions', html).group(1).replace("&amp;", "&")
    assert "kind=purchase" in link
    listing = client.get(link).content.decode()
    assert listing.count("<tr data-kind=") == 1 and "test funding" in listing

    client.force_login(manager_membership.user)
    assert client.get(url).status_code == 200
    client.force_login(member_membership.user)
    assert client.get(url).status_code == 403
    client.force_login(other_org.memberships.get().user)
    assert client.get(url).status_code == 404
    foreign = fund(other_org, 10)
    assert client.get(reverse("billing:transfer_detail", args=[other_org.slug, transfer.pk])).status_code == 404
    client.force_login(owner)
    assert client.get(reverse("billing:transfer_detail", args=[org.slug, foreign.pk])).status_code == 404


def test_empty_states_say_what_to_do_next(client, org, owner, manager_membership):
    """An org with nothing yet: the Balance card, Transactions and Seats say how to get going (by role)."""
    client.force_login(owner)
    billing = client.get(reverse("billing:page", args=[org.slug])).content.decode()
    buy = reverse("billing:buy", args=[org.slug])
    assert f'No credits yet — use <a href="{buy}">Buy Credits</a> (top right).' in billing
    assert "This organization has no seats yet: contact us to add some." in billing
    transactions = client.get(reverse("billing:transactions", args=[org.slug])).content.decode()
    assert 'data-testid="transactions-empty-next"' in transactions
    assert f'href="{buy}">Buy Credits</a>' in transactions
    assert f'href="{reverse("billing:transfer", args=[org.slug])}">Transfer</a>' in transactions

    client.force_login(manager_membership.user)
    billing = client.get(reverse("billing:page", args=[org.slug])).content.decode()
    assert '<p class="muted" data-testid="balance-empty">No credits yet.</p>' in billing
    assert buy not in billing
    transactions = client.get(reverse("billing:transactions", args=[org.slug])).content.decode()
    assert "No credits have moved yet." in transactions and "transactions-empty-next" not in transactions


def test_funded_balance_card_has_no_empty_note(client, funded_org, owner):
    client.force_login(owner)
    assert (
        'data-testid="balance-empty"'
        not in client.get(reverse("billing:page", args=[funded_org.slug])).content.decode()
    )


def test_empty_purchases_page_is_the_full_list_not_the_tab_excerpt(client, org, owner):
    """An empty Page is falsy: the template must still know it is the all-purchases page."""
    client.force_login(owner)
    html = client.get(reverse("billing:purchases", args=[org.slug])).content.decode()
    assert '<h2 id="purchases-heading">All purchases</h2>' in html and "See all" not in html
    assert f'Use <a href="{reverse("billing:buy", args=[org.slug])}">Buy Credits</a> to buy the first.' in html
    tab = client.get(reverse("billing:page", args=[org.slug])).content.decode()
    assert ">See all</a>" in tab and "at the top of this page" in tab
