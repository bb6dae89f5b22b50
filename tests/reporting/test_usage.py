"""Where the credits go (reporting/usage.py): burn rate, runway, usage this month by member, a member's 7 days.

Charges are made now (entries take the database's time; there is no clock helper in the tests), so the windows
are checked by reading them at a later `now`: 31 days on, the charges have left the 30-day window; in a later
month they are not "this month"."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from members.services import member_remove
from reporting.usage import BurnRate, member_usage, month_start, org_burn_rate, usage_chart, usage_this_month
from tests.factories import MembershipFactory, fund
from wallets.models import CreditType
from wallets.services import member_charge_usage, org_transfer_to_member

pytestmark = pytest.mark.django_db


def give(org, membership, amount, slug="org-allocated"):
    ct = CreditType.objects.get(slug=slug)
    org_transfer_to_member(org=org, membership_id=membership.pk, credit_type=ct, amount=amount)


@pytest.fixture
def usage(funded_org, member_membership, other_org):
    """Ana used 300 + 150 in the org, Bo 100; Ana also used 70 paid by another org."""
    bo = MembershipFactory(org=funded_org, role="member")
    give(funded_org, member_membership, 1_000)
    fund(funded_org, 50, "promo")
    give(funded_org, member_membership, 50, "promo")  # Promo is drawn first: usage of two credit types
    give(funded_org, bo, 500)
    member_charge_usage(org=funded_org, membership_id=member_membership.pk, amount=300)
    member_charge_usage(org=funded_org, membership_id=member_membership.pk, amount=150)
    member_charge_usage(org=funded_org, membership_id=bo.pk, amount=100)
    fund(other_org, 1_000)
    elsewhere = MembershipFactory(org=other_org, user=member_membership.user, role="member")
    give(other_org, elsewhere, 200)
    member_charge_usage(org=other_org, membership_id=elsewhere.pk, amount=70)
    return {"ana": member_membership, "bo": bo, "org": funded_org, "other": other_org}


def test_org_burn_rate_and_runway(usage):
    burn = org_burn_rate(usage["org"].pk, balance=8_510)
    assert burn.used == 550  # 300 + 150 + 100; the other org's 70 is not this org's
    assert burn.per_day == Decimal(550) / 30
    assert burn.per_day_text == "18.3"
    assert burn.per_day_usd == "$0.18"
    assert burn.runway_days == 464  # 8,510 / (550 / 30) = 464.2


def test_org_burn_rate_window_is_the_last_30_days(usage):
    later = timezone.now() + timedelta(days=31)
    burn = org_burn_rate(usage["org"].pk, balance=8_510, now=later)
    assert burn.used == 0 and burn.runway_days is None


def test_no_usage_is_the_empty_state(funded_org):
    burn = org_burn_rate(funded_org.pk, balance=10_000)
    assert burn == BurnRate(used=0, balance=10_000)
    assert burn.runway_days is None and burn.per_day_text == "0"


def test_runway_reads_in_days_then_months_then_years():
    assert BurnRate(used=300, balance=10).runway_text == "1 day"  # 10 a day
    assert BurnRate(used=300, balance=890).runway_text == "89 days"
    assert BurnRate(used=300, balance=3_500).runway_text == "11 months"  # 350 days
    assert BurnRate(used=300, balance=23_570).runway_text == "6.5 years"  # 2,357 days
    assert BurnRate(used=0, balance=100).runway_text == ""


def test_runway_rounds_down_and_is_zero_below_one_day():
    assert BurnRate(used=300, balance=25).runway_days == 2  # 10 a day
    assert BurnRate(used=300, balance=9).runway_days == 0
    assert BurnRate(used=300, balance=-5).runway_days == 0  # an outstanding balance lasts no days
    assert BurnRate(used=3_000_000, balance=0).per_day_text == "100,000"


def test_usage_this_month_per_member_in_one_query(usage, owner, django_assert_num_queries):
    ana, bo = usage["ana"], usage["bo"]
    with django_assert_num_queries(1):
        used = usage_this_month(usage["org"].pk, [ana.user_id, bo.user_id, owner.pk])
    assert used == {ana.user_id: 450, bo.user_id: 100}  # the owner used nothing: absent
    with django_assert_num_queries(0):
        assert usage_this_month(usage["org"].pk, []) == {}


def test_usage_this_month_is_the_calendar_month(usage):
    ana = usage["ana"]
    next_month = month_start() + timedelta(days=40)
    assert usage_this_month(usage["org"].pk, [ana.user_id], now=next_month) == {}
    assert month_start(next_month).day == 1 and month_start(next_month) > timezone.now()


def test_a_return_is_not_usage(usage, owner):
    """Removing Bo returns his 400 unspent credits to the org: a debit on his pockets, but not usage."""
    bo = usage["bo"]
    member_remove(org=usage["org"], membership_id=bo.pk, actor=owner)
    assert usage_this_month(usage["org"].pk, [bo.user_id]) == {bo.user_id: 100}
    assert org_burn_rate(usage["org"].pk, balance=0).used == 550


def test_member_usage_in_one_org_and_in_all(usage, django_assert_num_queries):
    ana = usage["ana"]
    with django_assert_num_queries(1):
        mine = member_usage(ana.user_id, usage["org"].pk, balance=600)
    assert mine.burn.used == 450
    assert mine.burn.runway_days == 40  # 600 / 15 a day
    assert [d.used for d in mine.chart.days] == [0, 0, 0, 0, 0, 0, 450]
    assert mine.chart.days[-1].day == timezone.now().date()
    assert mine.chart.days[-1].label.endswith(": 450 credits ($4.50)")
    everywhere = member_usage(ana.user_id, None, balance=0)
    assert everywhere.burn.used == 520 and everywhere.chart.total == 520
    later = member_usage(ana.user_id, usage["org"].pk, balance=600, now=timezone.now() + timedelta(days=8))
    assert later.chart.is_empty and later.burn.used == 450  # out of the 7 days, still in the 30


def test_usage_chart_bars_fit_the_box():
    today = timezone.now().date()
    chart = usage_chart([(today - timedelta(days=6 - i), v) for i, v in enumerate([0, 5, 120, 7, 0, 60, 1])])
    assert chart.max_used == 200 and [label for _, label in chart.ticks] == ["0", "50", "100", "150", "200"]
    for d in chart.days:
        assert d.x >= 56 and d.x + d.w <= chart.width - 8
        assert d.y >= 8 and d.y + d.h == pytest.approx(chart.height - 22)
    assert chart.days[1].label.endswith(": 5 credits ($0.05)") and chart.days[6].label.endswith(": 1 credit ($0.01)")
