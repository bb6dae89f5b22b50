"""Buy Credits form: amounts, limits, permissions, the live credit count, the Purchases list."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from devtools.stripe_standin import core
from purchases.models import Purchase, PurchaseStatus
from purchases.services import PurchaseError, parse_dollars
from tests.factories import ledger_snapshot
from tests.purchases.stripe_fixtures import paid_purchase, post_event, standin_fixture, start  # noqa: F401


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("text", "cents"),
    [("25", 2500), ("$25.50", 2550), ("5", 500), ("100000", 10_000_000), ("1,000.5", 100_050), (" 7.05 ", 705)],
)
def test_parse_dollars_accepts(text, cents):
    assert parse_dollars(text) == cents


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Enter a dollar amount"),
        ("4.99", "minimum purchase is $5.00"),
        ("0", "minimum purchase is $5.00"),
        ("100000.01", "maximum purchase is $100,000.00"),
        ("1e9", "as a number"),
        ("25.005", "whole cents"),
        ("abc", "as a number"),
        ("-25", "must be positive"),
        ("NaN", "as a number"),
        ("12..5", "as a number"),
    ],
)
def test_parse_dollars_refuses(text, message):
    with pytest.raises(PurchaseError) as exc:
        parse_dollars(text)
    assert message in exc.value.message


@pytest.mark.parametrize("amount", ["4.99", "100000.01", "25.005", "abc", "-25", ""])
def test_bad_amount_shows_error_and_changes_nothing(owner, org, amount):
    before = ledger_snapshot()
    response = login(owner).post(f"/orgs/{org.slug}/billing/buy/", {"amount": amount})
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert Purchase.objects.count() == 0
    assert ledger_snapshot() == before


@pytest.mark.parametrize("role_fixture", ["manager_membership", "member_membership"])
def test_only_owner_and_admins_can_buy(request, org, role_fixture):
    membership = request.getfixturevalue(role_fixture)
    client = login(membership.user)
    before = ledger_snapshot()
    assert client.get(f"/orgs/{org.slug}/billing/buy/").status_code == 403
    assert client.post(f"/orgs/{org.slug}/billing/buy/", {"amount": "25"}).status_code == 403
    assert client.get(f"/orgs/{org.slug}/billing/buy/preview/?amount=25").status_code == 403
    assert Purchase.objects.count() == 0
    assert ledger_snapshot() == before


def test_outsider_gets_404(org, other_org):
    assert login(other_org.memberships.first().user).get(f"/orgs/{org.slug}/billing/buy/").status_code == 404


def test_manager_sees_no_buy_button(org, owner, manager_membership):
    assert "Buy Credits" in login(owner).get(f"/orgs/{org.slug}/billing/").content.decode()
    assert "Buy Credits" not in login(manager_membership.user).get(f"/orgs/{org.slug}/billing/").content.decode()


def test_preview_counts_credits_as_you_type(owner, org):
    client = login(owner)
    html = client.get(f"/orgs/{org.slug}/billing/buy/preview/?amount=25", HTTP_HX_REQUEST="true").content.decode()
    assert "2,500 credits" in html and 'id="credit-preview"' in html
    assert "<html" not in html  # just the partial
    assert "minimum purchase" in client.get(f"/orgs/{org.slug}/billing/buy/preview/?amount=2").content.decode()


def test_form_has_htmx_preview_and_plain_fallback(owner, org):
    html = login(owner).get(f"/orgs/{org.slug}/billing/buy/?amount=12.34").content.decode()
    assert f'hx-get="/orgs/{org.slug}/billing/buy/preview/"' in html
    assert "delay:250ms" in html
    assert "1,234 credits" in html  # GET with ?amount= shows the count without JS
    assert f'action="/orgs/{org.slug}/billing/buy/"' in html
    assert "At least $5.00, at most $100,000.00" in html
    no_js = login(owner).get(f"/orgs/{org.slug}/billing/buy/?amount=3").content.decode()
    assert "The minimum purchase is $5.00." in no_js


@pytest.mark.django_db(transaction=True)
def test_purchase_redirects_to_checkout(standin, owner, org):
    response = login(owner).post(f"/orgs/{org.slug}/billing/buy/", {"amount": "25"})
    purchase = Purchase.objects.get()
    assert response.status_code == 302
    assert response["Location"] == purchase.checkout_url
    assert "/stripe-standin/checkout/cs_test_" in purchase.checkout_url
    assert (purchase.amount_cents, purchase.credits, purchase.status) == (2500, 2500, PurchaseStatus.PENDING)
    assert purchase.created_by == owner


@pytest.mark.django_db(transaction=True)
def test_price_comes_from_the_server_not_the_client(standin, owner, org):
    login(owner).post(f"/orgs/{org.slug}/billing/buy/", {"amount": "25", "unit_amount": "1", "credits": "999999"})
    purchase = Purchase.objects.get()
    assert core.get(purchase.stripe_session_id, "checkout.session")["amount_total"] == 2500
    assert purchase.credits == 2500


@pytest.mark.django_db(transaction=True)
def test_stripe_unreachable_is_a_clear_error(owner, org, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9/stripe-standin"  # nothing listens there
    before = ledger_snapshot()
    response = login(owner).post(f"/orgs/{org.slug}/billing/buy/", {"amount": "25"})
    assert response.status_code == 400
    assert "could not reach Stripe" in response.content.decode()
    assert Purchase.objects.get().status == PurchaseStatus.FAILED
    assert ledger_snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_purchases_list_on_credits_tab_with_constant_queries(standin, owner, org):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(owner)
    client.get(f"/orgs/{org.slug}/billing/")  # warm up sessions etc.
    start(org, owner)
    with CaptureQueriesContext(connection) as one:
        client.get(f"/orgs/{org.slug}/billing/")
    for _ in range(5):
        _, events = paid_purchase(org, owner)
        post_event(events[0])
    with CaptureQueriesContext(connection) as six:
        html = client.get(f"/orgs/{org.slug}/billing/").content.decode()
    assert 0 < len(six.captured_queries) == len(one.captured_queries)
    assert html.count('class="status status-') == 6
    assert "Paid" in html and "Pending" in html and "Transaction #" in html


def test_deploy_check_errors_on_the_standin_and_on_missing_stripe_keys(settings):
    from django.core import checks

    from purchases.checks import stripe_configuration

    settings.STRIPE_STANDIN = True
    problems = stripe_configuration()
    assert [c.id for c in problems] == ["billing.E002"]
    assert all(c.level == checks.ERROR for c in problems)  # an error, not a warning: deploy stops
    settings.STRIPE_STANDIN, settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = False, "sk_live_x", ""
    assert [c.id for c in stripe_configuration()] == ["billing.E001"]
    settings.STRIPE_SECRET_KEY = ""
    assert [c.id for c in stripe_configuration()] == ["billing.E003", "billing.E001"]
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_live_x", "whsec_x"
    assert stripe_configuration() == []


def _django(code: str, **env) -> subprocess.CompletedProcess:
    """Run `code` in a fresh process whose settings come from `env` (on top of a clean Stripe environment)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_") and k != "DEBUG"}
    return subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=Path(__file__).resolve().parents[2],
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


