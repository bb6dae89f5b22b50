"""Transactions in real Chromium: filter with htmx, the URL follows, the back button restores."""

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in, switch_workspace

pytestmark = [pytest.mark.browser]


def test_filter_by_kind_updates_url_and_list_and_back_restores(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Transactions").click()
    expect(page).to_have_url(re.compile(r"/orgs/quantum-lab/transactions/$"))
    rows = page.locator("#transactions-list tbody tr")
    expect(rows).to_have_count(14)  # the seed's movements
    page.get_by_label("Kind").select_option(label="Transfer")
    expect(page).to_have_url(re.compile(r"\?kind=transfer"))
    expect(rows).to_have_count(3)
    expect(page.locator("#transactions-list")).to_contain_text("Project kickoff")
    expect(page.locator("#transactions-list")).not_to_contain_text("Initial purchase")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/transactions/$"))
    expect(rows).to_have_count(14)
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
    expect(page.locator("#transactions-list tbody tr")).to_have_count(14)


def test_billing_page_shows_balance_chart_and_switches_range(page, live_server, demo):
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    page.goto(f"{live_server.url}/orgs/quantum-lab/billing/")
    chart = page.get_by_role("region", name="Credits over time")
    expect(chart.get_by_test_id("balance-chart")).to_be_visible()
    expect(chart.locator("polygon")).to_have_count(2)
    chart.get_by_role("link", name="90 days").click()
    expect(chart.get_by_role("link", name="90 days")).to_have_attribute("aria-pressed", "true")
    expect(chart.locator("title").first).to_contain_text("last 90 days")
