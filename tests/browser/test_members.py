"""Member defaults, an invitation accepted by a new person, and a removal, in real Chromium."""

import os
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
    expect(page.locator(".flash")).to_contain_text("Member defaults saved")

    nav.get_by_role("link", name="Billing").click()
    balance = page.get_by_role("region", name="Balance")
    expect(balance).to_contain_text("55,000")

    # Invite a new person; the link is emailed to them, never shown to the admin.
    nav.get_by_role("link", name="Members").click()
    page.get_by_role("link", name="Invite", exact=True).click()  # the invite form is in a dialog
    invite = page.get_by_role("dialog", name="Invite by email")
    invite.get_by_label("Email").fill("newbie@example.com")
    invite.get_by_label("Role").select_option("member")
    mail.outbox.clear()
    invite.get_by_role("button", name="Send invite").click()
    expect(page.locator(".flash")).to_contain_text("Invitation sent to newbie@example.com")  # said once
    expect(page.locator("tr[data-invite='newbie@example.com']")).to_contain_text(
        "300 credits ($3.00)"
    )  # 100 default + 200 seat
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
    expect(page.locator(".flash")).to_contain_text("Welcome to Quantum Lab")
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
    row.locator("summary").click()  # the row menu
    row.get_by_role("link", name="Remove").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("300 credits will return to the org wallet")
    dialog.get_by_role("button", name="Remove member").click()
    expect(page.locator(".flash")).to_contain_text("300 credits returned to the org wallet")
    expect(page.locator("tr[data-member='newbie@example.com']")).to_have_count(0)
    nav.get_by_role("link", name="Billing").click()
    expect(page.get_by_test_id("org-balance-total")).to_have_text("55,000")
    expect(page.get_by_role("tabpanel")).to_contain_text("Return")


MEMBERS = "/orgs/quantum-lab/members/"


def _admin(page, live_server):
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")


