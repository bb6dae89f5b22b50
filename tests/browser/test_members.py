"""Member defaults, an invitation accepted by a new person, and a removal, in real Chromium."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from orgs.models import Organization
from tests.browser.conftest import sign_in, switch_workspace

pytestmark = [pytest.mark.browser]


def test_defaults_invite_accept_and_remove_move_credits_both_ways(page, live_server, demo):
    Organization.objects.filter(name="Quantum Lab").update(seats=10)  # staff set seats in Django admin
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    nav = page.get_by_role("navigation", name="Main")

    # Settings > Member defaults: seat credits 200, default allocation 100, seats auto-assigned.
    nav.get_by_role("link", name="Settings").click()
    page.get_by_label("Auto-assign seats").check()
    page.get_by_label("Seat assignment credits").fill("200")
    page.get_by_label("Default credit allocation").fill("100")
    page.get_by_role("button", name="Save member defaults").click()
    expect(page.get_by_role("status")).to_contain_text("Member defaults saved")

    nav.get_by_role("link", name="Billing").click()
    balance = page.get_by_role("region", name="Balance")
    expect(balance).to_contain_text("55,000")

    # Invite a new person; the link is emailed to them, never shown to the admin.
    nav.get_by_role("link", name="Members").click()
    invite = page.get_by_role("region", name="Invite by email")
    invite.get_by_label("Email").fill("newbie@example.com")
    invite.get_by_label("Role").select_option("member")
    mail.outbox.clear()
    invite.get_by_role("button", name="Send invite").click()
    expect(page.get_by_role("region", name="Invitation sent to newbie@example.com")).to_be_visible()
    expect(page.get_by_label("Invitation link")).to_have_count(0)
    [invitation_email] = mail.outbox
    link = re.search(r"https?://\S+/invite/[^/\s]+/", invitation_email.body).group(0)

    # The new person opens the link and asks for the emailed link that proves the address is theirs...
    page.get_by_role("button", name="Sign out").click()
    page.goto(link)
    expect(page.get_by_role("heading", name="Join Quantum Lab")).to_be_visible()
    page.get_by_label("Name").fill("Newbie")
    page.get_by_role("button", name="Email me a link to join").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    confirm = re.search(r"https?://[^/\s]+(/invite/\S+)", mail.outbox[-1].body).group(1)

    # ...then, behind it, chooses a password and joins.
    page.goto(f"{live_server.url}{confirm}")
    expect(page.get_by_label("Name")).to_have_value("Newbie")
    page.get_by_label("Password").fill("a-long-enough-passphrase")
    page.get_by_role("button", name="Create account and join").click()
    page.wait_for_url(f"{live_server.url}/wallet/")
    expect(page.get_by_role("status")).to_contain_text("Welcome to Quantum Lab")
    wallet = page.get_by_role("region", name="Default wallet")
    expect(page.get_by_test_id("wallet-balance-total")).to_have_text("300")
    expect(wallet).to_contain_text("Quantum Lab")

    # The org wallet dropped by the same 300.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    expect(page.get_by_test_id("org-balance-total")).to_have_text("54,700")
    seats = page.get_by_role("region", name="Seats")
    expect(seats.get_by_test_id("seats-used")).to_contain_text("2 of 10 used")  # the seed seats Carol

    # Remove them: the confirm states the credits that return, and the balance is back.
    nav.get_by_role("link", name="Members").click()
    row = page.locator("tr[data-member='newbie@example.com']")
    row.get_by_role("link", name="Remove").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("300 credits will return to the org wallet")
    dialog.get_by_role("button", name="Remove member").click()
    expect(page.get_by_role("status")).to_contain_text("300 credits returned to the org wallet")
    expect(page.locator("tr[data-member='newbie@example.com']")).to_have_count(0)
    nav.get_by_role("link", name="Billing").click()
    expect(page.get_by_test_id("org-balance-total")).to_have_text("55,000")
    expect(page.get_by_role("tabpanel")).to_contain_text("Return")
