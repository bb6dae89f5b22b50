"""The Schedules pages: owner/admin only, field errors with nothing saved, constant query counts."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import given

from schedules.models import Schedule, ScheduleRun, ScheduleStatus
from schedules.services import run_schedule
from tests.factories import MembershipFactory, OrgFactory, fund, ledger_snapshot
from tests.schedules.helpers import make_schedule
from tests.web.test_form_fuzz import amounts, fuzz

pytestmark = pytest.mark.django_db

VALID = {
    "name": "Monthly allowance",
    "recipients": "all",
    "role": "",
    "credit_type": "",
    "mode": "add",
    "amount": "100",
    "cadence": "monthly",
    "day_of_month": "31",
    "every_days": "",
    "start_date": "2026-01-01",
    "end_date": "",
    "request_key": "k1",
}


@pytest.fixture
def form_data():
    from wallets.models import CreditType

    return {**VALID, "credit_type": str(CreditType.objects.get(slug="org-allocated").pk)}


@pytest.fixture
def owner_client(client, owner, org):
    client.force_login(owner)
    return client


def test_owner_creates_a_schedule_and_sees_it_listed(owner_client, org, form_data):
    response = owner_client.post(reverse("schedules:new", args=[org.slug]), form_data)
    assert response.status_code == 302
    schedule = Schedule.objects.get(org=org)
    assert (schedule.amount, schedule.day_of_month, schedule.status) == (100, 31, ScheduleStatus.ACTIVE)
    assert schedule.next_period_start is not None
    page = owner_client.get(reverse("schedules:list", args=[org.slug])).content.decode()
    assert "Monthly allowance" in page and "Monthly on day 31" in page and "Not run yet" in page


def test_a_double_submitted_form_creates_one_schedule(owner_client, org, form_data):
    url = reverse("schedules:new", args=[org.slug])
    assert owner_client.post(url, form_data).status_code == 302
    assert owner_client.post(url, form_data).status_code == 302
    assert Schedule.objects.filter(org=org).count() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("amount", "abc", "whole number"),
        ("amount", "1.5", "whole numbers"),
        ("amount", "0", "greater than zero"),
        ("amount", "-5", "greater than zero"),
        ("amount", "1000001", "too large"),
        ("amount", "", "enter an amount"),
        ("amount", "١٢٣", "whole number"),
        ("amount", "1,00", "whole number"),
        ("day_of_month", "32", "1 to 31"),
        ("day_of_month", "0", "1 to 31"),
        ("end_date", "2025-12-31", "on or after the start date"),
        ("start_date", "not a date", "valid date"),
        ("name", "   ", ""),
    ],
)
def test_bad_input_shows_the_error_next_to_the_field_and_saves_nothing(
    owner_client, org, form_data, field, value, message
):
    before = ledger_snapshot()
    response = owner_client.post(reverse("schedules:new", args=[org.slug]), {**form_data, field: value})
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors
    assert message.lower() in " ".join(form.errors[field]).lower()
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not Schedule.objects.exists()
    assert ledger_snapshot() == before


def test_every_n_days_and_selected_and_role_need_their_fields(owner_client, org, form_data):
    url = reverse("schedules:new", args=[org.slug])
    response = owner_client.post(url, {**form_data, "cadence": "every_n_days", "every_days": ""})
    assert "every_days" in response.context["form"].errors
    response = owner_client.post(url, {**form_data, "cadence": "every_n_days", "every_days": "400"})
    assert "every_days" in response.context["form"].errors
    response = owner_client.post(url, {**form_data, "recipients": "selected"})
    assert "members" in response.context["form"].errors
    response = owner_client.post(url, {**form_data, "recipients": "role", "role": ""})
    assert "role" in response.context["form"].errors
    assert not Schedule.objects.exists()


def test_another_orgs_member_cannot_be_selected(owner_client, org, form_data):
    stranger = MembershipFactory(org=OrgFactory())
    response = owner_client.post(
        reverse("schedules:new", args=[org.slug]), {**form_data, "recipients": "selected", "members": [stranger.pk]}
    )
    assert response.status_code == 400 and "members" in response.context["form"].errors
    assert not Schedule.objects.exists()


def test_edit_pause_resume_delete(owner_client, org, form_data):
    schedule = make_schedule(org, amount=10)
    edit = reverse("schedules:edit", args=[org.slug, schedule.pk])
    assert owner_client.get(edit).status_code == 200
    assert owner_client.post(edit, {**form_data, "amount": "25", "name": "Renamed"}).status_code == 302
    schedule.refresh_from_db()
    assert (schedule.amount, schedule.name) == (25, "Renamed")
    bad = owner_client.post(edit, {**form_data, "amount": "0"})
    assert bad.status_code == 400
    schedule.refresh_from_db()
    assert schedule.amount == 25  # nothing saved
    owner_client.post(reverse("schedules:pause", args=[org.slug, schedule.pk]))
    schedule.refresh_from_db()
    assert schedule.status == ScheduleStatus.PAUSED and schedule.next_period_start is None
    owner_client.post(reverse("schedules:resume", args=[org.slug, schedule.pk]))
    schedule.refresh_from_db()
    assert schedule.status == ScheduleStatus.ACTIVE and schedule.next_period_start is not None
    owner_client.post(reverse("schedules:delete", args=[org.slug, schedule.pk]))
    schedule.refresh_from_db()
    assert schedule.status == ScheduleStatus.DELETED
    assert owner_client.get(reverse("schedules:detail", args=[org.slug, schedule.pk])).status_code == 404
    assert "Renamed" not in owner_client.get(reverse("schedules:list", args=[org.slug])).content.decode()


@pytest.mark.parametrize(("role", "status"), [("member", 403), ("manager", 403), ("admin", 200)])
def test_only_owner_and_admins_see_schedules(client, org, role, status):
    schedule = make_schedule(org)
    client.force_login(MembershipFactory(org=org, role=role).user)
    assert client.get(reverse("schedules:list", args=[org.slug])).status_code == status
    assert client.get(reverse("schedules:detail", args=[org.slug, schedule.pk])).status_code == status
    response = client.post(reverse("schedules:pause", args=[org.slug, schedule.pk]))
    assert response.status_code == (302 if status == 200 else status)


def test_another_orgs_schedule_is_a_404(owner_client, org):
    other = OrgFactory()
    theirs = make_schedule(other)
    for name in ("detail", "edit"):
        assert owner_client.get(reverse(f"schedules:{name}", args=[org.slug, theirs.pk])).status_code == 404
    for name in ("pause", "resume", "delete"):
        assert owner_client.post(reverse(f"schedules:{name}", args=[org.slug, theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == ScheduleStatus.ACTIVE


def test_the_list_shows_last_run_results(owner_client, org):
    fund(org, 150)
    MembershipFactory(org=org)
    applied = make_schedule(org, amount=50, name="Fits")
    skipped = make_schedule(org, amount=100, name="Too big")
    run_schedule(applied.pk, today=date(2026, 1, 1))
    run_schedule(skipped.pk, today=date(2026, 1, 1))
    assert ScheduleRun.objects.get(schedule=skipped).shortfall == 150
    page = owner_client.get(reverse("schedules:list", args=[org.slug])).content.decode()
    assert "to 2 members, 100 credits" in page
    assert "short by 150 credits" in page
    detail = owner_client.get(reverse("schedules:detail", args=[org.slug, skipped.pk])).content.decode()
    assert "Skipped" in detail and "nothing moved" in detail


def test_list_page_query_count_is_constant_in_the_number_of_schedules(owner_client, org):
    fund(org, 100_000)
    url = reverse("schedules:list", args=[org.slug])

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert owner_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    first = make_schedule(org, name="s0")
    run_schedule(first.pk, today=date(2026, 1, 1))
    few = count()
    for i in range(1, 12):
        s = make_schedule(org, name=f"s{i}", recipients="selected", members=[MembershipFactory(org=org)])
        run_schedule(s.pk, today=date(2026, 1, 1))
    assert count() == few


def test_billing_page_links_to_schedules(owner_client, org):
    page = owner_client.get(reverse("billing:page", args=[org.slug])).content.decode()
    assert reverse("schedules:list", args=[org.slug]) in page


@fuzz
@given(amount=amounts)
def test_odd_amounts_never_save_a_schedule(owner_client, org, form_data, amount):
    response = owner_client.post(reverse("schedules:new", args=[org.slug]), {**form_data, "amount": amount})
    assert response.status_code == 400
    assert "amount" in response.context["form"].errors
    assert not Schedule.objects.exists()
