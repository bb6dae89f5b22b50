"""The Billing chart's day values (hover and keyboard focus) and its flat query count."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reporting.chart import balance_chart
from tests.factories import fund
from wallets.models import Wallet
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db


def test_each_day_has_a_label_and_a_tooltip_inside_the_chart(funded_org):
    fund(funded_org, 250, "promo")
    wallet = Wallet.objects.for_org(funded_org)
    chart = balance_chart(wallet, wallet_balance(wallet).by_type, days=30)
    assert len(chart.points) == 30
    today = chart.points[-1]
    assert today.label.startswith(timezone.localdate().strftime("%b %-d, %Y") + ": ")
    assert "Org-allocated 10,000" in today.label and "Promo 250" in today.label
    assert today.label.endswith("Total 10,250 credits ($102.50)")
    assert [text for _, text in today.lines][-1] == "Total 10,250 credits ($102.50)"
    for p in chart.points:  # the tooltip never leaves the plot, whichever end of the range
        assert p.tip_x >= 56 and p.tip_x + p.tip_w <= chart.width - 8
        assert p.hit_w > 0
    assert chart.points[0].label.startswith((timezone.localdate() - timedelta(days=29)).strftime("%b %-d, %Y"))


def test_billing_page_chart_days_are_focusable_and_query_count_is_flat(client, funded_org, owner):
    client.force_login(owner)
    page = reverse("billing:page", args=[funded_org.slug])
    with CaptureQueriesContext(connection) as short:
        html = client.get(page + "?chart=30").content.decode()
    assert html.count("data-chart-day") == 30
    assert 'tabindex="0" role="img" aria-label="' in html
    assert "Total 10,000 credits ($100.00)</title>" in html
    with CaptureQueriesContext(connection) as long:
        html = client.get(page + "?chart=90").content.decode()
    assert html.count("data-chart-day") == 90
    assert len(long) == len(short)


def test_partial_and_full_page_answers_vary_on_htmx(client, funded_org, owner):
    """The same URL answers htmx with a partial: the browser must never show a cached partial as the page
    (Back after a tab swap used to show the bare Credit Requests panel)."""
    client.force_login(owner)
    for name in ("billing:page", "billing:requests", "billing:transactions"):
        response = client.get(reverse(name, args=[funded_org.slug]))
        assert "HX-Request" in response.headers["Vary"], name
    assert "HX-Request" in client.get(reverse("wallet")).headers["Vary"]


def test_member_wallet_filter_offers_only_wallet_kinds(client, funded_org, member_membership):
    client.force_login(member_membership.user)
    html = client.get(reverse("wallet")).content.decode()
    assert '<option value="transfer"' in html and '<option value="usage"' in html
    for never in ("purchase", "refund", "promo_grant", "dispute_hold", "dispute_release"):
        assert f'<option value="{never}"' not in html
