"""Low-balance alerts in real Chromium: an admin sets a threshold, a transfer crosses it, the Balance card shows
the banner and every owner/admin got one email; a member sets their own alert on the Wallet page."""

import os

import pytest
from django.core import mail
from playwright.sync_api import expect

from orgs.models import Organization
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser]
SHOTS = os.environ.get("SCREENSHOT_DIR")
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}


def _shots(page, name):
    """Both sizes, for a person to look at (only when SCREENSHOT_DIR is set); the page is left at desktop size.
    The banner is at the top of a long page: its shots are the first screen."""
    if not SHOTS:
        return
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=os.path.join(SHOTS, f"alerts-{name}-{size}.png"), full_page=name != "banner")
    page.set_viewport_size({"width": 1280, "height": 800})


@pytest.mark.parametrize("size", list(SIZES))
def test_set_a_threshold_cross_it_and_see_the_banner(page, live_server, demo, size):
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    org = Organization.objects.get(name="Quantum Lab")
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/{org.slug}/billing/")
    balance = page.get_by_role("region", name="Balance")
    expect(balance).to_contain_text("55,000")
    balance.get_by_role("link", name="Low-balance alerts").click()
    expect(page.get_by_role("heading", name="Low-balance alerts", level=1)).to_be_visible()

    page.get_by_label("Total balance").fill("54,500")
    page.get_by_label("Org-allocated balance").fill("1.5")  # bad input first: nothing saved
    page.get_by_role("button", name="Save alerts").click()
    expect(page.locator("#alerts_type_org-allocated_error")).to_contain_text("Credits are whole numbers")
    expect(page.get_by_label("Total balance")).to_have_value("54,500")  # what they typed is kept
    page.get_by_label("Org-allocated balance").fill("")
    page.get_by_role("button", name="Save alerts").click()
    expect(page.locator(".flash")).to_contain_text("Low-balance alerts saved.")
    expect(page.get_by_test_id("alerts-state")).to_contain_text("Total below 54,500 credits ($545.00): Watching")
    if size == "desktop":
        _shots(page, "settings")

    page.get_by_role("link", name="Back to Billing").click()
    balance = page.get_by_role("region", name="Balance")
    expect(balance.get_by_test_id("alert-settings-summary")).to_contain_text("total below 54,500")
    expect(balance.get_by_test_id("low-balance-banner")).to_have_count(0)
    assert mail.outbox == []

    # A transfer that takes the balance from 55,000 to 54,250: below 54,500.
    balance.get_by_role("link", name="Transfer", exact=True).click()
    dialog = page.get_by_role("dialog", name="Transfer credits")
    dialog.get_by_label("Recipient").select_option(label="Erin (erin@example.com)")
    dialog.get_by_label("Amount").fill("750")
    dialog.get_by_role("button", name="Transfer Credits").click()
    expect(dialog.get_by_test_id("transfer-success")).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    banner = page.get_by_role("region", name="Balance").get_by_test_id("low-balance-banner")
    expect(banner).to_have_text("Balance is below your alert threshold of 54,500 credits ($545.00).")  # no reload
    page.reload()
    expect(page.get_by_test_id("low-balance-banner")).to_be_visible()
    if size == "desktop":
        _shots(page, "banner")
    admins = sorted(
        org.memberships.filter(role__in=["owner", "admin"], status="active").values_list("user__email", flat=True)
    )
    assert sorted(to for m in mail.outbox for to in m.to) == admins  # one email each


def test_a_member_sets_their_own_alert_on_the_wallet_page(page, live_server, demo):
    sign_in(page, live_server, "erin@example.com")
    page.goto(f"{live_server.url}/wallet/")
    card = page.get_by_role("region", name="Low-balance alert")
    card.get_by_label("Tell me when my balance goes below").fill("-3")
    card.get_by_role("button", name="Save alert").click()
    expect(page.get_by_role("region", name="Low-balance alert")).to_contain_text("Enter an amount greater than zero.")
    card = page.get_by_role("region", name="Low-balance alert")
    card.get_by_label("Tell me when my balance goes below").fill("100000")
    card.get_by_role("button", name="Save alert").click()
    expect(page.locator(".flash")).to_contain_text("Low-balance alert set: below 100,000 credits ($1,000.00).")
    # Set above her balance: it fires once, at once (docs/alerts.md).
    expect(page.get_by_test_id("member-alert-fired")).to_contain_text("below your alert threshold of 100,000")
    assert [m.to for m in mail.outbox] == [["erin@example.com"]]
    _shots(page, "wallet")


def test_the_settings_work_without_javascript_and_by_keyboard(browser, live_server, demo):
    """Plain forms: with JavaScript off, typing and pressing Enter saves; the banner is server-rendered."""
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        org = Organization.objects.get(name="Quantum Lab")
        sign_in(page, live_server, "admin@example.com")
        page.goto(f"{live_server.url}/orgs/{org.slug}/billing/alerts/")
        page.get_by_label("Promo balance").focus()
        page.keyboard.type("6000")
        page.keyboard.press("Enter")
        expect(page.locator(".flash")).to_contain_text("Low-balance alerts saved.")
        expect(page.get_by_test_id("alerts-state")).to_contain_text("Promo below 6,000 credits ($60.00): Below since")
        page.goto(f"{live_server.url}/orgs/{org.slug}/billing/")
        expect(page.get_by_test_id("low-balance-banner")).to_have_text(
            "Promo balance is below your alert threshold of 6,000 credits ($60.00)."
        )
    finally:
        context.close()
