"""What people see of expiring credits (issue 19, docs/expiry.md "What people see"): the Balance card, the
Wallet page, the Transfer dialog's preview and "Send first" picker, the staff Promo grant's "Expires on", the
org's "purchased credits expire after N months" setting and Buy Credits."""

import datetime
import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orgs.models import Organization
from purchases.services import add_months as months_after
from purchases.services import purchased_credits_expire_on
from tests.factories import MembershipFactory, ledger_snapshot
from wallets.draw import LATEST, SOONEST
from wallets.expiring import (
    _expiry,
    balance_with_expiry,
    expiry_by_funder,
    org_pocket_days,
    plan_draw,
    upcoming_expiry,
)
from wallets.models import NEVER, Pocket, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance, wallet_pockets
from wallets.services import org_grant_promo, org_transfer_to_member

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "transfer-dialog"}


def _days(n: int) -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=n)


def _fmt(day: datetime.date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


@pytest.fixture
def expiring_org(funded_org):
    """10,000 Org-allocated credits that never expire; Promo 300 on day+10, 200 on day+40, 100 on day+90."""
    for amount, days in ((300, 10), (200, 40), (100, 90)):
        org_grant_promo(org=funded_org, amount=amount, expires_on=_days(days))
    return funded_org


# --- the selector ---------------------------------------------------------------------------------------------


def test_upcoming_expiry_lists_the_next_days_and_the_credits_due_within_30_days(
    expiring_org, django_assert_num_queries
):
    wallet = Wallet.objects.for_org(expiring_org)
    with django_assert_num_queries(1):
        expiry = upcoming_expiry(wallet.pk, limit=2)
    assert [(d.day, d.credits) for d in expiry.days] == [(_days(10), 300), (_days(40), 200)]
    assert expiry.more_days == 1
    assert expiry.soon == 300
    assert expiry.days[0].text == "300 credits ($3.00)"
    assert upcoming_expiry(wallet.pk, funding_org_id=None).soon == 300  # the org's own credits: the same
    assert not upcoming_expiry(wallet.pk, funding_org_id=expiring_org.pk)  # nothing funded by an org


def test_balance_with_expiry_is_wallet_balance_plus_the_days_in_the_same_two_queries(
    expiring_org, django_assert_num_queries
):
    wallet = Wallet.objects.for_org(expiring_org)
    with django_assert_num_queries(2):
        balance, expiry = balance_with_expiry(wallet)
    plain = wallet_balance(wallet)
    assert balance.total == plain.total == 10_600
    assert [(b.credit_type.slug, b.balance) for b in balance.by_type] == [
        (b.credit_type.slug, b.balance) for b in plain.by_type
    ]
    assert [(d.day, d.credits) for d in expiry.days] == [(_days(10), 300), (_days(40), 200), (_days(90), 100)]


def test_plan_draw_takes_soonest_or_latest_first_like_the_ledger(expiring_org, member_membership):
    promo = Pocket.objects.filter(credit_type__slug="promo").values_list("credit_type_id", flat=True).first()
    days = org_pocket_days(expiring_org.pk)[promo]
    assert [(d.day, d.credits) for d in plan_draw(days, 350, SOONEST)] == [(_days(10), 300), (_days(40), 50)]
    assert [(d.day, d.credits) for d in plan_draw(days, 150, LATEST)] == [(_days(40), 50), (_days(90), 100)]
    # What the ledger then does with the same order: the member's pockets carry those days.
    org_transfer_to_member(
        org=expiring_org,
        membership_id=member_membership.pk,
        credit_type=Pocket.objects.get(pk=Pocket.objects.filter(credit_type_id=promo).first().pk).credit_type,
        amount=150,
        order=LATEST,
    )
    wallet = Wallet.objects.for_user(member_membership.user)
    got = sorted(Pocket.objects.filter(wallet=wallet, balance__gt=0).values_list("expires_on", "balance"))
    assert got == [(_days(40), 50), (_days(90), 100)]
    assert [
        (f.funding_org_name, [(d.day, d.credits) for d in f.expiry.days])
        for f in expiry_by_funder(wallet_pockets(wallet))
    ] == [("Acme Quantum", [(_days(40), 50), (_days(90), 100)])]
    assert [d.types for f in expiry_by_funder(wallet_pockets(wallet)) for d in f.expiry.days] == [
        ("Promo",),
        ("Promo",),
    ]


def test_a_day_names_each_credit_type_expiring_on_it_in_display_order():
    day, later = _days(5), _days(9)
    promo, allocated = (2, "Promo"), (1, "Org-allocated")
    expiry = _expiry(
        [(day, 10, promo), (day, 5, allocated), (later, 3, promo), (NEVER, 100, allocated), (later, 0, allocated)],
        3,
        timezone.localdate(),
    )
    assert [(d.day, d.credits, d.types) for d in expiry.days] == [
        (day, 15, ("Org-allocated", "Promo")),
        (later, 3, ("Promo",)),
    ]
    assert [d.types for d in _expiry([(day, 10, None)], 3, timezone.localdate()).days] == [()]  # no names given


def test_buy_page_and_setting_use_the_purchase_expiry_rule(org):
    """The pages say the day purchases.services gives the credits (Jan 31 + 1 month = Feb 28)."""
    assert months_after(datetime.date(2027, 1, 31), 1) == datetime.date(2027, 2, 28)
    assert purchased_credits_expire_on(org) is None


# --- the Balance card -----------------------------------------------------------------------------------------


def test_balance_card_says_what_expires_when(client, expiring_org, owner):
    client.force_login(owner)
    html = client.get(reverse("billing:page", args=[expiring_org.slug])).content.decode()
    card = html[html.index('id="balance-card"') : html.index("</section>", html.index('id="balance-card"'))]
    assert 'data-testid="expiring"' in card
    assert (
        f'<strong>300 credits ($3.00)</strong> expire on <time datetime="{_days(10):%Y-%m-%d}">{_fmt(_days(10))}</time>'
        in card
    )
    assert "<strong>200 credits ($2.00)</strong> expire on" in card and _fmt(_days(90)) in card
    # Each day names its credit type.
    assert card.count('<span class="muted" data-testid="expiring-types">(Promo)</span>') == 3
    partial = client.get(reverse("billing:balance_card", args=[expiring_org.slug])).content.decode()
    assert _fmt(_days(10)) in partial


def test_balance_card_says_nothing_when_nothing_expires(client, funded_org, owner):
    client.force_login(owner)
    html = client.get(reverse("billing:page", args=[funded_org.slug])).content.decode()
    assert 'data-testid="expiring"' not in html and "expire on" not in html
    assert "purchased credits never expire" in html  # the setting's summary, with its link


def test_manager_sees_the_days_but_not_the_setting_link(client, expiring_org, manager_membership):
    client.force_login(manager_membership.user)
    html = client.get(reverse("billing:page", args=[expiring_org.slug])).content.decode()
    assert _fmt(_days(10)) in html
    assert reverse("billing:expiry_settings", args=[expiring_org.slug]) not in html


@pytest.mark.parametrize("tab_url", ["billing:page", "billing:requests"])
def test_billing_page_query_count_unchanged_by_expiring_credits(client, funded_org, owner, tab_url):
    """The expiry days come with the balance's own query: the page counts the same with or without them."""
    client.force_login(owner)
    url = reverse(tab_url, args=[funded_org.slug])
    client.get(url)
    with CaptureQueriesContext(connection) as without:
        client.get(url)
    for n in range(1, 6):
        org_grant_promo(org=funded_org, amount=10 * n, expires_on=_days(n))
    with CaptureQueriesContext(connection) as with_days:
        html = client.get(url).content.decode()
    assert _fmt(_days(1)) in html and "and more on 2 later days" in html
    assert len(with_days) == len(without) <= 16


# --- the Wallet page --------------------------------------------------------------------------------------------


def test_wallet_page_shows_each_funding_orgs_days(client, expiring_org, member_membership, other_org):
    org_transfer_to_member(
        org=expiring_org,
        membership_id=member_membership.pk,
        credit_type=Pocket.objects.filter(credit_type__slug="promo").first().credit_type,
        amount=350,
    )
    client.force_login(member_membership.user)
    url = reverse("wallet")
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        html = client.get(url).content.decode()
    assert 'data-testid="wallet-expiring"' in html and "From Acme Quantum" in html
    assert "<strong>300 credits ($3.00)</strong> expire on" in html
    assert "<strong>50 credits ($0.50)</strong> expire on" in html and _fmt(_days(40)) in html
    assert ">Expires</th>" in html and f">{_fmt(_days(10))}</time></td>" in html
    no_expiry = MembershipFactory(org=expiring_org, role="member")
    client.force_login(no_expiry.user)
    with CaptureQueriesContext(connection) as plain:
        html = client.get(url).content.decode()
    assert 'data-testid="wallet-expiring"' not in html
    assert len(ctx) == len(plain)  # the days come from the pockets the page reads anyway


# --- the Transfer dialog --------------------------------------------------------------------------------------


def _key(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f-]+)"', html).group(1)


