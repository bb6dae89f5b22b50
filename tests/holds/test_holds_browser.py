"""Held credits in real Chromium: the member's wallet says "N held" and the Members page shows it per member,
at a laptop and a phone size (screenshots in the test's tmp_path for a person to look at)."""

import pytest
from playwright.sync_api import expect

from holds.services import create_hold
from orgs.models import Membership, Organization
from tests.browser.conftest import demo, sign_in, switch_workspace  # noqa: F401 (demo: a fixture, used below)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("demo")]

SIZES = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.mark.parametrize("size", SIZES)
def test_held_credits_on_the_wallet_and_the_members_page(page, live_server, size, tmp_path):
    page.set_viewport_size(SIZES[size])
    org = Organization.objects.get(name="Quantum Lab")
    carol = Membership.objects.get(org=org, user__email="carol@example.com")
    create_hold(org=org, membership_id=carol.pk, amount=25, description="qjob")

    sign_in(page, live_server, "carol@example.com")
    page.goto(f"{live_server.url}/wallet/")
    held = page.get_by_test_id("wallet-held")
    expect(held).to_be_visible()
    expect(held).to_contain_text("25 held")
    page.screenshot(path=tmp_path / f"holds-wallet-{size}.png", full_page=False)

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    page.goto(f"{live_server.url}/orgs/{org.slug}/members/")
    row = page.locator("[data-member]", has_text="carol@example.com")
    expect(row.get_by_test_id("member-held")).to_have_text("25 held ($0.25)")
    row.scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / f"holds-members-{size}.png", full_page=False)
