"""The Usage page's reads (reporting/usage_page.py): exact sums with and without the daily rollup and with a
live tail after its watermark, one query per read whatever the number of members, keyset pages, the range
parser's errors, the CSV export, and the rollup's idempotency (twice, and two workers at once)."""

import csv
import io
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from core import periodic
from reporting import tasks, usage_page
from reporting.models import UsageDay, UsageOrgDay, UsageRollup, UsageWeek
from reporting.usage_page import UsageRange, members_page, parse_range, roll_up_days, roll_up_usage, usage_days
from tests.concurrency import race
from tests.factories import MembershipFactory, bulk_members, fund
from wallets.models import CreditType, Entry, TransferKind
from wallets.services import member_charge_usage, org_transfer_to_member

pytestmark = pytest.mark.django_db

TODAY = datetime.now(UTC).date()


def give(org, membership, amount, slug="org-allocated"):
    org_transfer_to_member(
        org=org, membership_id=membership.pk, credit_type=CreditType.objects.get(slug=slug), amount=amount
    )


def charge_on(monkeypatch, day: date, org, membership, amount: int, hour: int = 12):
    """A usage charge posted as if at `hour`:00 UTC on `day` (the ledger stamps entries with timezone.now())."""
    at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    with monkeypatch.context() as m:
        m.setattr(timezone, "now", lambda: at)
        member_charge_usage(org=org, membership_id=membership.pk, amount=amount)


def raw_usage(org, first: date, last: date) -> dict[int, int]:
    """Each user's usage paid by `org` in the days first..last, straight from the ledger by the ORM (an
    independent path): debits of Usage transfers of the org on members' pockets funded by the org."""
    since = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    until = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    rows = (
        Entry.objects.filter(
            transfer__kind=TransferKind.USAGE,
            transfer__org=org,
            amount__lt=0,
            pocket__funding_org=org,
            wallet__kind="user",
            created_at__gte=since,
            created_at__lt=until,
        )
        .values("wallet__user_id")
        .annotate(used=Sum("amount"))
    )
    return {r["wallet__user_id"]: -r["used"] for r in rows}


def page_usage(org, rng) -> dict[int, int]:
    page = members_page(org.pk, rng, limit=1000)
    return {r.user_id: r.used for r in page.rows}


@pytest.fixture
def history(monkeypatch, funded_org, member_membership, other_org):
    """Ana, Bo and Cy charged over the last 5 days (and today), Promo and Org-allocated (one charge can draw
    both); Ana also used credits paid by another org, which this org's page never counts."""
    org = funded_org
    bo, cy = MembershipFactory(org=org, role="member"), MembershipFactory(org=org, role="manager")
    fund(org, 100, "promo")
    give(org, member_membership, 3_000)
    give(org, member_membership, 100, "promo")
    give(org, bo, 2_000)
    give(org, cy, 1_000)
    plan = [(5, member_membership, 120), (5, bo, 40), (4, member_membership, 150), (3, cy, 75), (2, bo, 300)]
    plan += [(1, member_membership, 90), (1, cy, 10), (1, bo, 5)]
    for days_ago, who, amount in plan:
        charge_on(monkeypatch, TODAY - timedelta(days=days_ago), org, who, amount)
    member_charge_usage(org=org, membership_id=member_membership.pk, amount=33)  # today, now
    fund(other_org, 1_000)
    elsewhere = MembershipFactory(org=other_org, user=member_membership.user, role="member")
    give(other_org, elsewhere, 500)
    charge_on(monkeypatch, TODAY - timedelta(days=2), other_org, elsewhere, 70)
    return {"org": org, "ana": member_membership, "bo": bo, "cy": cy, "other": other_org}


WEEK = UsageRange("7d", TODAY - timedelta(days=6), TODAY)


@pytest.fixture(autouse=True)
def _today_as_of_the_test():
    """TODAY and WEEK as of each test, before its other fixtures: a run that imports this module before midnight
    UTC and reaches a test after it charged "today" on one day and read it on the next (6 tests failed so)."""
    global TODAY, WEEK
    TODAY = datetime.now(UTC).date()
    WEEK = UsageRange("7d", TODAY - timedelta(days=6), TODAY)