def _one(member, amount, **extra):
    data = {"mode": "one", "recipient": str(member.pk), "credit_type": "promo", "amount": amount}
    data.update({"message": "", "idempotency_key": str(uuid.uuid4()), **extra})
    return data


def test_picker_is_offered_only_for_a_type_with_expiring_credits(client, expiring_org, owner):
    client.force_login(owner)
    url = reverse("billing:transfer", args=[expiring_org.slug])
    html = client.get(url, **HTMX).content.decode()  # Org-allocated first: it never expires
    assert 'name="order"' not in html and 'id="send-first-slot"' in html
    part = client.get(
        reverse("billing:transfer_preview", args=[expiring_org.slug]),
        {"mode": "one", "credit_type": "promo", "part": "send-first"},
    ).content.decode()
    assert "<legend>Send first</legend>" in part
    assert 'value="soonest"' in part and "checked" in part.split('value="soonest"')[1].split(">")[0]
    assert "Soonest-expiring credits first" in part and "Latest-expiring credits first" in part
    part = client.get(
        reverse("billing:transfer_preview", args=[expiring_org.slug]),
        {"mode": "one", "credit_type": "org-allocated", "part": "send-first"},
    ).content.decode()
    assert 'name="order"' not in part


def test_preview_says_which_expiring_credits_the_transfer_sends(client, expiring_org, owner):
    client.force_login(owner)
    url = reverse("billing:transfer_preview", args=[expiring_org.slug])
    member = MembershipFactory(org=expiring_org, role="member")
    params = {"mode": "one", "recipient": member.pk, "credit_type": "promo", "amount": "350"}
    html = client.get(url, params).content.decode()
    assert "<strong>300 credits ($3.00)</strong> of these credits expire on" in html
    assert "<strong>50 credits ($0.50)</strong> of these credits expire on" in html and _fmt(_days(40)) in html
    html = client.get(url, {**params, "order": "latest", "amount": "150"}).content.decode()
    assert _fmt(_days(10)) not in html and _fmt(_days(90)) in html and "<strong>50 credits ($0.50)</strong>" in html
    # Bulk: the total for every member.
    html = client.get(url, {"mode": "all", "credit_type": "promo", "amount": "1"}).content.decode()
    count = expiring_org.memberships.filter(status="active").count()
    assert f"<strong>{count} credits" in html and "of these credits expire" in html
    # Credits that never expire: nothing said; a shortfall: the block, not a plan.
    assert "of these credits expire" not in client.get(url, {**params, "credit_type": "org-allocated"}).content.decode()
    assert "of these credits expire" not in client.get(url, {**params, "amount": "700"}).content.decode()


