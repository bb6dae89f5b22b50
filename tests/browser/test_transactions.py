"""Transactions in real Chromium: filter with htmx, the URL follows, the back button restores."""

import csv
import io
import os
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in, switch_workspace
from wallets.models import Transfer, TransferKind

pytestmark = [pytest.mark.browser]


def test_filter_by_kind_updates_url_and_list_and_back_restores(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Transactions").click()
    expect(page).to_have_url(re.compile(r"/orgs/quantum-lab/transactions/$"))
    rows = page.locator("#transactions-list tbody tr")
    expect(rows).to_have_count(15)  # the seed's movements
    page.get_by_label("Kind").select_option(label="Transfer")
    expect(page).to_have_url(re.compile(r"\?kind=transfer"))
    expect(rows).to_have_count(3)
    expect(page.locator("#transactions-list")).to_contain_text("Project kickoff")
    expect(page.locator("#transactions-list")).not_to_contain_text("Initial purchase")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/transactions/$"))
    expect(rows).to_have_count(15)
    expect(page.get_by_label("Kind")).to_have_value("")
    page.go_forward()
    expect(page).to_have_url(re.compile(r"\?kind=transfer"))
    expect(rows).to_have_count(3)
    # A shared link opens the filtered list; the export follows the filter.
    page.goto(f"{live_server.url}/orgs/quantum-lab/transactions/?kind=purchase")
    expect(rows).to_have_count(3)
    expect(page.get_by_label("Kind")).to_have_value("purchase")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    body = open(download.value.path(), encoding="utf-8").read()  # noqa: SIM115
    lines = list(csv.reader(io.StringIO(body)))
    assert lines[0][:3] == ["id", "date", "kind"] and [r[2] for r in lines[1:]] == ["Purchase"] * 3


def test_malformed_filter_explains_and_shows_everything(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/transactions/?from=someday&min=lots")
    expect(page.get_by_role("alert")).to_contain_text("is not a date")
    expect(page.get_by_role("alert")).to_contain_text("is not an amount")
    expect(page.locator("#transactions-list tbody tr")).to_have_count(15)


def test_billing_page_shows_balance_chart_and_switches_range(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/")
    chart = page.get_by_role("region", name="Credits over time")
    expect(chart.get_by_test_id("balance-chart")).to_be_visible()
    expect(chart.locator("polygon")).to_have_count(2)
    chart.get_by_role("link", name="90 days").click()
    # A link cannot be "pressed" (axe: aria-allowed-attr): the current range is aria-current.
    expect(chart.get_by_role("link", name="90 days")).to_have_attribute("aria-current", "true")
    expect(chart.get_by_role("link", name="30 days")).not_to_have_attribute("aria-current", "true")
    expect(chart.locator("title").first).to_contain_text("last 90 days")


# --- Part: reporting (issue 17): Billing tabs, dollars, chart values, filters on Enter, phones. ---
def test_billing_tabs_push_the_url_and_reload_and_back_keep_the_tab(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/")
    credits_tab = page.get_by_role("tab", name="Credits", exact=True)
    requests_tab = page.get_by_role("tab", name=re.compile(r"^Credit Requests"))
    expect(credits_tab).to_have_attribute("aria-selected", "true")
    requests_tab.click()
    expect(page).to_have_url(re.compile(r"/orgs/quantum-lab/billing/requests/$"))
    expect(requests_tab).to_have_attribute("aria-selected", "true")
    expect(credits_tab).to_have_attribute("aria-selected", "false")
    expect(page.get_by_role("tabpanel")).to_contain_text("Error-mitigation experiments")
    page.reload()
    expect(requests_tab).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel")).to_contain_text("Error-mitigation experiments")
    credits_tab.click()
    expect(page).to_have_url(re.compile(r"/orgs/quantum-lab/billing/$"))
    expect(credits_tab).to_have_attribute("aria-selected", "true")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/orgs/quantum-lab/billing/requests/$"))
    expect(requests_tab).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel")).to_contain_text("Error-mitigation experiments")
    # The page around the panel is whole after Back (not only the swapped panel).
    expect(page.get_by_role("region", name="Balance")).to_have_count(1)
    page.go_back()
    expect(page).to_have_url(re.compile(r"/orgs/quantum-lab/billing/$"))
    expect(credits_tab).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel")).to_contain_text("Purchases")
    expect(page.get_by_role("region", name="Balance")).to_have_count(1)


def test_back_to_a_tab_from_another_page_shows_the_whole_page(page, live_server, demo):
    """Leaving the Billing page after a tab swap and coming Back shows the full page with that tab, never the
    bare panel the swap fetched (the browser caches by URL: the tab's partial must not stand in for the page)."""
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/")
    page.get_by_role("tab", name=re.compile(r"^Credit Requests")).click()
    expect(page).to_have_url(re.compile(r"/billing/requests/$"))
    page.get_by_role("tab", name="Credits", exact=True).click()
    page.get_by_role("link", name=re.compile("See all transactions")).click()
    expect(page).to_have_url(re.compile(r"/transactions/"))
    page.go_back()
    page.go_back()
    expect(page).to_have_url(re.compile(r"/billing/requests/$"))
    expect(page.get_by_role("region", name="Balance")).to_have_count(1)
    expect(page.get_by_role("tab", name=re.compile(r"^Credit Requests"))).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel")).to_contain_text("Error-mitigation experiments")
    page.goto(f"{live_server.url}/orgs/quantum-lab/transactions/")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/billing/requests/$"))
    expect(page.get_by_role("heading", name="Billing", level=1)).to_be_visible()
    expect(page.get_by_role("tabpanel")).to_contain_text("Error-mitigation experiments")


def test_text_filters_apply_on_enter_with_javascript(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/transactions/")
    rows = page.locator("#transactions-list tbody tr")
    expect(rows).to_have_count(15)
    page.get_by_label("Min credits").fill("5000")
    page.get_by_label("Min credits").press("Enter")
    expect(page).to_have_url(re.compile(r"\?min=5000$"))
    expect(rows).to_have_count(2)  # 40,000 and 12,500 bought (the promos are 4,500 and 1,500)
    expect(page.get_by_role("heading", name="Filtered transactions")).to_be_visible()
    page.get_by_label("Member").fill("carol@example.com")
    page.get_by_label("Member").press("Enter")
    expect(page).to_have_url(re.compile(r"member=carol%40example.com"))
    expect(page.locator("#transactions-list")).to_contain_text("No transactions match these filters.")


def test_text_filters_apply_on_enter_without_javascript(browser, live_server, demo):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/transactions/")
    page.get_by_label("Member").fill("carol@example.com")
    page.get_by_label("Member").press("Enter")
    expect(page).to_have_url(re.compile(r"member=carol%40example.com"))
    expect(page.get_by_role("heading", name="Filtered transactions")).to_be_visible()
    expect(page.locator("#transactions-list tbody tr").first).to_be_visible()
    assert "Initial purchase" not in page.locator("#transactions-list").inner_text()
    context.close()


def test_member_wallet_offers_only_the_kinds_that_touch_a_wallet_and_shows_dollars(page, live_server, demo):
    sign_in(page, live_server, "carol@example.com")
    page.goto(f"{live_server.url}/wallet/")
    wallet = page.get_by_role("region", name="Default wallet")
    expect(wallet.get_by_test_id("wallet-balance-usd")).to_have_text("($10.00)")  # 1,000 credits
    transactions = page.get_by_role("region", name="Transactions")
    options = transactions.get_by_label("Kind").locator("option").all_inner_texts()
    assert "Transfer" in options and "Usage" in options and "Return" in options
    for never in ("Purchase", "Refund", "Promo grant", "Dispute hold", "Dispute release"):
        assert never not in options


def test_balance_card_shows_dollars_beside_credits(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/")
    balance = page.get_by_role("region", name="Balance")
    expect(balance.get_by_test_id("org-balance-usd")).to_have_text("($550.00)")
    expect(balance).to_contain_text("Org-allocated 50,000 ($500.00)")
    expect(balance).to_contain_text("Promo 5,000 ($50.00)")


SIZES = [(1280, 800), (390, 844)]


def _shot(page, name):
    """With SHOTS_DIR set, keep a screenshot for a person to look at (never in the repository)."""
    folder = os.environ.get("SHOTS_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def _no_sideways_scroll_and_cells_inside_cards(page):
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    spilled = page.evaluate(
        """() => [...document.querySelectorAll('.card table')].flatMap(t => {
            const card = t.closest('.card').getBoundingClientRect();
            const head = t.querySelector('thead');
            const hidden = head && getComputedStyle(head).position === 'absolute';  // stacked: visually hidden
            return [...t.querySelectorAll(hidden ? 'td' : 'td, th')].filter(c => {
                const r = c.getBoundingClientRect();
                return r.width > 2 && r.height > 2 && (r.left < card.left - 1 || r.right > card.right + 1);
            }).map(c => c.textContent.trim().slice(0, 40));
        })"""
    )
    assert spilled == []


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_transactions_fit_their_card_with_a_bulk_row_expanded(page, live_server, demo, width, height):
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/transactions/")
    page.get_by_role("link", name="3 members").click()
    expect(page.locator(".recipient-list li")).to_have_count(3)
    _shot(page, f"transactions-{width}")
    _no_sideways_scroll_and_cells_inside_cards(page)
    amount = page.locator("#transactions-list tbody tr").first.locator("td[data-label=Amount]")
    expect(amount).to_be_visible()
    assert amount.bounding_box()["x"] + amount.bounding_box()["width"] <= width
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/")
    _shot(page, f"billing-{width}")
    _no_sideways_scroll_and_cells_inside_cards(page)
    bulk = Transfer.objects.get(org__slug="quantum-lab", kind=TransferKind.BULK_TRANSFER)
    page.goto(f"{live_server.url}/orgs/quantum-lab/transactions/{bulk.pk}/")
    expect(page.get_by_role("heading", name=f"Transaction #{bulk.pk}")).to_be_visible()
    expect(page.get_by_test_id("transfer-detail")).to_contain_text("750 credits ($7.50)")
    _shot(page, f"transaction-detail-{width}")
    _no_sideways_scroll_and_cells_inside_cards(page)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_member_wallet_shows_request_credits_in_view_and_fits(page, live_server, demo, width, height):
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, live_server, "carol@example.com")  # one org: her workspace is Quantum Lab
    page.goto(f"{live_server.url}/wallet/")
    button = page.get_by_role("link", name="Request credits")
    expect(button).to_be_in_viewport()
    box = button.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= height
    expect(page.get_by_test_id("wallet-balance-total")).to_be_in_viewport()
    _shot(page, f"wallet-member-{width}")
    _no_sideways_scroll_and_cells_inside_cards(page)


def test_chart_days_show_their_values_on_hover_and_keyboard_focus(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/?chart=90")
    chart = page.get_by_test_id("balance-chart")
    days = chart.locator("[data-chart-day]")
    expect(days).to_have_count(90)
    today = days.last
    expect(today).to_have_attribute(
        "aria-label", re.compile(r"Org-allocated 50,000, Promo 5,000; Total 55,000 credits")
    )
    expect(today.locator(".tip")).to_be_hidden()
    today.locator(".hit").hover()
    expect(today.locator(".tip")).to_be_visible()
    expect(today.locator(".tip")).to_contain_text("Total 55,000 credits ($550.00)")
    page.mouse.move(0, 0)
    expect(today.locator(".tip")).to_be_hidden()
    # One Tab stop for the chart, then the arrow keys walk the days.
    page.get_by_role("link", name="90 days").focus()
    page.keyboard.press("Tab")
    expect(today).to_be_focused()
    expect(today.locator(".tip")).to_be_visible()
    page.keyboard.press("ArrowLeft")
    expect(days.nth(88)).to_be_focused()
    expect(days.nth(88).locator(".tip")).to_be_visible()
    page.keyboard.press("Home")
    expect(days.first).to_be_focused()
    expect(days.first).to_have_attribute("aria-label", re.compile(r"Total 0 credits \(\$0\.00\)$"))
    _shot(page, "chart-focus-1280")


def test_chart_days_are_focusable_without_javascript(browser, live_server, demo):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/")
    page.get_by_role("link", name="90 days").click()
    expect(page).to_have_url(re.compile(r"\?chart=90$"))
    days = page.get_by_test_id("balance-chart").locator("[data-chart-day]")
    expect(days).to_have_count(90)
    days.nth(40).focus()
    expect(days.nth(40).locator(".tip")).to_be_visible()
    context.close()