_MOUNTED = (
    "from django.conf import settings; from django.urls import resolve, Resolver404\n"
    "try:\n    resolve('/stripe-standin/'); mounted = True\nexcept Resolver404:\n    mounted = False\n"
    "print(settings.STRIPE_STANDIN, 'devtools.stripe_standin' in settings.INSTALLED_APPS, mounted)"
)


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({"DEBUG": "false"}, False),  # production without keys: off, not mounted (anyone could pay on it)
        ({"DEBUG": "true"}, True),  # `make run`: the offline demo
        ({"DEBUG": "false", "STRIPE_STANDIN": "true"}, True),  # explicit (the tests, the benches)
        ({"DEBUG": "true", "STRIPE_SECRET_KEY": "sk_test_x"}, False),  # real keys: never
        ({"DEBUG": "true", "STRIPE_STANDIN": "false"}, False),
    ],
)
def test_standin_is_mounted_only_with_debug_or_when_asked_for(env, on):
    result = _django(f"exec({_MOUNTED!r})", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(on)] * 3


def test_check_deploy_fails_while_the_standin_is_on():
    code = "from django.core.management import call_command; call_command('check', '--deploy')"
    on = _django(code, DEBUG="false", STRIPE_STANDIN="true")
    assert on.returncode != 0 and "billing.E002" in on.stderr
    real = _django(code, DEBUG="false", STRIPE_SECRET_KEY="sk_live_placeholder", STRIPE_WEBHOOK_SECRET="whsec_x")
    assert "billing." not in real.stderr + real.stdout


def test_all_purchases_page_is_paginated_for_viewers(org, owner, manager_membership, member_membership):
    from purchases.models import Purchase

    Purchase.objects.bulk_create(
        [Purchase(org=org, created_by=owner, amount_cents=500 + i, credits=500 + i) for i in range(120)]
    )
    client = login(manager_membership.user)
    page1 = client.get(f"/orgs/{org.slug}/billing/purchases/").content.decode()
    assert page1.count('class="status status-') == 50 and "Page 1 of 3" in page1
    assert "$6.19" in page1  # newest first
    page3 = client.get(f"/orgs/{org.slug}/billing/purchases/?page=3").content.decode()
    assert page3.count('class="status status-') == 20 and "$5.00" in page3
    assert login(member_membership.user).get(f"/orgs/{org.slug}/billing/purchases/").status_code == 403