def _fits(page):
    """Nothing scrolls sideways, and every stacked card's cells stay inside their row."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    spill = page.evaluate(
        """() => [...document.querySelectorAll('table')].filter(t => {
             const card = t.closest('.card'); if (!card) return false;
             return t.getBoundingClientRect().right > card.getBoundingClientRect().right + 1; }).length"""
    )
    assert spill == 0


def test_seat_assignment_and_admin_promotion_ask_first_in_a_dialog(page, live_server, demo):
    page.set_viewport_size({"width": 1280, "height": 800})
    _admin(page, live_server)
    page.goto(live_server.url + MEMBERS)
    dave = page.locator("tr[data-member='dave@example.com']")
    dave.locator("summary").click()
    dave.get_by_role("link", name=re.compile("Assign seat to")).click()
    dialog = page.get_by_role("dialog", name=re.compile("Assign a seat to"))
    expect(dialog).to_contain_text("200 credits ($2.00) move from the org wallet to")
    _shot(page, "seat-dialog-1280.png")
    page.evaluate("window.notReloaded = true")
    dialog.get_by_role("link", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(dave.locator("summary")).to_be_focused()  # focus back on the row menu's button
    assert page.evaluate("window.notReloaded === true")  # Cancel closed the dialog; no page load
    expect(dave.get_by_text("Seat", exact=True)).to_have_count(0)
    dave.locator("summary").click()
    dave.get_by_role("link", name=re.compile("Assign seat to")).click()
    page.get_by_role("dialog").get_by_role("button", name="Assign seat").click()
    expect(page.locator(".flash")).to_contain_text("200 credits ($2.00) moved from the org wallet to them")
    expect(page.locator("tr[data-member='dave@example.com']")).to_contain_text("Seat")

    # Promoting to Admin asks; Cancel puts the select back on the role they have.
    role = page.get_by_label("Role of Dave", exact=True)
    page.evaluate("window.notReloaded = true")
    role.select_option("admin")
    dialog = page.get_by_role("dialog", name=re.compile("an Admin"))
    expect(dialog).to_contain_text("will be able to buy credits")
    _shot(page, "admin-dialog-1280.png")
    dialog.get_by_role("link", name="Cancel").click()
    expect(role).to_have_value("member")  # back on the role Dave has (no page load: the select is reset)
    assert page.evaluate("window.notReloaded === true")
    role.select_option("manager")  # no confirmation needed: saved, and a toast says so
    expect(page.locator("#toasts")).to_contain_text("is now Manager")
    role.select_option("admin")
    page.get_by_role("dialog").get_by_role("button", name="Make admin").click()
    expect(page.locator(".flash")).to_contain_text("is now Admin")
    expect(page.get_by_label("Role of Dave", exact=True)).to_have_value("admin")
    page.get_by_role("link", name="Invite", exact=True).click()
    expect(page.get_by_role("dialog", name="Invite by email")).to_be_visible()
    _shot(page, "invite-dialog-1280.png")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.get_by_role("link", name="Invite", exact=True)).to_be_focused()  # focus returns to the opener


def _shot(page, name):
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], name))


def test_without_javascript_invite_seat_and_promotion_are_pages(browser, live_server, demo):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    _admin(page, live_server)
    page.goto(live_server.url + MEMBERS)
    page.get_by_role("link", name="Invite", exact=True).click()
    expect(page.get_by_role("heading", name="Invite people")).to_be_visible()
    page.get_by_label("Email", exact=True).fill("nojs@example.com")
    page.get_by_role("button", name="Send invite").click()
    expect(page.locator(".flash")).to_contain_text("Invitation sent to nojs@example.com")
    row = page.locator("tr[data-invite='nojs@example.com']")
    row.get_by_role("button", name="Revoke invite for nojs@example.com").click()
    expect(page.locator(".flash")).to_contain_text("revoked")
    expect(page.locator("tr[data-invite='nojs@example.com']")).to_have_count(0)

    dave = page.locator("tr[data-member='dave@example.com']")
    dave.locator("summary").click()
    dave.get_by_role("link", name=re.compile("Assign seat to")).click()
    expect(page.get_by_test_id("confirm-summary")).to_contain_text("200 credits ($2.00) move from the org wallet")
    page.get_by_role("button", name="Assign seat").click()
    expect(page.locator(".flash")).to_contain_text("Seat assigned to")

    page.get_by_label("Role of Dave", exact=True).select_option("admin")
    page.get_by_role("button", name="Change role of Dave").click()
    expect(page.get_by_test_id("member-confirm")).to_contain_text("will be able to buy credits")
    page.get_by_role("button", name="Make admin").click()
    expect(page.locator(".flash")).to_contain_text("is now Admin")
    context.close()


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)])
def test_members_seats_settings_and_api_keys_fit(page, live_server, demo, size):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    _admin(page, live_server)
    page.goto(live_server.url + "/orgs/quantum-lab/members/?invite=1")
    page.get_by_label("Email", exact=True).fill("pending@example.com")
    page.get_by_role("button", name="Send invite").click()
    for path in (MEMBERS, "/orgs/quantum-lab/seats/", "/orgs/quantum-lab/settings/member-defaults/"):
        page.goto(live_server.url + path)
        _fits(page)
        if os.environ.get("SCREENSHOT_DIR"):
            name = path.strip("/").replace("/", "-")
            page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], f"{name}-{size[0]}.png"), full_page=True)
    page.goto(live_server.url + MEMBERS)
    carol = page.locator("tr[data-member='carol@example.com']")
    expect(carol).to_contain_text("credits ($")  # the amount stays in view
    expect(carol.locator("summary")).to_be_visible()  # and the actions
    expect(
        page.locator("tr[data-invite='pending@example.com']").get_by_role("button", name=re.compile("Revoke"))
    ).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("A key with quite a long descriptive name for CI")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_test_id("new-api-key")).to_be_visible()
    _fits(page)
    expect(page.get_by_role("button", name=re.compile("^Revoke"))).to_be_visible()
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], f"api-keys-{size[0]}.png"), full_page=True)
