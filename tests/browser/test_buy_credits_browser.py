"""Buy Credits in real Chromium: the form, the stand-in's hosted checkout, signed webhooks, the success page."""

import os
import re

import pytest
from playwright.sync_api import expect

from orgs.models import Organization
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
    expect(page.get_by_test_id("checkout-amount")).to_have_text(re.compile(r"\$25\.00"))
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
    assert Purchase.objects.get(stripe_session_id__isnull=False).status == PurchaseStatus.CANCELLED


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


# ---------------------------------------------------------------- issue 17: presets, errors, receipts, phones

SHOTS = os.environ.get("SCREENSHOT_DIR")  # screenshots for a person to look at, only when asked for


def _shot(page, name: str, full_page: bool = True):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=full_page)


SIZES = [(1280, 800), (390, 844)]


def _org():

    return Organization.objects.get(name="Quantum Lab")


def _no_sideways_scroll(page):
    wide = page.evaluate(
        """() => document.documentElement.scrollWidth <= innerWidth ? [] : [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > innerWidth + 0.5)
            .map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))"""
    )
    assert wide == [], (page.url, wide[:8])


def _inside(page, inner: str, outer: str):
    """Every `inner` element's box lies within its closest `outer` ancestor's box (nothing spills out)."""
    spill = page.evaluate(
        """([inner, outer]) => [...document.querySelectorAll(inner)].filter(el => {
            const box = el.getBoundingClientRect(), card = el.closest(outer).getBoundingClientRect();
            return box.left < card.left - 0.5 || box.right > card.right + 0.5;
        }).map(el => el.outerHTML.slice(0, 80))""",
        [inner, outer],
    )
    assert spill == [], spill


def test_preset_fills_the_amount_in_place_and_the_error_is_said_once(page, live_server, demo):
    org = _org()
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/{org.slug}/billing/buy/")
    url = page.url
    page.get_by_role("link", name=re.compile(r"^\$50\b")).click()
    expect(page.get_by_label("Dollar amount")).to_have_value("50")
    expect(page.get_by_test_id("credit-preview")).to_have_text(re.compile(r"You get\s+5,000 credits\s+for \$50\.00"))
    expect(page.get_by_role("link", name=re.compile(r"^\$50\b"))).to_have_attribute("aria-current", "true")
    assert page.url == url  # filled in place, no page load
    page.get_by_label("Dollar amount").fill("3")
    page.get_by_role("button", name="Purchase").click()
    expect(page.get_by_text("The minimum purchase is $5.00.")).to_have_count(1)
    expect(page.get_by_text("The minimum purchase is $5.00.")).to_be_visible()
    expect(page.get_by_label("Dollar amount")).to_be_focused()
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        _no_sideways_scroll(page)
        _shot(page, f"buy-error-{width}.png")
    assert Purchase.objects.filter(stripe_session_id__isnull=False).count() == 0


def test_without_javascript_preset_purchase_and_receipt_work(browser, live_server, demo, stripe_standin, settings):
    """Presets are links, Purchase a form post, the stand-in's Pay a form post, the receipt a page with a print hint."""
    org = _org()
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/{org.slug}/billing/buy/")
    page.get_by_role("link", name=re.compile(r"^\$100\b")).click()
    page.wait_for_url(re.compile(r"\?amount=100$"))
    expect(page.get_by_label("Dollar amount")).to_have_value("100")
    expect(page.get_by_test_id("credit-preview")).to_have_text(re.compile(r"You get\s+10,000 credits\s+for \$100\.00"))
    _shot(page, "buy-nojs-390.png")
    page.get_by_role("button", name="Purchase").click()
    page.wait_for_url(re.compile(r"/stripe-standin/checkout/cs_test_"))
    _no_sideways_scroll(page)
    page.get_by_role("button", name="Pay $100.00").click()
    page.wait_for_url(re.compile(r"/billing/purchases/\d+/\?session_id="))
    expect(page.get_by_test_id("purchase-done")).to_contain_text("10,000 credits landed")
    page.get_by_role("link", name="View receipt").click()
    receipt = page.get_by_test_id("receipt")
    expect(receipt).to_contain_text("$100.00")
    expect(receipt).to_contain_text("10,000")
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    expect(page.get_by_test_id("print-hint")).to_be_visible()
    _no_sideways_scroll(page)
    context.close()


