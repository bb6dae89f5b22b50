"""The dialogs' URLs opened directly (a new tab, a bookmark) with JavaScript on: plain pages that work.

The Transfer, Approve/Reject and Request credits forms are htmx dialogs on Billing and Wallet; opened on
their own there is no dialog to swap into, so they must submit as ordinary forms.
"""

import re

import pytest
from playwright.sync_api import expect

from credit_requests.models import CreditRequest, CreditRequestStatus
from orgs.models import Membership, Organization
from tests.browser.conftest import sign_in
from tests.factories import ledger_snapshot
from wallets.models import Transfer, TransferKind

pytestmark = [pytest.mark.browser]


def test_standalone_transfer_page_moves_credits_with_js_on(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/transfer/")
    expect(page.get_by_role("heading", name="Transfer credits", level=1)).to_be_visible()
    page.get_by_label("Recipient").select_option(label="Erin (erin@example.com)")
    page.get_by_label("Amount").fill("750")
    expect(page.get_by_test_id("transfer-preview")).to_contain_text("50,000 → 49,250")  # htmx still previews
    before = Transfer.objects.filter(kind=TransferKind.TRANSFER).count()
    page.get_by_role("button", name="Transfer Credits").click()
    page.wait_for_url(re.compile(r"/orgs/quantum-lab/billing/$"))
    expect(page.locator(".flash[role=status]")).to_contain_text(
        "Transferred 750 Org-allocated credits ($7.50) to Erin."
    )
    expect(page.get_by_test_id("org-balance-total")).to_have_text("54,250")
    assert Transfer.objects.filter(kind=TransferKind.TRANSFER).count() == before + 1


def test_standalone_transfer_page_switches_mode_and_sends_to_selected_members(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/transfer/")
    page.get_by_role("navigation", name="Transfer to").get_by_role("link", name="Selected").click()
    expect(page).to_have_url(re.compile(r"\?mode=selected$"))
    page.get_by_role("checkbox", name=re.compile(r"^Dave")).check()
    page.get_by_role("checkbox", name=re.compile(r"^Erin")).check()
    page.get_by_label("Amount per member").fill("40")
    expect(page.get_by_test_id("transfer-total")).to_have_text("80 credits ($0.80)")
    page.get_by_role("button", name="Transfer", exact=True).click()
    page.wait_for_url(re.compile(r"/orgs/quantum-lab/billing/$"))
    expect(page.locator(".flash[role=status]")).to_contain_text(
        "Transferred 80 Org-allocated credits ($0.80) to 2 members, 40 credits ($0.40) each."
    )
    assert Transfer.objects.filter(kind=TransferKind.BULK_TRANSFER).latest("pk").amount == 80  # after the seed's


def test_standalone_transfer_page_shows_errors_in_place(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/transfer/")
    before = ledger_snapshot()
    page.get_by_label("Amount").fill("1.5")
    page.get_by_role("button", name="Transfer Credits").click()
    expect(page.get_by_role("heading", name="Transfer credits", level=1)).to_be_visible()
    expect(page.locator(".field-error").first).to_be_visible()
    assert ledger_snapshot() == before


def _carol_asks(amount=500):
    org = Organization.objects.get(slug="quantum-lab")
    carol = Membership.objects.get(org=org, user__email="carol@example.com")
    from credit_requests.services import credit_request_create

    return credit_request_create(org=org, user=carol.user, amount=amount, reason="VQE parameter sweep").request


def test_standalone_approve_page_approves_with_js_on(page, live_server, demo):
    req = _carol_asks()
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/requests/{req.pk}/approve/")
    page.get_by_label("Amount").fill("300")
    page.get_by_role("button", name="Confirm approval").click()
    page.wait_for_url(re.compile(r"/orgs/quantum-lab/billing/requests/$"))
    expect(page.get_by_role("status").first).to_contain_text("Approved 300 of 500 credits ($3.00) for Carol.")
    req.refresh_from_db()
    assert req.status == CreditRequestStatus.APPROVED and req.granted_amount == 300


def test_standalone_reject_page_rejects_with_js_on(page, live_server, demo):
    req = _carol_asks()
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/requests/{req.pk}/reject/")
    page.get_by_label("Reason (optional)").fill("Budget exhausted")
    page.get_by_role("button", name="Confirm rejection").click()
    page.wait_for_url(re.compile(r"/orgs/quantum-lab/billing/requests/$"))
    req.refresh_from_db()
    assert req.status == CreditRequestStatus.REJECTED and req.decision_reason == "Budget exhausted"


def test_standalone_request_page_sends_the_request_with_js_on(page, live_server, demo):
    sign_in(page, live_server, "carol@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/requests/new/")
    page.get_by_label("Amount").fill("500")
    page.get_by_label("Reason").fill("Hardware run")
    page.get_by_role("button", name="Send request").click()
    page.wait_for_url(re.compile(r"/wallet/$"))
    expect(page.get_by_role("status").first).to_contain_text("Your request for 500 credits was sent")
    assert CreditRequest.objects.filter(requester__email="carol@example.com", status="pending").count() == 1