def test_transfer_with_latest_first_sends_the_latest_days(client, expiring_org, owner):
    client.force_login(owner)
    member = MembershipFactory(org=expiring_org, role="member")
    response = client.post(
        reverse("billing:transfer_submit", args=[expiring_org.slug]), _one(member, "150", order="latest")
    )
    assert response.status_code == 302
    pockets = Pocket.objects.filter(wallet=Wallet.objects.for_user(member.user), balance__gt=0)
    assert sorted(pockets.values_list("expires_on", "balance")) == [(_days(40), 50), (_days(90), 100)]
    assert ledger_problems() == []


def test_transfer_without_a_choice_sends_the_soonest_first(client, expiring_org, owner):
    client.force_login(owner)
    member = MembershipFactory(org=expiring_org, role="member")
    client.post(reverse("billing:transfer_submit", args=[expiring_org.slug]), _one(member, "150"))
    pockets = Pocket.objects.filter(wallet=Wallet.objects.for_user(member.user), balance__gt=0)
    assert list(pockets.values_list("expires_on", "balance")) == [(_days(10), 150)]


def test_bulk_transfer_passes_the_order(client, expiring_org, owner):
    client.force_login(owner)
    members = [MembershipFactory(org=expiring_org, role="member") for _ in range(2)]
    data = {
        "mode": "selected",
        "member": [m.pk for m in members],
        "credit_type": "promo",
        "amount": "50",
        "order": "latest",
        "idempotency_key": str(uuid.uuid4()),
    }
    assert client.post(reverse("billing:transfer_submit", args=[expiring_org.slug]), data).status_code == 302
    got = Pocket.objects.filter(wallet__user__in=[m.user for m in members], balance__gt=0)
    assert sorted(got.values_list("expires_on", "balance")) == [(_days(90), 50), (_days(90), 50)]
    assert Transfer.objects.filter(kind=TransferKind.BULK_TRANSFER).count() == 1