def test_receipt_prints_without_the_sidebar_and_fits_phones(page, live_server, demo, stripe_standin):
    from django.utils import timezone

    from tests.factories import fund

    org = _org()
    admin = org.memberships.get(user__email="admin@example.com").user
    purchase = Purchase.objects.create(
        org=org,
        created_by=admin,
        amount_cents=4_000,
        credits=4_000,
        status=PurchaseStatus.PARTIALLY_REFUNDED,
        transfer=fund(org, 4_000),
        paid_at=timezone.now(),
        stripe_session_id="cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ0123456789abcdef",
        payment_intent_id="pi_3QxYzAbCdEfGhIjK1LmNoPqR",
        refunded_cents=1_000,
        refunded_credits=1_000,
    )
    sign_in(page, live_server, "admin@example.com")
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}/orgs/{org.slug}/billing/purchases/")
        row = page.get_by_test_id("purchases").get_by_role("row").filter(has_text="$40.00")
        expect(row).to_contain_text("4,000 credits")
        expect(row.get_by_role("link", name=re.compile("^Receipt"))).to_be_visible()
        _no_sideways_scroll(page)
        _inside(page, "table.purchases-table", ".card")
        _inside(page, "table.purchases-table td", ".card")
        _shot(page, f"purchases-{width}.png")
        page.goto(f"{live_server.url}/orgs/{org.slug}/billing/")  # the Credits tab's latest purchases
        expect(page.get_by_test_id("purchases")).to_contain_text("4,000 credits ($40.00)")
        _no_sideways_scroll(page)
        _inside(page, "table.purchases-table td", ".card")
        _shot(page, f"billing-credits-{width}.png")
        page.goto(f"{live_server.url}/orgs/{org.slug}/billing/purchases/")
        row.get_by_role("link", name=re.compile("^Receipt")).click()
        expect(page.get_by_role("heading", name=f"Receipt {purchase.receipt_number}")).to_be_visible()
        expect(page.get_by_test_id("receipt-refund")).to_contain_text("$10.00")
        expect(page.get_by_test_id("receipt-net")).to_have_text("$30.00")
        expect(page.get_by_role("button", name="Print")).to_be_visible()
        _no_sideways_scroll(page)
        _inside(page, ".receipt dd, .receipt table", ".card")
        _shot(page, f"receipt-{width}.png")
    page.emulate_media(media="print")
    expect(page.locator(".sidebar")).to_be_hidden()
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    expect(page.get_by_test_id("receipt")).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 800})
    _shot(page, "receipt-print.png")
    page.emulate_media(media="screen")
    # (A function as evaluate's result would be called by Playwright: hence the trailing 0.)
    page.evaluate("window.printed = 0; window.print = () => { window.printed += 1; }; 0")
    page.get_by_role("button", name="Print").click()
    assert page.evaluate("window.printed") == 1


def test_processing_page_spins_and_the_checkout_page_looks_like_one(page, live_server, demo, stripe_standin):
    org = _org()
    admin = org.memberships.get(user__email="admin@example.com").user
    pending = Purchase.objects.create(org=org, created_by=admin, amount_cents=2_500, credits=2_500)
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/{org.slug}/billing/purchases/{pending.pk}/")
    expect(page.get_by_role("heading", name="Payment processing…")).to_be_visible()
    spinner = page.get_by_test_id("purchase-spinner")
    expect(spinner).to_be_visible()
    expect(spinner).to_have_attribute("aria-hidden", "true")
    assert spinner.evaluate("el => getComputedStyle(el).animationName") == "spin"
    _shot(page, "processing-1280.png", full_page=False)

    page.goto(f"{live_server.url}/orgs/{org.slug}/billing/buy/?amount=25")
    page.get_by_role("button", name="Purchase").click()
    page.wait_for_url(re.compile(r"/stripe-standin/checkout/cs_test_"))
    pay = page.get_by_role("button", name="Pay $25.00")
    # Styled by its own static stylesheet (inline styles would be refused by the CSP): a Stripe-purple Pay button.
    assert pay.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(99, 91, 255)"
    expect(page.get_by_test_id("test-mode")).to_have_text("Test mode")
    expect(page.get_by_test_id("checkout-amount")).to_contain_text("$25.00")
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        _no_sideways_scroll(page)
        _shot(page, f"checkout-{width}.png")