def test_sums_are_exact_without_a_rollup(history):
    org, ana = history["org"], history["ana"]
    assert not UsageRollup.objects.exists()
    got = page_usage(org, WEEK)
    assert got == raw_usage(org, WEEK.first, WEEK.last)
    assert got[ana.user_id] == 120 + 150 + 90 + 33  # the other org's 70 is not here
    page = members_page(org.pk, WEEK)
    assert page.total == sum(got.values()) == 823 and page.members == 3


def test_sums_are_exact_with_the_rollup_and_a_live_tail(history):
    org, bo = history["org"], history["bo"]
    watermark = roll_up_usage()
    assert watermark is not None and watermark >= TODAY - timedelta(days=1)  # up to the last whole day
    assert UsageDay.objects.filter(org=org).count() > 0
    member_charge_usage(org=org, membership_id=bo.pk, amount=7)  # after the rollup: the live tail
    for first, last in [
        (WEEK.first, WEEK.last),
        (TODAY - timedelta(days=3), TODAY - timedelta(days=2)),
        (TODAY, TODAY),
    ]:
        rng = UsageRange("custom", first, last)
        expected = raw_usage(org, first, last)
        assert page_usage(org, rng) == expected
        days = usage_days(org.pk, rng)
        assert sum(used for _, used in days) == sum(expected.values())
        assert [d for d, _ in days] == [first + timedelta(days=i) for i in range(rng.days)]
    assert dict(usage_days(org.pk, WEEK))[TODAY] == 33 + 7


def test_the_page_reads_the_rollup_before_the_watermark_and_the_ledger_after(history):
    """Proof that the rollup is what is read for rolled days: a changed rollup row changes the figure (no test
    of exactness could tell a page that ignores the rollup from one that uses it)."""
    org, ana = history["org"], history["ana"]
    roll_up_usage()
    rolled_day = TODAY - timedelta(days=4)
    row = UsageDay.objects.get(org=org, wallet__user=ana.user, day=rolled_day)
    assert row.credits == 150
    UsageDay.objects.filter(pk=row.pk).update(credits=1_150)
    assert page_usage(org, WEEK)[ana.user_id] == raw_usage(org, WEEK.first, WEEK.last)[ana.user_id] + 1_000
    roll_up_days(rolled_day, rolled_day + timedelta(days=1))  # re-rolling the day repairs it from the ledger
    assert page_usage(org, WEEK) == raw_usage(org, WEEK.first, WEEK.last)


def test_the_rollup_never_rolls_an_unfinished_day(history):
    now = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC) + timedelta(minutes=30)
    assert roll_up_usage(now=now) == TODAY - timedelta(days=1)  # yesterday ended only 30 minutes ago
    assert not UsageDay.objects.filter(day__gte=TODAY - timedelta(days=1)).exists()
    assert roll_up_usage(now=now + timedelta(hours=1)) == TODAY  # now it did end more than an hour ago


def test_the_rollup_is_idempotent(history):
    roll_up_usage()
    first = sorted(UsageDay.objects.values_list("org_id", "wallet_id", "day", "credits"))
    state = UsageRollup.objects.get()
    assert roll_up_usage() == state.rolled_until  # nothing more to do
    roll_up_days(TODAY - timedelta(days=10), state.rolled_until)  # every day again: upserted, not added
    roll_up_days(TODAY - timedelta(days=10), state.rolled_until)
    assert sorted(UsageDay.objects.values_list("org_id", "wallet_id", "day", "credits")) == first
    keys = Counter((o, w, d) for o, w, d, _ in first)
    assert max(keys.values()) == 1
    assert sum(c for o, _, _, c in first if o == history["org"].pk) == sum(
        raw_usage(history["org"], TODAY - timedelta(days=10), state.rolled_until - timedelta(days=1)).values()
    )


def test_each_read_is_one_query_for_3_or_30_members(history, django_assert_num_queries):
    org = history["org"]
    roll_up_usage()
    for n in (3, 30):
        if n == 30:
            for m in bulk_members(org, 27, prefix="many"):
                give(org, m, 10)
                member_charge_usage(org=org, membership_id=m.pk, amount=1 + m.pk % 5)
        watermark = usage_page.rolled_until()
        with django_assert_num_queries(1):
            page = members_page(org.pk, WEEK, watermark=watermark)
        assert page.members == n
        with django_assert_num_queries(1):
            usage_days(org.pk, WEEK, watermark=watermark)


