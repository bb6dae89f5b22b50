"""Issue 17, Buy Credits: the error said once, preset amounts, receipts (content and access), dollars beside
credits on the Purchases list, Cancelled vs Expired, the stand-in's styled checkout page."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone

from devtools.stripe_standin import core
from purchases.models import Purchase, PurchaseStatus
from purchases.services import purchase_cancel
from tests.factories import fund, ledger_snapshot
from tests.purchases.stripe_fixtures import event_named, paid_purchase, post_event, standin_fixture, start  # noqa: F401


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def paid(org, user, cents=2_500, **extra) -> Purchase:
    """A paid purchase (its credits posted through the ledger, like the demo's seeded ones)."""
    return Purchase.objects.create(
        org=org,
        created_by=user,
        amount_cents=cents,
        credits=cents,
        status=extra.pop("status", PurchaseStatus.PAID),
        transfer=fund(org, cents),
        paid_at=timezone.now(),
        stripe_session_id=f"cs_test_receipt_{cents}",
        payment_intent_id=f"pi_test_receipt_{cents}",
        **extra,
    )


def receipt_url(org, purchase) -> str:
    return f"/orgs/{org.slug}/billing/purchases/{purchase.pk}/receipt/"


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ------------------------------------------------------------------ Buy Credits form


@pytest.mark.parametrize(("amount", "message"), [("4.99", "The minimum purchase is $5.00."), ("abc", "as a number")])
def test_bad_amount_is_said_once_next_to_the_field(owner, org, amount, message):
    before = ledger_snapshot()
    response = login(owner).post(f"/orgs/{org.slug}/billing/buy/", {"amount": amount})
    html = response.content.decode()
    assert response.status_code == 400
    assert html.count(message) == 1, "shown twice (banner and field)"
    assert "form-error" not in html  # no banner above the form
    field = re.search(r'<div class="field has-error">.*?id="amount-help"', html, re.S).group(0)
    assert message in field and 'role="alert"' in field
    assert re.search(r'<input id="id_amount"[^>]*aria-invalid="true"', html, re.S)
    assert Purchase.objects.count() == 0 and ledger_snapshot() == before


def test_no_js_show_credits_error_is_also_said_once(owner, org):
    html = login(owner).get(f"/orgs/{org.slug}/billing/buy/?amount=3").content.decode()
    assert html.count("The minimum purchase is $5.00.") == 1


def test_preset_amounts_are_links_that_fill_the_form_without_js(owner, org):
    client = login(owner)
    html = client.get(f"/orgs/{org.slug}/billing/buy/").content.decode()
    presets = re.findall(r'<a class="preset" href="([^"]+)" data-preset-amount="(\d+)"', html)
    assert [a for _, a in presets] == ["10", "50", "100", "500"]
    assert presets[1][0] == f"/orgs/{org.slug}/billing/buy/?amount=50"
    assert "aria-current" not in html.split('data-testid="presets"')[1].split("</ul>")[0]
    chosen = client.get(presets[1][0]).content.decode()
    assert re.search(r'data-preset-amount="50" aria-current="true"', chosen)
    assert chosen.count('aria-current="true"') == chosen.count("aria-current") - chosen.count('aria-current="page"')
    assert 'value="50"' in chosen
    assert "You get <strong>5,000 credits</strong> for $50.00" in chosen
    assert "50,000 credits" in html  # each preset says its credits


def test_presets_outside_the_limits_are_not_offered(owner, org, settings):
    settings.PURCHASE_MIN_CENTS, settings.PURCHASE_MAX_CENTS = 2_000, 20_000
    html = login(owner).get(f"/orgs/{org.slug}/billing/buy/").content.decode()
    assert re.findall(r'data-preset-amount="(\d+)"', html) == ["50", "100"]


def test_preview_shows_dollars_beside_credits(owner, org):
    html = login(owner).get(f"/orgs/{org.slug}/billing/buy/preview/?amount=12.5", HTTP_HX_REQUEST="true")
    assert "You get <strong>1,250 credits</strong> for $12.50" in html.content.decode()


# ------------------------------------------------------------------ receipts


def test_receipt_shows_what_a_billing_person_needs_in_their_words(owner, org):
    purchase = paid(org, owner)
    response = login(owner).get(receipt_url(org, purchase))
    assert response.status_code == 200
    html = response.content.decode()
    words = text(html)
    assert f"Receipt CR-{purchase.pk:06d}" in words
    assert "Acme Quantum" in words and owner.display_name in words and owner.email in words
    assert "$25.00" in words and "2,500" in words
    assert "pi_test_receipt_2500" in words and "cs_test_receipt_2500" in words
    assert timezone.localtime(purchase.paid_at).strftime("%B %-d, %Y") in words
    assert "Paid" in words and "Total paid" in words
    assert "Transfer #" not in words and "Ledger" not in words and "ledger" not in words
    # Print: a button app.js shows, a no-JS hint, and a print stylesheet hiding the sidebar.
    assert re.search(r"<button[^>]*data-print hidden>Print</button>", html)
    assert "<noscript>" in html and "use your browser's Print" in html
    assert "refund" not in words.lower()


def test_refunded_purchase_shows_the_refund_and_net(owner, org):
    partial = paid(org, owner, 4_000, status=PurchaseStatus.PARTIALLY_REFUNDED, refunded_cents=1_000)
    Purchase.objects.filter(pk=partial.pk).update(refunded_credits=1_000)
    words = text(login(owner).get(receipt_url(org, partial)).content.decode())
    assert "Refund (partial)" in words and "−1,000" in words and "−$10.00" in words
    assert "Net paid" in words and "$30.00" in words and "3,000" in words
    assert "Partially refunded" in words
    full = paid(org, owner, 2_000, status=PurchaseStatus.REFUNDED, refunded_cents=2_000, refunded_credits=2_000)
    words = text(login(owner).get(receipt_url(org, full)).content.decode())
    assert "Refund −2,000 −$20.00" in words and "Net paid" in words and "$0.00" in words


@pytest.mark.parametrize(
    ("role_fixture", "status"),
    [(None, 200), ("admin_membership", 200), ("manager_membership", 200), ("member_membership", 403)],
)
def test_receipt_is_for_those_who_may_view_billing(request, owner, org, role_fixture, status):
    purchase = paid(org, owner)
    user = request.getfixturevalue(role_fixture).user if role_fixture else owner
    assert login(user).get(receipt_url(org, purchase)).status_code == status


def test_another_orgs_receipt_is_404(owner, org, other_org):
    purchase = paid(org, owner)
    outsider = other_org.memberships.first().user
    assert login(outsider).get(receipt_url(org, purchase)).status_code == 404
    # Nor through the outsider's own org's address.
    assert login(outsider).get(receipt_url(other_org, purchase)).status_code == 404
    assert Client().get(receipt_url(org, purchase)).status_code == 302  # anonymous: to sign-in


@pytest.mark.parametrize("status", [PurchaseStatus.PENDING, PurchaseStatus.CANCELLED, PurchaseStatus.EXPIRED])
def test_unpaid_purchase_has_no_receipt(owner, org, status):
    purchase = Purchase.objects.create(org=org, created_by=owner, amount_cents=2500, credits=2500, status=status)
    html = login(owner).get(receipt_url(org, purchase)).content.decode()
    assert "No receipt for this purchase" in html and "CR-" not in html
    assert purchase.get_status_display() in html


def test_purchases_list_links_receipts_and_shows_dollars_beside_credits(owner, org, manager_membership):
    done = paid(org, owner)
    open_ = Purchase.objects.create(org=org, created_by=owner, amount_cents=1_234, credits=1_234)
    for client in (login(owner), login(manager_membership.user)):
        for url in (f"/orgs/{org.slug}/billing/purchases/", f"/orgs/{org.slug}/billing/"):
            html = client.get(url).content.decode()
            assert f'href="{receipt_url(org, done)}"' in html
            assert receipt_url(org, open_) not in html
            assert '2,500 credits</span> <span class="muted nowrap">($25.00)' in html
            assert '1,234 credits</span> <span class="muted nowrap">($12.34)' in html
            table = re.search(r'<table class="table compact stack purchases-table".*?</table>', html, re.S).group(0)
            cells = re.findall(r"<td[^>]*>", table)
            assert cells and all("data-label=" in c for c in cells)
            assert 'badge badge-ok">Paid' in table and 'badge badge-warn">Pending' in table


def test_status_page_links_the_receipt_and_spins_while_processing(owner, org):
    done = paid(org, owner)
    html = login(owner).get(f"/orgs/{org.slug}/billing/purchases/{done.pk}/").content.decode()
    assert f'href="{receipt_url(org, done)}">View receipt' in html
    pending = Purchase.objects.create(org=org, created_by=owner, amount_cents=2500, credits=2500)
    html = login(owner).get(f"/orgs/{org.slug}/billing/purchases/{pending.pk}/").content.decode()
    assert re.search(r'<span class="spinner" aria-hidden="true"[^>]*></span>Payment processing…', html)
    assert 'data-testid="purchase-refresh"' in html  # the no-JS way to look again


# ------------------------------------------------------------------ Cancelled vs Expired


@pytest.mark.django_db(transaction=True)
def test_cancel_reads_cancelled_even_when_the_expired_webhook_comes_first(standin, org, owner):
    purchase = start(org, owner)
    before = ledger_snapshot()
    Purchase.objects.filter(pk=purchase.pk).update(cancelled_at=timezone.now())  # the cancel POST's first step
    _, events = core.expire_session(purchase.stripe_session_id)
    post_event(event_named(events, "checkout.session.expired"))
    assert Purchase.objects.get(pk=purchase.pk).status == PurchaseStatus.CANCELLED
    assert purchase_cancel(Purchase.objects.get(pk=purchase.pk)).status == PurchaseStatus.CANCELLED  # no-op
    assert ledger_snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_cancel_of_a_session_paid_meanwhile_still_ends_paid(standin, org, owner):
    purchase, events = paid_purchase(org, owner)
    after_cancel = purchase_cancel(purchase)  # Stripe refuses to expire a paid session
    assert after_cancel.status == PurchaseStatus.PENDING and after_cancel.cancelled_at is not None
    post_event(event_named(events, "checkout.session.completed"))
    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.PAID and purchase.transfer_id is not None


@pytest.mark.django_db(transaction=True)
def test_cancelled_purchase_reads_cancelled_on_its_pages(standin, org, owner):
    purchase = start(org, owner)
    purchase_cancel(purchase)
    purchase.refresh_from_db()
    assert purchase.status == PurchaseStatus.CANCELLED
    client = login(owner)
    for url in (f"/orgs/{org.slug}/billing/purchases/", f"/orgs/{org.slug}/billing/purchases/{purchase.pk}/"):
        html = client.get(url).content.decode()
        assert 'badge badge-neutral">Cancelled' in html and "Expired" not in html


# ------------------------------------------------------------------ the stand-in's checkout page


@pytest.mark.django_db(transaction=True)
def test_standin_checkout_page_is_styled_by_a_static_file_not_inline(standin, org, owner):
    purchase = start(org, owner)
    html = Client().get(f"/stripe-standin/checkout/{purchase.stripe_session_id}/").content.decode()
    assert "<style" not in html and "style=" not in html and "<script" not in html  # CSP: style-src 'self'
    href = re.search(r'<link rel="stylesheet" href="([^"]+)">', html).group(1)
    assert href.endswith("stripe_standin/standin.css") and "//" not in href
    assert finders.find("stripe_standin/standin.css")
    words = text(html)
    assert "Test mode" in words and "Pay $25.00" in words and "2,500 credits" in words
    assert "Prepaid credits for Acme Quantum" in words and "4242 4242 4242 4242" in words
    dashboard = Client().get("/stripe-standin/").content.decode()
    assert "<style" not in dashboard and "standin.css" in dashboard
