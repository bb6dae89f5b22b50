"""Transfer credits in real Chromium: one member, selected members, all members, and the blocked case."""

import re

import pytest
from playwright.sync_api import expect

from orgs.models import Organization
from tests.browser.conftest import sign_in
from wallets.models import Transfer, TransferKind

pytestmark = [pytest.mark.browser]


def _billing_url(live_server) -> str:
    return f"{live_server.url}/orgs/{Organization.objects.get(name='Quantum Lab').slug}/billing/"


def _open_transfer(page, live_server, email="admin@example.com"):
    sign_in(page, live_server, email)
    page.goto(_billing_url(live_server))  # wherever sign-in lands
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
    expect(preview).to_contain_text("750 credits ($7.50)")
    expect(preview).to_contain_text("50,000 → 49,250 credits ($492.50)")
    expect(dialog.get_by_test_id("transfer-total")).to_have_text("750 credits ($7.50)")
    dialog.get_by_role("button", name="Transfer Credits").click()
    done = "Transferred 750 Org-allocated credits ($7.50) to Erin."
    expect(dialog.get_by_test_id("transfer-success")).to_have_text(done)  # the dialog's result view
    expect(page.locator("#toasts")).to_contain_text(done)  # and a toast
    expect(dialog.get_by_role("button", name="Done")).to_be_focused()
    # The Balance card updates without a reload; "Transfer more" offers a fresh form.
    expect(page.get_by_role("region", name="Balance")).to_contain_text("54,250")
    dialog.get_by_role("link", name="Transfer more").click()
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
    expect(dialog.get_by_test_id("transfer-total")).to_have_text("24 credits ($0.24)")
    dialog.get_by_label("Amount per member").fill("120")
    expect(dialog.get_by_test_id("transfer-total")).to_have_text("240 credits ($2.40)")
    expect(dialog.get_by_test_id("transfer-amount")).to_have_text("120 credits ($1.20)")
    dialog.get_by_label("Reason (optional)").fill("Project kickoff")
    dialog.get_by_role("button", name="Transfer", exact=True).click()
    done = "Transferred 240 Org-allocated credits ($2.40) to 2 members, 120 credits ($1.20) each."
    expect(dialog.get_by_test_id("transfer-success")).to_have_text(done)
    expect(page.locator("#toasts")).to_contain_text(done)
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
    expect(dialog.get_by_test_id("transfer-total")).to_have_text("150 credits ($1.50)")
    dialog.get_by_label("Amount per member").press_sequentially("0")
    expect(dialog.get_by_test_id("transfer-total")).to_have_text("1,500 credits ($15.00)")
    dialog.get_by_role("button", name="Transfer", exact=True).click()
    done = "Transferred 1,500 Org-allocated credits ($15.00) to 6 members, 250 credits ($2.50) each."
    expect(dialog.get_by_test_id("transfer-success")).to_have_text(done)
    expect(page.locator("#toasts")).to_contain_text(done)
    expect(page.get_by_role("region", name="Balance")).to_contain_text("53,500")


def test_bulk_transfer_blocked_shows_the_shortfall_and_moves_nothing(page, live_server, demo):
    dialog = _open_transfer(page, live_server)
    before = Transfer.objects.count()
    dialog.get_by_role("link", name="All", exact=True).click()
    expect(dialog.get_by_test_id("all-count")).to_have_text("6")
    _settled(page)
    dialog.get_by_label("Amount per member").fill("10000")
    expect(dialog.get_by_test_id("transfer-total")).to_have_text("60,000 credits ($600.00)")
    expect(dialog.get_by_test_id("transfer-shortfall")).to_contain_text("10,000 short of the 60,000 needed")
    expect(dialog.get_by_test_id("transfer-footer-shortfall")).to_have_text("10,000 short")
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
    expect(dialog.get_by_test_id("transfer-success")).to_have_text(
        "Transferred 5 Org-allocated credits ($0.05) to Erin."
    )
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

    dialog = _open_transfer(page, live_server, "alice@example.com")
    dialog.get_by_label("Recipient").select_option(label="Carol (carol@example.com)")
    dialog.get_by_label("Amount").fill("100")
    Membership.objects.filter(user__email="alice@example.com").update(role="member")
    before = Transfer.objects.count()
    dialog.get_by_role("button", name="Transfer Credits").click()
    expect(dialog.get_by_role("alert")).to_contain_text("You are not allowed to do this any more")
    assert Transfer.objects.count() == before


