"""Buy Credits in real Chromium: the form, the stand-in's hosted checkout, signed webhooks, the success page."""

import re

import pytest
from playwright.sync_api import expect

from purchases.models import Purchase, PurchaseStatus
from tests.browser.conftest import sign_in, switch_workspace
from tests.factories import ledger_snapshot
from wallets.models import Transfer, TransferKind

pytestmark = pytest.mark.browser


@pytest.fixture
def stripe_standin(live_server, settings):
    settings.STRIPE_API_BASE = f"{live_server.url}/stripe-standin"
    settings.STRIPE_STANDIN_ASYNC_DELAY = 1.0
    return live_server


def _total(page) -> int:
    return int(page.get_by_test_id("org-balance-total").inner_text().replace(",", ""))


def _open_buy_form(page, live_server):
    sign_in(page, live_server, "alice@example.com")
    switch_workspace(page, "Quantum Lab")
    page.get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Billing")).to_be_visible()
    before = _total(page)
    page.get_by_role("link", name="Buy Credits").click()
    return before


def test_admin_buys_25_dollars_of_credits(page, demo, stripe_standin):
    live_server = stripe_standin
    before = _open_buy_form(page, live_server)
    page.get_by_label("Dollar amount").press_sequentially("25", delay=60)
    expect(page.get_by_test_id("credit-preview")).to_have_text(re.compile(r"You get\s+2,500 credits"))
    page.get_by_role("button", name="Purchase").click()

    page.wait_for_url(re.compile(r"/stripe-standin/checkout/cs_test_"))
    expect(page.get_by_text("$25.00")).to_be_visible()
    page.get_by_role("button", name="Pay").click()

    page.wait_for_url(re.compile(r"/billing/purchases/\d+/\?session_id=cs_test_"))
    expect(page.get_by_test_id("purchase-done")).to_contain_text("2,500 credits landed")
    expect(page.get_by_test_id("purchase-new-balance")).to_have_text(f"{before + 2500:,}")

    page.get_by_role("link", name="Back to Billing").click()
    assert _total(page) == before + 2500
    # The demo's seeded purchases are Paid too: the new one is the $25.00 row, the only checked-out purchase.
    expect(page.get_by_test_id("purchases").get_by_role("row").filter(has_text="$25.00")).to_contain_text("Paid")
    purchase = Purchase.objects.get(stripe_session_id__isnull=False)
    assert purchase.status == PurchaseStatus.PAID
    assert Transfer.objects.filter(kind=TransferKind.PURCHASE, idempotency_key__startswith="stripe:").count() == 1


def test_cancelled_checkout_changes_nothing(page, demo, stripe_standin):
    live_server = stripe_standin
    before_total = _open_buy_form(page, live_server)
    before = ledger_snapshot()
    page.get_by_label("Dollar amount").fill("40")
    page.get_by_role("button", name="Purchase").click()
    page.wait_for_url(re.compile(r"/stripe-standin/checkout/"))
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(re.compile(r"/cancelled/$"))  # Stripe's cancel link only shows the page; its button cancels
    page.get_by_role("button", name="Cancel checkout").click()
    page.wait_for_url(re.compile(r"/billing/$"))
    expect(page.get_by_text("Checkout cancelled. Nothing was charged")).to_be_visible()
    assert _total(page) == before_total
    assert ledger_snapshot() == before
    assert Purchase.objects.get(stripe_session_id__isnull=False).status == PurchaseStatus.EXPIRED


def test_delayed_payment_polls_until_credits_land_despite_duplicate_reordered_events(page, demo, stripe_standin):
    live_server = stripe_standin
    before = _open_buy_form(page, live_server)
    page.get_by_label("Dollar amount").fill("12.34")
    page.get_by_role("button", name="Purchase").click()
    page.wait_for_url(re.compile(r"/stripe-standin/checkout/"))
    page.get_by_label("Bank debit, delayed payment (clears in a few seconds)").check()
    page.get_by_label("Deliver every event twice").check()
    page.get_by_label("Deliver out of order").check()
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(re.compile(r"/billing/purchases/\d+/"))
    expect(page.get_by_role("heading", name="Payment processing…")).to_be_visible()
    expect(page.get_by_test_id("purchase-done")).to_contain_text("1,234 credits landed", timeout=15_000)
    expect(page.get_by_test_id("purchase-new-balance")).to_have_text(f"{before + 1234:,}")
    assert Transfer.objects.filter(kind=TransferKind.PURCHASE, idempotency_key__startswith="stripe:").count() == 1


def test_typing_fires_one_debounced_preview_not_one_per_key(page, live_server, demo):
    """htmx runs without eval, so a filtered trigger like keyup[key=='Enter'] would fire on every key."""
    previews = []
    page.on("request", lambda r: previews.append(r.url) if "/billing/buy/preview/" in r.url else None)
    _open_buy_form(page, live_server)
    page.get_by_label("Dollar amount").press_sequentially("12345", delay=40)
    expect(page.get_by_test_id("credit-preview")).to_have_text(re.compile(r"You get\s+1,234,500 credits"))
    page.wait_for_timeout(400)
    assert len(previews) == 1, previews
    # The count sits inside a live region that stays in the page, so screen readers announce each update.
    live = page.locator("[aria-live=polite]", has=page.get_by_test_id("credit-preview"))
    expect(live).to_have_count(1)
