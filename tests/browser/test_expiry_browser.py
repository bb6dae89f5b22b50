"""Expiring credits in real Chromium (issue 19): the Balance card says what expires when, the Transfer dialog
offers "Send first" and says which expiring credits a transfer sends, the member's Wallet shows the day; the
purchased-credit expiry setting works without JavaScript and by keyboard. Screenshots of both sizes go to
SCREENSHOT_DIR when it is set (for a person to look at)."""

import datetime
import os

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orgs.models import Organization
from tests.browser.conftest import sign_in
from tests.browser.test_pages_fit_and_axe import _problems
from wallets.models import NEVER, CreditType, Pocket, Wallet
from wallets.services import org_grant_promo, org_transfer_to_member

pytestmark = [pytest.mark.browser]
SHOTS = os.environ.get("SCREENSHOT_DIR")
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def _shot(page, name, size, full_page=True):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"expiry_{name}-{size}.png"), full_page=full_page)


def _fmt(day: datetime.date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


def _expiring_promo(org) -> tuple[datetime.date, datetime.date]:
    """The demo org's never-expiring Promo goes to Alice; then 1,000 Promo expiring in 20 days and 500 in 60."""
    promo = CreditType.objects.get(slug="promo")
    alice = org.memberships.get(user__email="alice@example.com")
    held = sum(
        Pocket.objects.filter(wallet=Wallet.objects.for_org(org), credit_type=promo).values_list("balance", flat=True)
    )
    org_transfer_to_member(org=org, membership_id=alice.pk, credit_type=promo, amount=held)
    today = timezone.localdate()
    soon, later = today + datetime.timedelta(days=20), today + datetime.timedelta(days=60)
    org_grant_promo(org=org, amount=1_000, expires_on=soon)
    org_grant_promo(org=org, amount=500, expires_on=later)
    return soon, later


@pytest.mark.parametrize("size", list(SIZES))
def test_balance_card_transfer_latest_first_and_the_members_wallet(page, live_server, demo, size):
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    org = Organization.objects.get(name="Quantum Lab")
    soon, later = _expiring_promo(org)
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/{org.slug}/billing/")
    balance = page.get_by_role("region", name="Balance")
    expiring = balance.get_by_test_id("expiring")
    expect(expiring).to_contain_text(f"1,000 credits ($10.00) expire on {_fmt(soon)}")
    expect(expiring).to_contain_text(f"500 credits ($5.00) expire on {_fmt(later)}")
    expect(balance.get_by_test_id("expiry-setting-summary")).to_contain_text("purchased credits never expire")
    _shot(page, "billing", size)
    if SHOTS:  # the card alone: the page is long on a phone
        balance.screenshot(path=os.path.join(SHOTS, f"expiry_balance-card-{size}.png"))
    assert _problems(page, size) == []  # fits, nothing sticks out of a card, no serious axe violation

    balance.get_by_role("link", name="Transfer", exact=True).click()
    dialog = page.get_by_role("dialog", name="Transfer credits")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("group", name="Send first")).to_have_count(0)  # Org-allocated never expires
    dialog.get_by_label("Recipient").select_option(label="Erin (erin@example.com)")
    dialog.get_by_label("Credit type").select_option("promo")
    send_first = dialog.get_by_role("group", name="Send first")
    expect(send_first).to_be_visible()
    expect(send_first.get_by_label("Soonest-expiring credits first")).to_be_checked()  # the default
    dialog.get_by_label("Amount").fill("300")
    preview = dialog.get_by_test_id("transfer-expiring")
    expect(preview).to_have_text(f"300 credits ($3.00) of these credits expire on {_fmt(soon)}")
    send_first.get_by_label("Latest-expiring credits first").check()
    expect(preview).to_have_text(f"300 credits ($3.00) of these credits expire on {_fmt(later)}")
    expect(send_first.get_by_label("Latest-expiring credits first")).to_be_checked()  # not re-rendered under us
    preview.evaluate("el => el.scrollIntoView({block: 'center'})")  # above the sticky footer
    _shot(page, "transfer", size, full_page=False)  # the dialog as it is seen
    assert _problems(page, size) == []
    dialog.get_by_role("button", name="Transfer Credits").click()
    expect(dialog.get_by_test_id("transfer-success")).to_have_text("Transferred 300 Promo credits ($3.00) to Erin.")
    dialog.get_by_role("button", name="Done").click()
    # The Balance card refreshed: 200 left on the later day.
    expect(balance.get_by_test_id("expiring")).to_contain_text(f"200 credits ($2.00) expire on {_fmt(later)}")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live_server, "erin@example.com")
    page.goto(f"{live_server.url}/wallet/")
    wallet = page.get_by_role("region", name="Default wallet")
    days = wallet.get_by_test_id("wallet-expiring")
    expect(days).to_contain_text("From Quantum Lab")
    expect(days).to_contain_text(f"300 credits ($3.00) expire on {_fmt(later)}")
    expect(wallet.get_by_role("row").filter(has_text=_fmt(later))).to_contain_text("Promo")
    _shot(page, "wallet", size)
    # The whole page, Erin's pending credit request (its "Cancel request" button) included.
    assert _problems(page, size) == []