# --- the dialog pattern: a closed dialog stays closed, focus goes back to the Transfer button -----------------


def _transfer_button(page):
    return page.get_by_role("region", name="Balance").get_by_role("link", name="Transfer", exact=True)


@pytest.mark.parametrize("close", ["Cancel", "Close", "Escape"])
def test_closed_dialog_stays_closed_when_the_late_preview_reply_arrives(page, live_server, demo, close):
    dialog = _open_transfer(page, live_server)
    # Cancel sits left of the primary button in the footer; × (named "Close") in the header.
    buttons = dialog.locator(".dialog-actions button:visible")
    expect(buttons).to_have_text(["Cancel", "Transfer Credits"])
    amount = dialog.get_by_label("Amount")
    # The preview is debounced (300 ms), so closing right after typing means its request leaves, and its reply
    # comes back, while the dialog is already closed.
    with page.expect_response(lambda r: "/transfer/preview/" in r.url) as reply:
        amount.fill("750")
        if close == "Escape":
            amount.press("Escape")
        else:
            dialog.get_by_role("button", name=close, exact=True).click()
        expect(dialog).to_be_hidden()
    assert reply.value.ok
    page.wait_for_timeout(400)  # past the swap and settle of the late reply
    expect(dialog).to_be_hidden()
    assert page.evaluate("() => document.getElementById('transfer-dialog').open") is False
    expect(_transfer_button(page)).to_be_focused()


# --- the sticky footer: the total and the Transfer button are always in view -----------------------------------


TOTAL = '#transfer-dialog [data-testid="transfer-total"]'
TRANSFER_BUTTON = "#transfer-dialog .transfer-footer button.primary"
RESULT = '#transfer-dialog [data-testid="transfer-success"]'


def _assert_fully_visible(page, selector: str) -> None:
    """Inside the viewport and the topmost element at its centre (not scrolled or clipped away inside the dialog).
    Polled for a moment, so a preview reply that is still swapping the footer does not count."""
    page.wait_for_function(
        """selector => {
            const el = document.querySelector(selector);
            if (!el) return false;
            const r = el.getBoundingClientRect();
            if (r.width === 0 || r.left < 0 || r.top < 0 || r.right > innerWidth || r.bottom > innerHeight) return false;
            return el.contains(document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2));
        }""",
        arg=selector,
        timeout=5_000,
    )


