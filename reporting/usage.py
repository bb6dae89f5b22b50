"""Where the credits go: burn rate, runway, each member's usage this month, and a member's last 7 days.

Usage is the transfers of kind Usage: a member's Default-wallet pockets funded by an org pay the external
Usage wallet's pocket for that org. An org's usage is read on its Usage pockets (one per credit type); a
member's is read on their own pockets funded by the org, each debit kept when the same transfer credited the
Usage wallet. Every read is ONE query whatever the number of members or entries (sql/usage_*.sql), on the
database `using` (the read replica when core.replica.read_alias allows it). Days and months are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from core.money import dollars
from core.sql import load_sql
from reporting.chart import _nice_max  # one axis rule for every chart

_ORG_TOTAL = load_sql(__file__, "usage_org_total.sql")
_BY_MEMBER = load_sql(__file__, "usage_by_member.sql")
_MEMBER_DAYS = load_sql(__file__, "usage_member_days.sql")

BURN_DAYS = 30  # the burn rate's window: the last 30 days up to now
CHART_DAYS = 7  # the member wallet's usage chart: today and the 6 days before (UTC)


@dataclass(frozen=True, slots=True)
class BurnRate:
    """Credits used in the last `days` days, per day, and how long `balance` lasts at that rate."""

    used: int
    balance: int
    days: int = BURN_DAYS

    @property
    def per_day(self) -> Decimal:
        return Decimal(self.used) / Decimal(self.days)

    @property
    def per_day_text(self) -> str:
        """ "1,250" or "12.5" (one decimal place, only when the rate is not whole)."""
        value = self.per_day.quantize(Decimal("0.1"), ROUND_HALF_UP)
        return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.1f}"

    @property
    def per_day_usd(self) -> str:
        return dollars(self.per_day)  # type: ignore[arg-type]  # any number Decimal() takes

    @property
    def runway_days(self) -> int | None:
        """Whole days the balance lasts at this rate (None without usage)."""
        if self.used <= 0:
            return None
        return int(Decimal(max(self.balance, 0)) / self.per_day)

    @property
    def runway_text(self) -> str:
        """How long the balance lasts, in the unit a person reads at a glance: "70 days" under 90 days, "11 months"
        under two years, then "6.5 years"; "" without usage."""
        days = self.runway_days
        if days is None:
            return ""
        if days < 90:
            return f"{days:,} day{'' if days == 1 else 's'}"
        if days < 730:
            return f"{round(days / 30.44)} months"
        return f"{days / 365.25:,.1f} years"


@dataclass(frozen=True, slots=True)
class UsageDay:
    day: date
    used: int
    label: str  # what a screen reader and the bar's <title> say: "Dec 3: 120 credits ($1.20)"
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:  # the bar's centre: its day label
        return self.x + self.w / 2


@dataclass
class UsageChart:
    """Bars of usage per day, laid out in a width x height box (the template only draws them)."""

    days: list[UsageDay]
    max_used: int
    width: int = 360
    height: int = 150
    ticks: list[tuple[float, str]] = field(default_factory=list)  # (y, label)

    @property
    def total(self) -> int:
        return sum(d.used for d in self.days)

    @property
    def is_empty(self) -> bool:
        return not any(d.used for d in self.days)


@dataclass(frozen=True, slots=True)
class MemberUsage:
    burn: BurnRate
    chart: UsageChart


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def month_start(now: datetime | None = None) -> datetime:
    """The first moment of the current calendar month, UTC."""
    now = _now(now).astimezone(UTC)
    return datetime.combine(now.date().replace(day=1), time.min, tzinfo=UTC)


def org_burn_rate(org_id: int, balance: int, now: datetime | None = None, using: str = DEFAULT_DB_ALIAS) -> BurnRate:
    """The org's usage over the last 30 days (to `now`), and how long `balance` (the org wallet's total) lasts
    at that rate. ONE query on the org's Usage pockets."""
    now = _now(now)
    with connections[using].cursor() as cursor:
        cursor.execute(_ORG_TOTAL, {"org": org_id, "since": now - timedelta(days=BURN_DAYS), "until": now})
        (used,) = cursor.fetchone()
    return BurnRate(used=int(used), balance=balance)


def usage_this_month(
    org_id: int, user_ids: list[int], now: datetime | None = None, using: str = DEFAULT_DB_ALIAS
) -> dict[int, int]:
    """Credits each of `user_ids` used this calendar month (UTC) paid by the org: {user id: credits}, absent
    when none. ONE query for the whole list (a page of members), none when it is empty."""
    if not user_ids:
        return {}
    now = _now(now)
    params = {"org": org_id, "users": list(user_ids), "since": month_start(now), "until": now}
    with connections[using].cursor() as cursor:
        cursor.execute(_BY_MEMBER, params)
        return {user_id: int(used) for user_id, used in cursor.fetchall()}


def member_usage(
    user_id: int,
    org_id: int | None,
    balance: int,
    now: datetime | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> MemberUsage:
    """A member's burn rate (last 30 days) and last-7-days chart, paid by the org `org_id` (by any org when
    None), in ONE query: usage per UTC day over the 30 days. `balance` is what the burn rate's runway uses."""
    now = _now(now)
    params = {"user": user_id, "org": org_id, "since": now - timedelta(days=BURN_DAYS), "until": now}
    with connections[using].cursor() as cursor:
        cursor.execute(_MEMBER_DAYS, params)
        by_day = {day: int(used) for day, used in cursor.fetchall()}
    today = now.astimezone(UTC).date()
    week = [today - timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    return MemberUsage(
        burn=BurnRate(used=sum(by_day.values()), balance=balance),
        chart=usage_chart([(d, by_day.get(d, 0)) for d in week]),
    )


def usage_chart(values: list[tuple[date, int]], width: int = 360, height: int = 150) -> UsageChart:
    """One bar per day (left 56 units for the axis labels, 22 at the bottom for the day labels). The box is
    narrow so that its text stays legible on a phone; the CSS caps its width on a laptop."""
    left, right, top, bottom = 56, width - 8, 8, height - 22
    top_value = _nice_max(max((v for _, v in values), default=0))
    slot = (right - left) / max(len(values), 1)
    bar_w = slot * 0.6

    def y(v: int) -> float:
        return bottom - (bottom - top) * v / top_value

    days = []
    for i, (day, used) in enumerate(values):
        days.append(
            UsageDay(
                day=day,
                used=used,
                label=f"{day.strftime('%b %-d')}: {used:,} credit{'' if used == 1 else 's'} ({dollars(used)})",
                x=left + slot * i + (slot - bar_w) / 2,
                y=y(used),
                w=bar_w,
                h=bottom - y(used),
            )
        )
    chart = UsageChart(days=days, max_used=top_value, width=width, height=height)
    chart.ticks = [(y(top_value * f // 4), f"{top_value * f // 4:,}") for f in range(5)]
    return chart
