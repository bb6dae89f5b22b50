"""What assistive technology gets, in real Chromium: the workspace disclosure, the current page, names that
say which row a button acts on, field help and errors tied to their inputs, expanders and live regions."""

import re

import pytest
from playwright.sync_api import expect

from orgs.models import Membership, Organization
from tests.browser.conftest import sign_in, switch_workspace, switcher

pytestmark = [pytest.mark.browser]


def test_workspace_switcher_is_a_disclosure_with_the_current_workspace_marked(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/wallet/")
    switch_workspace(page, "Personal")
    details = page.locator("details.switcher")
    summary = switcher(page)
    # A native <details> disclosure (the browser exposes expanded/collapsed), not an ARIA menu.
    expect(details).not_to_have_attribute("open", re.compile(".*"))
    expect(summary).to_contain_text("Switch workspace. Current: Personal")
    expect(page.get_by_role("menu")).to_have_count(0)
    expect(page.get_by_role("menuitem")).to_have_count(0)
    workspaces = page.get_by_role("list", name="Workspaces")
    expect(workspaces).to_be_hidden()
    summary.click()
    expect(details).to_have_attribute("open", "")
    expect(workspaces.get_by_role("button", name="Personal")).to_have_attribute("aria-current", "true")
    expect(workspaces.get_by_role("button", name="Quantum Lab")).not_to_have_attribute("aria-current", "true")
    # Escape closes it and gives focus back to the summary.
    workspaces.get_by_role("button", name="Quantum Lab").focus()
    page.keyboard.press("Escape")
    expect(workspaces).to_be_hidden()
    expect(details).not_to_have_attribute("open", re.compile(".*"))
    expect(summary).to_be_focused()
    # The keyboard opens it again (Enter on the summary); a click elsewhere closes it.
    page.keyboard.press("Enter")
    expect(workspaces).to_be_visible()
    page.locator("main").click(position={"x": 5, "y": 5})
    expect(workspaces).to_be_hidden()
    switch_workspace(page, "Quantum Lab")
    expect(summary).to_contain_text("Quantum Lab")
    summary.click()
    expect(workspaces.get_by_role("button", name="Quantum Lab")).to_have_attribute("aria-current", "true")
    expect(workspaces.get_by_role("button", name="Personal")).not_to_have_attribute("aria-current", "true")


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_workspace_switcher_works_without_javascript(browser, live_server, demo, size):
    context = browser.new_context(java_script_enabled=False, viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    try:
        sign_in(page, live_server, "admin@example.com")
        page.goto(f"{live_server.url}/wallet/")
        summary = switcher(page)
        workspaces = page.get_by_role("list", name="Workspaces")
        expect(workspaces).to_be_hidden()
        summary.click()  # the browser opens a <details> by itself
        expect(workspaces).to_be_visible()
        workspaces.get_by_role("button", name="Personal").click()  # a plain form POST, then a redirect
        expect(page).to_have_url(re.compile(r"/wallet/$"))
        expect(switcher(page)).to_contain_text("Personal")
        switch_workspace(page, "Quantum Lab")
        expect(page).to_have_url(re.compile(r"/orgs/quantum-lab/billing/$"))
        expect(switcher(page)).to_contain_text("Quantum Lab")
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    finally:
        context.close()


def test_sidebar_marks_the_current_page(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Wallet", "Billing", "Transactions", "Members", "Settings", "API keys"):
        nav.get_by_role("link", name=name).click()
        expect(nav.locator("[aria-current=page]")).to_have_count(1)
        expect(nav.get_by_role("link", name=name)).to_have_attribute("aria-current", "page")


def test_member_rows_name_their_controls_and_the_remove_dialog_its_heading(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    expect(page.get_by_role("button", name="Change role of Carol", exact=True)).to_be_visible()
    expect(page.get_by_label("Role of Carol", exact=True)).to_have_value("member")
    row = page.locator("tr[data-member='carol@example.com']")
    assert row.locator("label[for^=role-]").bounding_box()["width"] > 10  # a visible label, not only aria-label
    row.locator("summary").click()  # Remove is in the row menu (Part: members)
    page.get_by_role("link", name="Remove Carol", exact=True).click()
    dialog = page.get_by_role("dialog", name="Remove Carol?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("1,000 credits will return to the org wallet")
    # No one matches: a way back.
    page.goto(f"{live_server.url}/orgs/quantum-lab/members/?q=nobody-at-all")
    page.get_by_role("link", name="Clear the filters").click()
    expect(page.locator("tr[data-member='carol@example.com']")).to_be_visible()


def test_seat_rows_name_their_buttons_and_say_why_assigning_is_off(page, live_server, demo):
    org = Organization.objects.get(slug="quantum-lab")
    carol = Membership.objects.get(org=org, user__email="carol@example.com")
    assert carol.has_seat  # the seed gives Carol a seat
    Organization.objects.filter(pk=org.pk).update(seats=1)
    Membership.objects.filter(org=org, user__email="dave@example.com").update(notice="The org wallet was short.")
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/seats/")
    expect(page.get_by_role("button", name="Revoke seat of Carol", exact=True)).to_be_enabled()
    # No free seat: no Assign control at all, and the row says why.
    expect(page.get_by_role("link", name="Assign seat to Dave", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Assign seat to Dave", exact=True)).to_have_count(0)
    dave = page.locator("tr[data-member='dave@example.com']")
    expect(dave).to_contain_text("No free seat")
    expect(dave).to_contain_text("The org wallet was short.")  # the reason is on screen, not in a tooltip


def test_field_help_and_errors_are_tied_to_the_input(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/settings/member-defaults/")
    field = page.get_by_label("Seat assignment credits")
    field.fill("-5")
    page.get_by_role("button", name="Save member defaults").click()
    field = page.get_by_label("Seat assignment credits")
    expect(field).to_have_attribute("aria-invalid", "true")
    described = field.get_attribute("aria-describedby").split()
    assert described, "the input points at its help and error"
    for ref in described:
        expect(page.locator(f"#{ref}")).to_have_count(1)
    error_id = next(ref for ref in described if ref.endswith("_error"))
    expect(page.locator(f"#{error_id}")).to_contain_text(re.compile(r"\S"))


def test_bulk_recipients_expander_says_whether_it_is_open(page, live_server, demo):
    from wallets.models import CreditType
    from wallets.services import org_bulk_transfer

    org = Organization.objects.get(slug="quantum-lab")
    org_bulk_transfer(org=org, credit_type=CreditType.objects.get(slug="promo"), amount_per_member=10, memo="Kickoff")
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Transactions").click()
    expander = page.locator("#transactions-list a[data-expander]").first
    box = page.locator("#" + expander.get_attribute("aria-controls"))
    expect(expander).to_have_attribute("aria-expanded", "false")
    expander.click()
    expect(expander).to_have_attribute("aria-expanded", "true")
    expect(box.get_by_role("listitem").first).to_be_visible()
    expander.click()
    expect(expander).to_have_attribute("aria-expanded", "false")
    expect(box).to_be_hidden()
    expander.click()
    expect(expander).to_have_attribute("aria-expanded", "true")
    expect(box).to_be_visible()
    # A filter change is announced by a live region that stays in the page.
    page.get_by_label("Kind").select_option(label="Purchase")
    expect(page.locator("#transactions-announce")).to_have_text("3 transactions shown matching the filters.")
    expect(page.locator("#transactions-announce")).to_have_attribute("aria-live", "polite")


def test_wallet_kind_filter_has_a_visible_label_and_announces_the_result(page, live_server, demo):
    sign_in(page, live_server, "carol@example.com")
    movements = page.get_by_role("region", name="Transactions")
    assert movements.locator("label[for=movement-kind]").bounding_box()["width"] > 10
    movements.get_by_label("Kind").select_option(label="Transfer")
    expect(page.locator("#movements-announce")).to_have_text(re.compile(r"^\d+ transactions? shown of this kind\.$"))


def test_a_429_in_a_dialog_says_when_to_try_again(page, live_server, demo, settings):
    sign_in(page, live_server, "carol@example.com")
    switch_workspace(page, "Quantum Lab")
    settings.RATE_LIMIT_REQUESTS = (1, 60)
    page.get_by_role("link", name="Request credits").click()
    dialog = page.get_by_role("dialog", name="Request credits")
    dialog.get_by_label("Amount").fill("5")
    dialog.get_by_label("Reason").fill("one")
    dialog.get_by_role("button", name="Send request").click()
    expect(dialog).to_contain_text("was sent")
    dialog.get_by_role("button", name="Close").click()
    page.get_by_role("link", name="Request credits").click()
    dialog.get_by_label("Amount").fill("5")
    dialog.get_by_label("Reason").fill("two")
    dialog.get_by_role("button", name="Send request").click()
    expect(dialog.get_by_role("alert")).to_contain_text(re.compile(r"Too many requests — try again in \d+ seconds?\."))