def test_keyset_pages_cover_every_member_once_most_first(history):
    org = history["org"]
    for i, m in enumerate(bulk_members(org, 12, prefix="pager")):
        give(org, m, 100)
        member_charge_usage(org=org, membership_id=m.pk, amount=10 + i % 3)  # ties: ordered by wallet
    seen, cursor = [], None
    while True:
        page = members_page(org.pk, WEEK, cursor=cursor, limit=4)
        seen += [(r.used, r.wallet_id) for r in page.rows]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 15
    assert seen == sorted(seen, reverse=True)
    assert sum(u for u, _ in seen) == members_page(org.pk, WEEK).total


def test_share_and_dollars(history):
    page = members_page(history["org"].pk, WEEK)
    top = page.rows[0]
    assert (top.user_id, top.used) == (history["ana"].user_id, 393)
    assert top.usd == "$3.93"
    assert str(top.share) == "47.8"  # 393 / 823 = 47.75


def test_a_bad_cursor_is_refused():
    with pytest.raises(usage_page.CursorError):
        usage_page.decode_cursor("not-a-cursor")
    assert usage_page.decode_cursor(usage_page.encode_cursor(5, 7)) == (5, 7)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"range": "custom", "from": "2026-13-01", "to": "2026-12-01"}, "from", "Enter a date like"),
        ({"range": "custom", "from": "2026-12-01", "to": "yesterday"}, "to", "Enter a date like"),
        ({"range": "custom", "from": "", "to": "2026-12-01"}, "from", "Enter a start date"),
        ({"range": "custom", "from": "2026-12-05", "to": "2026-12-01"}, "to", "before the start date"),
        ({"range": "custom", "from": "2025-01-01", "to": "2026-01-02"}, "to", "at most 366 days"),
        ({"range": "fortnight"}, "range", "Choose one of the ranges"),
    ],
)
def test_bad_ranges_are_explained_per_field(params, field, message):
    _, errors = parse_range(params, today=date(2026, 12, 3))
    assert list(errors) == [field] or field in errors
    assert message in errors[field]


def test_ranges():
    today = date(2026, 12, 3)
    assert parse_range({}, today) == (UsageRange("30d", today - timedelta(days=29), today), {})  # the burn rate's
    assert parse_range({"range": "7d"}, today)[0] == UsageRange("7d", date(2026, 11, 27), today)
    assert parse_range({"range": "30d"}, today)[0] == UsageRange("30d", date(2026, 11, 4), today)
    leap = parse_range({"from": "2024-01-01", "to": "2024-12-31"}, today)  # 366 days: allowed
    assert leap == (UsageRange("custom", date(2024, 1, 1), date(2024, 12, 31)), {})


def test_csv_export_is_member_by_day(history):
    org, ana = history["org"], history["ana"]
    roll_up_usage()
    body = b"".join(usage_page.copy_usage_csv(org.pk, WEEK)).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0]) == ["date", "member", "email", "credits", "usd"]
    per_user = Counter()
    for r in rows:
        per_user[r["email"]] += int(r["credits"])
        assert r["usd"] == f"{int(r['credits']) / 100:.2f}"
    assert dict(per_user) == {
        m.user.email: used
        for m in (ana, history["bo"], history["cy"])
        for used in [raw_usage(org, WEEK.first, WEEK.last)[m.user_id]]
    }
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)
    ana_days = {r["date"]: int(r["credits"]) for r in rows if r["email"] == ana.user.email}
    assert ana_days[(TODAY - timedelta(days=4)).isoformat()] == 150


def test_csv_cells_cannot_run_formulas(funded_org):
    m = MembershipFactory(org=funded_org, role="member")
    m.user.name = "=HYPERLINK(1)"
    m.user.save()
    give(funded_org, m, 100)
    member_charge_usage(org=funded_org, membership_id=m.pk, amount=5)
    body = b"".join(usage_page.copy_usage_csv(funded_org.pk, WEEK)).decode()
    assert "'=HYPERLINK(1)" in body


