"""A newcomer's first minutes, in real Chromium against the live server."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in, switch_workspace, switcher

pytestmark = [pytest.mark.browser]


def test_admin_signs_in_switches_to_quantum_lab_and_reads_the_balance(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    # First run: the admin of one org lands on its Billing page, with the org as the workspace.
    expect(page).to_have_url(re.compile(r"/orgs/quantum-lab/billing/$"))
    expect(switcher(page)).to_contain_text("Quantum Lab")
    switch_workspace(page, "Personal")
    expect(switcher(page)).to_contain_text("Personal")
    switch_workspace(page, "Quantum Lab")
    expect(switcher(page)).to_contain_text("Quantum Lab")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    balance = page.get_by_role("region", name="Balance")
    expect(balance).to_contain_text("55,000")
    expect(balance).to_contain_text("Org-allocated 50,000")
    expect(balance).to_contain_text("Promo 5,000")
    # Tabs switch with htmx and change the URL; a reload shows the same tab.
    page.get_by_role("tab", name="Credit Requests").click()
    expect(page).to_have_url(re.compile(r"/billing/requests/$"))
    expect(page.get_by_role("tab", name="Credit Requests")).to_have_attribute("aria-selected", "true")
    page.reload()
    expect(page.get_by_role("tab", name="Credit Requests")).to_have_attribute("aria-selected", "true")
    # The seed leaves one request pending (Erin's), so the tab has a badge and a row.
    expect(page.get_by_test_id("pending-requests-badge")).to_have_text("1")
    expect(page.get_by_role("tabpanel")).to_contain_text("Error-mitigation experiments")


def test_member_sees_own_wallet_and_gets_403_on_billing(page, live_server, demo):
    sign_in(page, live_server, "carol@example.com")
    wallet = page.get_by_role("region", name="Default wallet")
    expect(wallet).to_contain_text("1,000")
    expect(wallet).to_contain_text("Quantum Lab")
    response = page.goto(f"{live_server.url}/orgs/quantum-lab/billing/")
    assert response.status == 403


@pytest.mark.parametrize(
    ("email", "landing"),
    [("admin@example.com", r"/orgs/quantum-lab/billing/$"), ("carol@example.com", r"/wallet/$")],
    ids=["admin", "member"],
)
def test_first_run_lands_in_the_users_org(page, live_server, demo, email, landing):
    """One org: sign-in lands in it. An admin gets its Billing page; a member its wallet, Request credits in view."""
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, email)
    expect(page).to_have_url(re.compile(landing))
    expect(switcher(page)).to_contain_text("Quantum Lab")
    if email == "carol@example.com":
        expect(page.get_by_role("link", name="Request credits")).to_be_in_viewport()
