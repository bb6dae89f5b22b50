"""Schedules in real Chromium: the owner goes Billing > Schedules, creates a schedule (after a field
error), sees it listed with its next run, pauses it; without JavaScript too; at 1280x800 and 390x844."""

import os

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.browser.test_pages_fit_and_axe import _problems

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SCREENSHOT_DIR")
PASSWORD = "pw-correct-horse-battery"


def _size(viewport) -> str:
    return "desktop" if viewport["width"] >= 1280 else "phone"


def _shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


@pytest.fixture
def acme(transactional_db):
    from tests.factories import MembershipFactory, OrgFactory, UserFactory, fund
    from wallets.models import ensure_reference_data

    ensure_reference_data()
    owner = UserFactory(email="sched-owner@example.com", password=PASSWORD)
    org = OrgFactory(name="Sched Co", owner=owner)
    fund(org, 5_000)
    for i in range(3):
        MembershipFactory(org=org, user=UserFactory(email=f"sched-m{i}@example.com", name=f"Member {i}"))
    return org


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}])
def test_owner_creates_a_schedule_and_sees_it_listed(page, live_server, acme, viewport):
    from schedules.models import Schedule

    page.set_viewport_size(viewport)
    sign_in(page, live_server, "sched-owner@example.com", password=PASSWORD)
    page.goto(f"{live_server.url}/orgs/{acme.slug}/billing/")
    page.get_by_test_id("schedules-link").click()
    expect(page.get_by_role("heading", name="Schedules", exact=True)).to_be_visible()
    expect(page.get_by_text("No schedules yet.")).to_be_visible()
    page.get_by_role("link", name="New schedule").first.click()
    page.get_by_label("Name").fill("Monthly allowance")
    page.get_by_label("Credits (N)").fill("1.5")
    page.get_by_label("Day of month").fill("31")
    page.get_by_label("Start date").fill("2026-01-01")
    page.get_by_role("button", name="Create schedule").click()
    expect(page.get_by_text("Credits are whole numbers")).to_be_visible()  # next to the field
    assert not Schedule.objects.exists()
    _shot(page, f"schedule_form_error_{viewport['width']}.png")
    assert not _problems(page, _size(viewport))
    page.get_by_label("Credits (N)").fill("250")
    page.get_by_label("Top up to N credits").check()
    page.get_by_label("Return unused credits").check()
    page.get_by_role("button", name="Create schedule").click()
    row = page.get_by_test_id("schedule-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Monthly allowance")
    expect(row).to_contain_text("Top up to 250")
    expect(row).to_contain_text("Monthly on day 31")
    expect(row.get_by_test_id("last-run")).to_contain_text("Not run yet")
    _shot(page, f"schedules_list_{viewport['width']}.png")
    assert not _problems(page, _size(viewport))
    schedule = Schedule.objects.get()
    assert (schedule.amount, schedule.mode, schedule.return_unused) == (250, "top_up", True)
    page.get_by_role("button", name="Pause Monthly allowance").click()
    expect(page.get_by_test_id("schedule-row")).to_contain_text("Paused")
    page.get_by_role("button", name="Resume Monthly allowance").click()
    expect(page.get_by_role("button", name="Pause Monthly allowance")).to_be_visible()


def test_schedules_work_without_javascript(browser, live_server, acme):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, live_server, "sched-owner@example.com", password=PASSWORD)
    page.goto(f"{live_server.url}/orgs/{acme.slug}/billing/schedules/new/")
    page.get_by_label("Name").fill("Weekly")
    page.get_by_label("Credits (N)").fill("5")
    page.get_by_label("Cadence").select_option("weekly")
    page.get_by_label("Start date").fill("2026-01-07")
    page.get_by_role("button", name="Create schedule").click()
    expect(page.get_by_test_id("schedule-row")).to_contain_text("Weekly on Wednesdays")
    page.get_by_role("button", name="Delete Weekly").click()
    expect(page.get_by_text("No schedules yet.")).to_be_visible()
    context.close()


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}])
def test_run_results_are_shown_on_the_list_and_the_history(page, live_server, acme, viewport):
    from datetime import date

    from schedules.services import run_schedule
    from tests.schedules.helpers import make_schedule

    fits = make_schedule(acme, name="Fits", amount=100)
    big = make_schedule(acme, name="Too big", amount=2_000, cadence="weekly", start_date=date(2026, 1, 7))
    run_schedule(fits.pk, today=date(2026, 1, 1))
    run_schedule(big.pk, today=date(2026, 1, 7))  # 4 members x 2,000 > 4,600 left
    page.set_viewport_size(viewport)
    sign_in(page, live_server, "sched-owner@example.com", password=PASSWORD)
    page.goto(f"{live_server.url}/orgs/{acme.slug}/billing/schedules/")
    rows = page.get_by_test_id("schedule-row")
    expect(rows.filter(has_text="Fits")).to_contain_text("Applied to 4 members, 400 credits ($4.00)")
    expect(rows.filter(has_text="Too big")).to_contain_text("short by 3,400 credits")
    _shot(page, f"schedules_results_{viewport['width']}.png")
    assert not _problems(page, _size(viewport))
    page.get_by_role("link", name="Too big", exact=True).click()
    expect(page.get_by_test_id("run-row")).to_contain_text("nothing moved")
    _shot(page, f"schedule_detail_{viewport['width']}.png")
    assert not _problems(page, _size(viewport))