@pytest.mark.django_db(transaction=True)
def test_two_rollups_at_once_write_each_day_once(history):
    """Two workers run the rollup at the same moment (own connections): one rolls, the other skips or finds
    nothing left; the rows are the same as one run's."""
    results = race(2, lambda i: roll_up_usage(), check=True)
    state = UsageRollup.objects.get()
    assert state.rolled_until in results
    rows = list(UsageDay.objects.values_list("org_id", "wallet_id", "day"))
    assert len(rows) == len(set(rows))
    assert page_usage(history["org"], WEEK) == raw_usage(history["org"], WEEK.first, WEEK.last)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM reporting_usageday")
        assert cur.fetchone()[0] == len(rows)


def test_the_rollup_is_a_periodic_task(history):
    """Registered with core.periodic (manage.py clock enqueues it every 15 minutes); run as a task it rolls up."""
    registered = {p.name: p.every_seconds for p in periodic.registered()}
    assert registered["reporting.tasks.roll_up_usage"] == 15 * 60
    result = tasks.roll_up_usage.enqueue()  # the suite's immediate backend runs it now
    assert result.return_value == UsageRollup.objects.get().rolled_until.isoformat()
    assert page_usage(history["org"], WEEK) == raw_usage(history["org"], WEEK.first, WEEK.last)


@pytest.mark.parametrize("first_offset", [0, 1, 3, 6])
@pytest.mark.parametrize("days", [1, 6, 7, 8, 15, 30, 366])
@pytest.mark.parametrize("watermark_offset", [None, -400, 0, 2, 9, 40])
def test_the_range_is_cut_into_days_weeks_and_tail_exactly(first_offset, days, watermark_offset):
    """Every day of the range is read exactly once: from the edge days, a whole rolled week, or the tail."""
    first = date(2026, 11, 2) + timedelta(days=first_offset)  # Nov 2, 2026 is a Monday
    rng = UsageRange("custom", first, first + timedelta(days=days - 1))
    watermark = None if watermark_offset is None else first + timedelta(days=watermark_offset)
    p = rng.sql_params(1, watermark)

    def span(a, b):
        return [a + timedelta(days=i) for i in range((b - a).days)]

    read = span(p["d1_from"], p["d1_to"]) + span(p["wk_from"], p["wk_to"]) + span(p["d2_from"], p["d2_to"])
    assert p["wk_to"] <= p["wk_from"] or (p["wk_from"].weekday(), p["wk_to"].weekday()) == (0, 0)  # whole weeks
    tail_first = p["tail_since"].date()
    read += span(tail_first, rng.last + timedelta(days=1))
    assert sorted(read) == span(rng.first, rng.last + timedelta(days=1))
    assert watermark is None or all(d < watermark for d in read if d < tail_first)


def test_whole_weeks_are_read_from_the_weekly_rollup_exactly(monkeypatch, funded_org, member_membership):
    org = funded_org
    bo = MembershipFactory(org=org, role="member")
    give(org, member_membership, 5_000)
    give(org, bo, 5_000)
    for back in range(1, 29):
        charge_on(monkeypatch, TODAY - timedelta(days=back), org, member_membership, back)
        if back % 3 == 0:
            charge_on(monkeypatch, TODAY - timedelta(days=back), org, bo, 7, hour=23)
    roll_up_usage()
    assert UsageWeek.objects.filter(org=org).exists() and UsageOrgDay.objects.filter(org=org).exists()
    member_charge_usage(org=org, membership_id=bo.pk, amount=4)  # the tail
    for first_back, last_back in [(29, 0), (20, 3), (13, 13), (27, 1)]:
        rng = UsageRange("custom", TODAY - timedelta(days=first_back), TODAY - timedelta(days=last_back))
        expected = raw_usage(org, rng.first, rng.last)
        assert page_usage(org, rng) == expected
        assert sum(u for _, u in usage_days(org.pk, rng)) == sum(expected.values())
    # A changed weekly row shows: the page reads the weeks (a whole week lies in the last 29 days).
    rng = UsageRange("custom", TODAY - timedelta(days=29), TODAY)
    whole = UsageWeek.objects.filter(
        org=org, week__gte=rng.first, week__lte=UsageRollup.objects.get().rolled_until - timedelta(days=7)
    )
    week = whole.filter(wallet__user=bo.user).order_by("week").last()
    before = page_usage(org, rng)[bo.user_id]
    UsageWeek.objects.filter(pk=week.pk).update(credits=week.credits + 500)
    assert page_usage(org, rng)[bo.user_id] == before + 500
