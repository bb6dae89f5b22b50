"""Transfer credits in real Chromium: one member, selected members, all members, and the blocked case."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in, switch_workspace
from wallets.models import Transfer, TransferKind

pytestmark = [pytest.mark.browser]


def _open_transfer(page, live_server):
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    expect(page.get_by_role("region", name="Balance")).to_contain_text("55,000")
    page.get_by_role("region", name="Balance").get_by_role("link", name="Transfer", exact=True).click()
    dialog = page.get_by_role("dialog", name="Transfer credits")
    expect(dialog).to_be_visible()
    return dialog


def test_one_member_transfer_end_to_end_and_the_member_sees_it(page, live_server, demo):
    dialog = _open_transfer(page, live_server)
    expect(dialog.get_by_label("Credit type")).to_contain_text("Org-allocated (50,000 available)")
    expect(dialog.get_by_label("Credit type")).to_contain_text("Promo (5,000 available)")
    dialog.get_by_label("Recipient").select_option(label="Erin (erin@example.com)")
    dialog.get_by_label("Amount").fill("750")
    dialog.get_by_label("Message (optional)").fill("GPU hours for the demo")
    preview = dialog.get_by_test_id("transfer-preview")
    expect(preview).to_contain_text("Quantum Lab org wallet")
    expect(preview).to_contain_text("Erin")
    expect(preview).to_contain_text("750")
    expect(preview).to_contain_text("50,000 → 49,250")
    dialog.get_by_role("button", name="Transfer Credits").click()
    expect(dialog.get_by_test_id("transfer-success")).to_have_text("Transferred 750 Org-allocated credits to Erin.")
    # The Balance card updates without a reload, and the dialog offers a fresh form.
    expect(page.get_by_role("region", name="Balance")).to_contain_text("54,250")
    expect(dialog.get_by_label("Amount")).to_have_value("")
    expect(dialog.get_by_label("Credit type")).to_contain_text("Org-allocated (49,250 available)")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    # The Credits tab's recent movements refreshed too, with the actor and the message.
    expect(page.get_by_role("tabpanel").get_by_role("row").nth(1)).to_contain_text("GPU hours for the demo")
    expect(page.get_by_role("tabpanel").get_by_role("row").nth(1)).to_contain_text("-750")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live_server, "erin@example.com")
    wallet = page.get_by_role("region", name="Default wallet")
    expect(wallet).to_contain_text("1,000")  # the seed's monthly 250, and these 750
    expect(wallet).to_contain_text("Quantum Lab")


def test_selected_members_with_the_live_total(page, live_server, demo):
    dialog = _open_transfer(page, live_server)
    dialog.get_by_role("link", name="Selected").click()
    expect(dialog.get_by_label("Amount per member")).to_be_visible()
    expect(dialog.get_by_label("Reason (optional)")).to_have_attribute("placeholder", "Monthly allocation")
    dialog.get_by_role("checkbox", name=re.compile(r"^Dave")).check()
    dialog.get_by_placeholder("Search members by name or email").fill("erin")  # Dave stays checked
    expect(dialog.get_by_role("checkbox", name=re.compile(r"^Carol"))).to_have_count(0)
    expect(dialog.get_by_role("checkbox", name=re.compile(r"^Dave"))).to_be_checked()
    dialog.get_by_role("checkbox", name=re.compile(r"^Erin")).check()
    dialog.get_by_label("Amount per member").fill("12")
    expect(dialog.get_by_test_id("transfer-total")).to_have_text("24")
    dialog.get_by_label("Amount per member").fill("120")
    expect(dialog.get_by_test_id("transfer-total")).to_have_text("240")
    dialog.get_by_label("Reason (optional)").fill("Project kickoff")
    dialog.get_by_role("button", name="Transfer", exact=True).click()
    expect(dialog.get_by_test_id("transfer-success")).to_contain_text("to each of 2 members (240 in total)")
    expect(page.get_by_role("region", name="Balance")).to_contain_text("54,760")
    transfer = Transfer.objects.filter(kind=TransferKind.BULK_TRANSFER).latest("pk")  # the seed made one before
    assert transfer.memo == "Project kickoff"
    assert transfer.entries.count() == 3


def _settled(page):
    """Wait until htmx has finished swapping and settling, so the new form's triggers are wired."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )
    page.wait_for_timeout(50)


