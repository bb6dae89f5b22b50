"""Credit requests end to end in real Chromium: a member asks, an admin approves for less, then rejects."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in, switch_workspace

pytestmark = [pytest.mark.browser]


def _sign_out(page):
    page.get_by_role("button", name="Sign out").click()


def _open_requests_tab(page):
    switch_workspace(page, "Quantum Lab")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    page.get_by_role("tab", name="Credit Requests").click()


def _ask(page, amount, reason):
    page.get_by_role("link", name="Request credits").click()
    dialog = page.get_by_role("dialog", name="Request credits")
    dialog.get_by_label("Amount").fill(str(amount))
    dialog.get_by_label("Reason").fill(reason)
    dialog.get_by_role("button", name="Send request").click()
    expect(dialog).to_contain_text(f"Your request for {amount} credits was sent")
    dialog.get_by_role("button", name="Close").click()


def test_member_requests_admin_approves_less_then_rejects_with_reason(page, live_server, demo):
    # Carol (member, 1,000 credits) asks Quantum Lab for 500.
    sign_in(page, live_server, "carol@example.com")
    switch_workspace(page, "Quantum Lab")
    expect(page.get_by_test_id("wallet-balance-total")).to_have_text("1,000")
    _ask(page, 500, "VQE parameter sweep")
    panel = page.get_by_role("region", name="My credit requests")
    expect(panel).to_contain_text("Pending")
    _sign_out(page)

    # The owner sees it on the Credit Requests tab (badge 2: the seed leaves Erin's pending), approves 300
    # instead of 500.
    sign_in(page, live_server, "admin@example.com")
    _open_requests_tab(page)
    expect(page.get_by_test_id("pending-requests-badge")).to_have_text("2")
    pending = page.get_by_role("region", name="Pending credit requests")
    expect(pending).to_contain_text("VQE parameter sweep")
    expect(pending).to_contain_text("500")
    pending.get_by_role("link", name="Approve 500 credits for Carol").click()
    dialog = page.locator("#request-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Amount").fill("300")
    dialog.get_by_role("button", name="Confirm approval").click()
    expect(dialog).to_contain_text("Approved 300 credits for Carol")
    dialog.get_by_role("button", name="Close").click()
    expect(pending).not_to_contain_text("VQE parameter sweep")
    expect(pending).to_contain_text("Error-mitigation experiments")  # the seed's, still pending
    expect(page.get_by_test_id("pending-requests-badge")).to_have_text("1")
    expect(page.get_by_role("navigation", name="Credit requests")).not_to_contain_text("(2)")
    expect(page.get_by_test_id("org-balance-total")).to_have_text("54,700")  # Balance card refreshed itself
    _sign_out(page)

    # Carol has 300 more and sees "Approved 300"; she asks again.
    sign_in(page, live_server, "carol@example.com")
    switch_workspace(page, "Quantum Lab")
    expect(page.get_by_test_id("wallet-balance-total")).to_have_text("1,300")
    panel = page.get_by_role("region", name="My credit requests")
    expect(panel).to_contain_text("Approved 300")
    _ask(page, 800, "Hardware run on the 27-qubit device")
    expect(panel).to_contain_text("Pending")
    _sign_out(page)

    # The owner rejects it with a reason.
    sign_in(page, live_server, "admin@example.com")
    _open_requests_tab(page)
    pending = page.get_by_role("region", name="Pending credit requests")
    pending.get_by_role("link", name="Reject the request from Carol").click()
    dialog = page.locator("#request-dialog")
    dialog.get_by_label("Reason (optional)").fill("Budget exhausted")
    dialog.get_by_role("button", name="Confirm rejection").click()
    expect(dialog).to_contain_text("Rejected the request from Carol")
    dialog.get_by_role("button", name="Close").click()
    expect(pending).not_to_contain_text("Hardware run on the 27-qubit device")
    page.get_by_role("link", name="History").click()
    history = page.get_by_role("region", name="Decided credit requests")
    # The seed's decided requests are there too (one rejected with "Budget exhausted"): look at Carol's rows.
    expect(history.get_by_role("row").filter(has_text="Hardware run on the 27-qubit device")).to_contain_text(
        "Budget exhausted"
    )
    expect(history.get_by_role("row").filter(has_text="VQE parameter sweep")).to_contain_text("Approved")
    _sign_out(page)

    # Carol sees the reason on her wallet.
    sign_in(page, live_server, "carol@example.com")
    switch_workspace(page, "Quantum Lab")
    panel = page.get_by_role("region", name="My credit requests")
    expect(panel).to_contain_text("Rejected")
    expect(panel).to_contain_text("Budget exhausted")
    expect(page.get_by_test_id("wallet-balance-total")).to_have_text("1,300")


def test_member_cancels_a_pending_request(page, live_server, demo):
    sign_in(page, live_server, "erin@example.com")
    switch_workspace(page, "Quantum Lab")
    _ask(page, 50, "Quick test")
    panel = page.get_by_role("region", name="My credit requests")
    panel.get_by_role("button", name="Cancel the request for 50 credits").click()
    expect(panel).to_contain_text("Cancelled")
    expect(panel.get_by_role("button", name="Cancel the request for 50 credits")).to_have_count(0)