def test_unknown_order_is_refused_next_to_the_picker_and_nothing_moves(client, expiring_org, owner):
    client.force_login(owner)
    member = MembershipFactory(org=expiring_org, role="member")
    before = ledger_snapshot()
    response = client.post(
        reverse("billing:transfer_submit", args=[expiring_org.slug]), _one(member, "150", order="random")
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_order_error"' in html and "Pick which credits to send first" in html
    # Also for a type without expiring credits (no picker offered): the error still shows where it belongs.
    data = _one(member, "150", order="random", credit_type="org-allocated")
    html = client.post(reverse("billing:transfer_submit", args=[expiring_org.slug]), data).content.decode()
    assert 'id="id_order_error"' in html
    assert ledger_snapshot() == before


def test_no_js_preview_button_shows_the_plan(client, expiring_org, owner):
    client.force_login(owner)
    member = MembershipFactory(org=expiring_org, role="member")
    before = ledger_snapshot()
    html = client.post(
        reverse("billing:transfer_submit", args=[expiring_org.slug]),
        _one(member, "350", order="latest", action="preview"),
    ).content.decode()
    assert "<html" in html and "<legend>Send first</legend>" in html
    assert re.search(r'value="latest"[^>]*checked', html)
    assert "<strong>100 credits ($1.00)</strong> of these credits expire on" in html
    assert ledger_snapshot() == before


def test_dialog_query_counts_stay_within_their_pin(client, expiring_org, owner):
    client.force_login(owner)
    for url, params in (
        (reverse("billing:transfer", args=[expiring_org.slug]), {"mode": "one"}),
        (
            reverse("billing:transfer_preview", args=[expiring_org.slug]),
            {"mode": "all", "credit_type": "promo", "amount": "5"},
        ),
        (reverse("billing:transfer_preview", args=[expiring_org.slug]), {"credit_type": "promo", "part": "send-first"}),
    ):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url, params, **HTMX).status_code == 200
        assert 0 < len(ctx) <= 10


# --- the staff Promo grant ------------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser(email="staff@example.com", password="x-long-password-1")
    client.force_login(user)
    return client


def _grant(client, org, expires_on):
    return client.post(
        reverse("admin:orgs_organization_changelist"),
        {
            "action": "grant_promo_credits",
            "_selected_action": [org.pk],
            "apply": "Grant credits",
            "amount": "500",
            "memo": "Launch",
            "expires_on": expires_on,
            "grant_key": uuid.uuid4().hex,
        },
    )


