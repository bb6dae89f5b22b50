"""Auto top-up in real Chromium: save a card on the stand-in's setup page, set the amounts, and watch the
top-up land (the balance is already below the threshold, so saving the settings tops up at once)."""

import os
import re

import pytest
from playwright.sync_api import expect

from purchases.models import TopUpAttempt, TopUpStatus
from tests.browser.conftest import sign_in, switch_workspace
from wallets.models import Transfer, TransferKind

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("SCREENSHOT_DIR")  # screenshots for a person to look at, only when asked for


def _shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


@pytest.fixture
def stripe_standin(live_server, settings):
    settings.STRIPE_API_BASE = f"{live_server.url}/stripe-standin"
    return live_server


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_admin_saves_a_card_and_sets_auto_top_up(page, demo, stripe_standin, width, height):
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, stripe_standin, "alice@example.com")
    switch_workspace(page, "Quantum Lab")
    page.get_by_role("link", name="Billing").click()
    section = page.get_by_test_id("auto-top-up-card")
    expect(section).to_contain_text("Save a card to buy credits automatically")  # loaded by htmx
    before = int(page.get_by_test_id("org-balance-total").inner_text().replace(",", ""))
    section.get_by_role("link", name="Auto top-up settings").click()
    expect(page.get_by_role("heading", name="Auto top-up", exact=True)).to_be_visible()
    expect(page.get_by_test_id("no-card")).to_be_visible()

    page.get_by_role("button", name="Save a card").click()
    page.wait_for_url(re.compile(r"/stripe-standin/checkout/cs_test_"))
    _shot(page, f"auto-top-up-standin-setup-{width}.png")
    page.get_by_role("button", name="Save card").click()
    page.wait_for_url(re.compile(r"/billing/auto-top-up/$"))
    expect(page.get_by_text("Card ending 4242 saved for auto top-up.")).to_be_visible()
    expect(page.get_by_test_id("card-label")).to_have_text("Visa ending 4242")

    # Bad input first: the error is next to its field and nothing is saved.
    page.get_by_label("When the org wallet is below (credits)").fill(str(before + 1_000))
    page.get_by_label("Buy enough to reach (credits)").fill(str(before + 500))
    page.get_by_label("Monthly cap (dollars)").fill("500")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#id_target_error")).to_contain_text("more than")
    _shot(page, f"auto-top-up-error-{width}.png")
    assert not TopUpAttempt.objects.exists()

    page.get_by_label("Buy enough to reach (credits)").fill(str(before + 3_000))
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Auto top-up saved.")).to_be_visible()
    # The wallet was already below the threshold: one top-up of 3,000 credits ($30.00) landed.
    expect(page.get_by_test_id("top-up-status")).to_have_text("Paid")
    expect(page.get_by_test_id("top-up-attempts")).to_contain_text("3,000 credits")
    expect(page.get_by_test_id("spent-this-month")).to_have_text("$30.00")
    _shot(page, f"auto-top-up-{width}.png")
    attempt = TopUpAttempt.objects.get()
    assert attempt.status == TopUpStatus.SUCCEEDED and attempt.credits == 3_000
    assert Transfer.objects.filter(kind=TransferKind.AUTO_TOP_UP).count() == 1

    page.get_by_role("link", name="Back to Billing").click()
    expect(page.get_by_test_id("org-balance-total")).to_have_text(f"{before + 3_000:,}")
    expect(page.get_by_test_id("auto-top-up-summary")).to_contain_text("Visa card ending 4242")
    _shot(page, f"auto-top-up-billing-{width}.png")