def test_all_members_with_the_live_total(page, live_server, demo):
    dialog = _open_transfer(page, live_server)
    dialog.get_by_role("link", name="All", exact=True).click()
    expect(dialog.get_by_test_id("all-count")).to_have_text("6")
    _settled(page)
    dialog.get_by_label("Amount per member").press_sequentially("25")
    expect(dialog.get_by_test_id("transfer-total")).to_have_text("150")
    dialog.get_by_label("Amount per member").press_sequentially("0")
    expect(dialog.get_by_test_id("transfer-total")).to_have_text("1,500")
    dialog.get_by_role("button", name="Transfer", exact=True).click()
    expect(dialog.get_by_test_id("transfer-success")).to_contain_text("to each of 6 members (1,500 in total)")
    expect(page.get_by_role("region", name="Balance")).to_contain_text("53,500")


def test_bulk_transfer_blocked_shows_the_shortfall_and_moves_nothing(page, live_server, demo):
    dialog = _open_transfer(page, live_server)
    before = Transfer.objects.count()
    dialog.get_by_role("link", name="All", exact=True).click()
    expect(dialog.get_by_test_id("all-count")).to_have_text("6")
    _settled(page)
    dialog.get_by_label("Amount per member").fill("10000")
    expect(dialog.get_by_test_id("transfer-total")).to_have_text("60,000")
    expect(dialog.get_by_test_id("transfer-shortfall")).to_contain_text("10,000 short of the 60,000 needed")
    dialog.get_by_role("button", name="Transfer", exact=True).click()
    expect(dialog.get_by_test_id("transfer-error")).to_contain_text("10,000 missing")
    expect(page.get_by_role("region", name="Balance")).to_contain_text("55,000")
    assert Transfer.objects.count() == before


def test_large_org_picks_the_recipient_with_a_type_ahead(page, live_server, demo):
    from orgs.models import Organization
    from tests.factories import bulk_members

    bulk_members(Organization.objects.get(name="Quantum Lab"), 30, prefix="researcher")
    dialog = _open_transfer(page, live_server)
    expect(dialog.locator("select[name=recipient]")).to_have_count(0)
    expect(dialog.get_by_role("radio")).to_have_count(20)  # a first page, never the whole org
    dialog.get_by_placeholder("Search 36 members by name or email").fill("erin")
    expect(dialog.get_by_role("radio")).to_have_count(1)
    dialog.get_by_role("radio", name=re.compile(r"^Erin")).check()
    dialog.get_by_label("Amount").fill("5")
    expect(dialog.get_by_test_id("transfer-preview")).to_contain_text("Erin")
    dialog.get_by_role("button", name="Transfer Credits").click()
    expect(dialog.get_by_test_id("transfer-success")).to_have_text("Transferred 5 Org-allocated credits to Erin.")
    expect(page.get_by_role("region", name="Balance")).to_contain_text("54,995")


def test_double_click_on_transfer_credits_moves_once(page, live_server, demo):
    dialog = _open_transfer(page, live_server)
    before = Transfer.objects.filter(kind=TransferKind.TRANSFER).count()
    dialog.get_by_label("Recipient").select_option(label="Carol (carol@example.com)")
    dialog.get_by_label("Amount").fill("100")
    dialog.get_by_role("button", name="Transfer Credits").dblclick()
    expect(dialog.get_by_test_id("transfer-success")).to_be_visible()
    expect(page.get_by_role("region", name="Balance")).to_contain_text("54,900")
    page.wait_for_timeout(500)
    assert Transfer.objects.filter(kind=TransferKind.TRANSFER).count() == before + 1


def test_admin_demoted_while_the_dialog_is_open_is_told_and_nothing_moves(page, live_server, demo):
    from orgs.models import Membership

    sign_in(page, live_server, "alice@example.com")
    switch_workspace(page, "Quantum Lab")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    page.get_by_role("region", name="Balance").get_by_role("link", name="Transfer", exact=True).click()
    dialog = page.get_by_role("dialog", name="Transfer credits")
    dialog.get_by_label("Recipient").select_option(label="Carol (carol@example.com)")
    dialog.get_by_label("Amount").fill("100")
    Membership.objects.filter(user__email="alice@example.com").update(role="member")
    before = Transfer.objects.count()
    dialog.get_by_role("button", name="Transfer Credits").click()
    expect(dialog.get_by_role("alert")).to_contain_text("You are not allowed to do this any more")
    assert Transfer.objects.count() == before