def test_grant_form_has_an_optional_expires_on(org, staff_client):
    html = staff_client.post(
        reverse("admin:orgs_organization_changelist"), {"action": "grant_promo_credits", "_selected_action": [org.pk]}
    ).content.decode()
    assert 'name="expires_on"' in html and 'type="date"' in html and "Expires on" in html


def test_grant_with_expires_on_lands_in_a_pocket_with_that_day(org, staff_client):
    day = _days(60)
    response = _grant(staff_client, org, day.isoformat())
    assert response.status_code == 302
    pocket = Pocket.objects.get(wallet=Wallet.objects.for_org(org), credit_type__slug="promo")
    assert (pocket.expires_on, pocket.balance) == (day, 500)
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any(f"expiring on {_fmt(day)}" in m for m in messages)


def test_grant_without_expires_on_never_expires(org, staff_client):
    assert _grant(staff_client, org, "").status_code == 302
    assert Pocket.objects.get(wallet=Wallet.objects.for_org(org), credit_type__slug="promo").expires_on == NEVER


@pytest.mark.parametrize("value", ["today", "yesterday", "2020-01-01", "31/12/2099", "soon"])
def test_grant_with_a_past_today_or_bad_date_shows_the_error_and_grants_nothing(org, staff_client, value):
    value = {"today": _days(0).isoformat(), "yesterday": _days(-1).isoformat()}.get(value, value)
    before = ledger_snapshot()
    response = _grant(staff_client, org, value)
    html = response.content.decode()
    assert response.status_code == 200
    assert "errorlist" in html
    assert "after today" in html or "like 2027-06-30" in html
    assert ledger_snapshot() == before


# --- the org setting and Buy Credits ----------------------------------------------------------------------------


def _settings_url(org):
    return reverse("billing:expiry_settings", args=[org.slug])


def test_owner_sets_and_clears_the_purchased_expiry(client, org, owner):
    client.force_login(owner)
    html = client.get(_settings_url(org)).content.decode()
    assert "purchased credits never expire" in html and 'name="months"' in html
    response = client.post(_settings_url(org), {"months": "12"})
    assert response.status_code == 302 and response.url == reverse("billing:page", args=[org.slug])
    org.refresh_from_db()
    assert org.purchased_credits_expire_months == 12
    billing = client.get(reverse("billing:page", args=[org.slug])).content.decode()
    assert "purchased credits expire 12 months after the purchase" in billing
    assert "Purchased credits now expire 12 months after the purchase." in billing
    html = client.get(_settings_url(org)).content.decode()
    assert 'value="12"' in html and _fmt(months_after(timezone.localdate(), 12)) in html
    assert client.post(_settings_url(org), {"months": ""}).status_code == 302
    org.refresh_from_db()
    assert org.purchased_credits_expire_months is None


@pytest.mark.parametrize("value", ["0", "500", "121", "abc", "-3", "1.5", "１２", "+6"])
def test_bad_months_show_the_error_next_to_the_field_and_save_nothing(client, org, owner, value):
    Organization.objects.filter(pk=org.pk).update(purchased_credits_expire_months=6)
    client.force_login(owner)
    response = client.post(_settings_url(org), {"months": value})
    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_months_error"' in html and "from 1 to 120" in html
    assert 'aria-invalid="true"' in html
    org.refresh_from_db()
    assert org.purchased_credits_expire_months == 6


def test_managers_and_members_cannot_change_it(client, org, manager_membership, member_membership):
    for membership in (manager_membership, member_membership):
        client.force_login(membership.user)
        assert client.get(_settings_url(org)).status_code == 403
        assert client.post(_settings_url(org), {"months": "3"}).status_code == 403
    org.refresh_from_db()
    assert org.purchased_credits_expire_months is None


def test_buy_page_says_when_the_credits_expire(client, org, owner):
    client.force_login(owner)
    url = reverse("billing:buy", args=[org.slug])
    assert 'data-testid="buy-expiry"' not in client.get(url).content.decode()
    Organization.objects.filter(pk=org.pk).update(purchased_credits_expire_months=1)
    html = client.get(url).content.decode()
    assert "These credits expire on" in html and _fmt(months_after(timezone.localdate(), 1)) in html
    assert "1 month after the purchase" in html