def test_purchased_expiry_setting_without_javascript_and_by_keyboard(browser, live_server, demo):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        org = Organization.objects.get(name="Quantum Lab")
        sign_in(page, live_server, "admin@example.com")
        page.goto(f"{live_server.url}/orgs/{org.slug}/billing/")
        page.get_by_role("region", name="Balance").get_by_role("link", name="Credit expiry").click()
        expect(page.get_by_role("heading", name="Credit expiry", level=1)).to_be_visible()
        field = page.get_by_label("Purchased credits expire after (months)")
        field.focus()
        page.keyboard.type("500")
        page.keyboard.press("Enter")
        expect(page.locator("#id_months_error")).to_contain_text("from 1 to 120")
        expect(field).to_have_attribute("aria-invalid", "true")
        _shot(page, "settings-error", "phone")
        org.refresh_from_db()
        assert org.purchased_credits_expire_months is None
        field.fill("")
        field.focus()
        page.keyboard.type("12")
        page.keyboard.press("Enter")
        expect(page.locator(".flash")).to_contain_text("Purchased credits now expire 12 months after the purchase.")
        org.refresh_from_db()
        assert org.purchased_credits_expire_months == 12
        page.goto(f"{live_server.url}/orgs/{org.slug}/billing/buy/")
        expect(page.get_by_test_id("buy-expiry")).to_contain_text("These credits expire on")
        _shot(page, "buy", "phone")
    finally:
        context.close()


def test_send_first_without_javascript(browser, live_server, demo):
    """The no-JS Transfer page: Preview shows the picker and the plan for the chosen type; Transfer Credits sends."""
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        org = Organization.objects.get(name="Quantum Lab")
        soon, later = _expiring_promo(org)
        sign_in(page, live_server, "admin@example.com")
        page.goto(f"{live_server.url}/orgs/{org.slug}/billing/transfer/")
        page.get_by_label("Recipient").select_option(label="Erin (erin@example.com)")
        page.get_by_label("Credit type").select_option("promo")
        page.get_by_label("Amount").fill("1200")
        page.get_by_role("button", name="Preview").click()
        expect(page.get_by_role("group", name="Send first")).to_be_visible()
        expect(page.get_by_test_id("transfer-expiring")).to_contain_text(
            f"1,000 credits ($10.00) of these credits expire on {_fmt(soon)}"
        )
        page.get_by_label("Latest-expiring credits first").check()
        page.get_by_role("button", name="Preview").click()
        expect(page.get_by_test_id("transfer-expiring")).to_contain_text(
            f"500 credits ($5.00) of these credits expire on {_fmt(later)}"
        )
        expect(page.get_by_test_id("transfer-expiring")).to_contain_text(
            f"700 credits ($7.00) of these credits expire on {_fmt(soon)}"
        )
        page.get_by_test_id("transfer-expiring").evaluate("el => el.scrollIntoView({block: 'center'})")
        _shot(page, "transfer-nojs", "desktop", full_page=False)
        page.get_by_role("button", name="Transfer Credits").click()
        expect(page.locator(".flash")).to_contain_text("Transferred 1,200 Promo credits ($12.00) to Erin.")
        erin = Wallet.objects.get(user__email="erin@example.com")
        pockets = Pocket.objects.filter(wallet=erin, balance__gt=0).exclude(expires_on=NEVER)
        got = sorted(pockets.values_list("expires_on", "balance"))
        assert got == [(soon, 700), (later, 500)]
    finally:
        context.close()
