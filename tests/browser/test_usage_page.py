"""The Usage page in real Chromium: from the Billing tabs, a range error next to its field, presets, pages of
50, the CSV download, and how it looks at 1280x800 and 390x844 (screenshots in SCREENSHOT_DIR when set)."""

import csv
import io
import os
import re

import pytest
from playwright.sync_api import expect

from orgs.models import Organization
from tests.browser.conftest import sign_in, switch_workspace
from tests.factories import bulk_members, fund
from wallets.models import CreditType
from wallets.services import member_charge_usage, org_transfer_to_member

pytestmark = [pytest.mark.browser]

SHOTS = os.environ.get("SCREENSHOT_DIR")


def shot(page, name, full_page=True):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, name), full_page=full_page)


@pytest.fixture
def busy(demo):
    """The demo org plus 60 members who each used a little (more than one page of 50)."""
    org = Organization.objects.get(slug="quantum-lab")
    fund(org, 10_000)
    ct = CreditType.objects.get(slug="org-allocated")
    for i, m in enumerate(bulk_members(org, 60, prefix="user")):
        org_transfer_to_member(org=org, membership_id=m.pk, credit_type=ct, amount=100)
        member_charge_usage(org=org, membership_id=m.pk, amount=5 + i)
    return org


def fits(page):
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_usage_page_from_the_billing_tabs(page, live_server, busy):
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/")
    page.get_by_role("tab", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    # It opens on the last 30 days, the burn rate's window, then shows this month on request.
    expect(page.get_by_role("combobox", name="Range")).to_have_value("30d")
    page.get_by_role("combobox", name="Range").select_option("month")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("combobox", name="Range")).to_have_value("month")
    rows = page.get_by_test_id("usage-member-row")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("64")  # the most: 5 + 59 credits
    expect(page.get_by_test_id("usage-page-chart")).to_be_visible()
    assert fits(page)
    shot(page, "usage-1280.png")

    page.get_by_role("link", name="Next 50 →").click()  # htmx: only the results change; the URL follows
    members = int(page.get_by_test_id("usage-members").inner_text().split()[0])
    assert members >= 60  # the 60, and the demo's own usage when it falls in this month
    expect(rows).to_have_count(members - 50)
    expect(page).to_have_url(re.compile(r"cursor="))
    page.get_by_role("link", name="First page").click()
    expect(rows).to_have_count(50)

    # A custom range the wrong way round: the message is beside the field, the figures are gone.
    page.get_by_role("combobox", name="Range").select_option("custom")
    page.get_by_label("From (custom)", exact=True).fill("2026-12-09")
    page.get_by_label("To (custom)", exact=True).fill("2026-12-01")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("to-error")).to_have_text("The end date is before the start date.")
    expect(page.get_by_label("To (custom)", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(rows).to_have_count(0)
    shot(page, "usage-error-1280.png")

    page.get_by_role("combobox", name="Range").select_option("7d")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(50)
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    body = open(download.value.path(), encoding="utf-8").read()  # noqa: SIM115
    lines = list(csv.reader(io.StringIO(body)))
    assert lines[0] == ["date", "member", "email", "credits", "usd"]
    total = page.get_by_test_id("usage-total").inner_text()
    assert f"{sum(int(r[3]) for r in lines[1:]):,} credits" in total


def test_usage_page_on_a_phone(page, live_server, busy):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/usage/?range=30d")
    expect(page.get_by_test_id("usage-member-row")).to_have_count(50)
    assert fits(page), "the page scrolls sideways on a phone"
    shot(page, "usage-390.png")
    shot(page, "usage-390-top.png", full_page=False)
    # Keyboard: choose a preset and submit with Enter on the button.
    page.get_by_role("combobox", name="Range").select_option("7d")
    page.get_by_role("button", name="Show").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"range=7d"))