def _no_sideways_scroll(page):
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate(
        "() => { const d = document.getElementById('transfer-dialog');"
        " return !d || !d.open || d.scrollWidth <= d.clientWidth; }"
    )


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
@pytest.mark.parametrize("mode", ["Selected", "All"])
def test_total_and_transfer_button_stay_in_view_and_the_result_is_seen(page, live_server, demo, size, mode):
    from tests.factories import bulk_members

    bulk_members(Organization.objects.get(name="Quantum Lab"), 30, prefix="researcher")  # a long member list
    page.set_viewport_size({"width": size[0], "height": size[1]})
    dialog = _open_transfer(page, live_server)
    dialog.get_by_role("link", name=mode, exact=True).click()
    expect(dialog.get_by_label("Amount per member")).to_be_visible()
    _settled(page)
    if mode == "Selected":
        search = dialog.get_by_placeholder("Search members by name or email")
        for name in ("Dave", "Erin"):
            search.fill(name.lower())
            dialog.get_by_role("checkbox", name=re.compile(f"^{name}")).check()
        search.fill("")  # the full list again: the ticked two, then the first 20 others
        expect(dialog.get_by_role("checkbox", name=re.compile(r"^researcher"))).to_have_count(20)
    dialog.get_by_label("Amount per member").fill("100")
    total = dialog.get_by_test_id("transfer-total")
    expect(total).to_have_text("200 credits ($2.00)" if mode == "Selected" else "3,600 credits ($36.00)")
    _settled(page)  # no preview reply still swapping the footer's total
    button = dialog.get_by_role("button", name="Transfer", exact=True)
    scrolls = dialog.evaluate("d => d.scrollHeight > d.clientHeight")
    for where in ("0", "d.scrollHeight"):  # scrolled to the top, then to the bottom
        dialog.evaluate(f"d => {{ d.scrollTop = {where}; }}")
        _assert_fully_visible(page, TOTAL)
        _assert_fully_visible(page, TRANSFER_BUTTON)
    if mode == "Selected":
        assert scrolls, "the dialog should be long enough here for the sticky footer to matter"
    _no_sideways_scroll(page)
    button.click()
    success = dialog.get_by_test_id("transfer-success")
    expect(success).to_contain_text("Transferred")
    _assert_fully_visible(page, RESULT)
    expect(page.locator("#toasts .toast")).to_contain_text(success.inner_text())
    _no_sideways_scroll(page)


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_one_member_mode_fits(page, live_server, demo, size):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    dialog = _open_transfer(page, live_server)
    dialog.get_by_label("Amount").fill("1000000")
    expect(dialog.get_by_test_id("transfer-footer-shortfall")).to_be_visible()
    expect(dialog.get_by_role("button", name="Transfer Credits")).to_be_visible()
    _assert_fully_visible(page, TRANSFER_BUTTON)
    _assert_fully_visible(page, TOTAL)
    _no_sideways_scroll(page)


# --- without JavaScript: plain pages and forms, every mode -------------------------------------------------------


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_every_mode_works_without_javascript(browser, live_server, demo, size):
    context = browser.new_context(java_script_enabled=False, viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    sign_in(page, live_server, "admin@example.com")
    page.goto(_billing_url(live_server))
    _transfer_button(page).click()
    expect(page.get_by_role("heading", name="Transfer credits", level=1)).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")

    # One member.
    page.get_by_label("Recipient").select_option(label="Erin (erin@example.com)")
    page.get_by_label("Amount").fill("100")
    page.get_by_role("button", name="Transfer Credits").click()
    expect(page.get_by_text("Transferred 100 Org-allocated credits ($1.00) to Erin.")).to_be_visible()

    # Selected: the Search button is a search, not a submit: no errors, what was typed stays.
    _transfer_button(page).click()
    page.get_by_role("link", name="Selected", exact=True).click()
    page.get_by_label("Amount per member").fill("50")
    page.get_by_label("Search members by name or email").fill("erin")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("checkbox", name=re.compile(r"^Erin"))).to_be_visible()
    expect(page.get_by_role("checkbox", name=re.compile(r"^Carol"))).to_have_count(0)
    expect(page.locator(".field-error, .form-error")).to_have_count(0)
    expect(page.get_by_label("Amount per member")).to_have_value("50")
    page.get_by_role("checkbox", name=re.compile(r"^Erin")).check()
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("button", name="Transfer", exact=True).click()
    expect(
        page.get_by_text("Transferred 50 Org-allocated credits ($0.50) to 1 member, 50 credits ($0.50) each.")
    ).to_be_visible()

    # All.
    _transfer_button(page).click()
    page.get_by_role("link", name="All", exact=True).click()
    page.get_by_label("Amount per member").fill("10")
    page.get_by_role("button", name="Preview").click()  # the preview without JS
    expect(page.get_by_test_id("transfer-total")).to_have_text("60 credits ($0.60)")
    page.get_by_role("button", name="Transfer", exact=True).click()
    expect(
        page.get_by_text("Transferred 60 Org-allocated credits ($0.60) to 6 members, 10 credits ($0.10) each.")
    ).to_be_visible()
    expect(page.get_by_role("region", name="Balance")).to_contain_text("54,790")
    context.close()
