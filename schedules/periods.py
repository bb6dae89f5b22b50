"""Period math for schedules (pure functions on dates).

A period runs from one cadence day to the next:
- monthly on day D: from D of a month to D of the next; D 29-31 clamps to a short month's last day
  (day 31: Jan 31, Feb 28 or 29, Mar 31, ...);
- weekly: seven days from the start date's weekday;
- every N days: N days, counted from the start date.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import NamedTuple


class Period(NamedTuple):
    start: date
    end: date  # exclusive: the next period's start


def clamp(year: int, month: int, day: int) -> date:
    """Day `day` of the month, or the month's last day when it is shorter."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def period_of(cadence: str, day: date, *, anchor: date, day_of_month: int | None = None, every_days: int | None = None):
    """The period containing `day`."""
    if cadence == "monthly":
        dom = day_of_month or anchor.day
        start = clamp(day.year, day.month, dom)
        if start > day:
            start = clamp(*_shift(day.year, day.month, -1), dom)
        return Period(start, clamp(*_shift(start.year, start.month, 1), dom))
    length = 7 if cadence == "weekly" else int(every_days or 1)
    k = (day - anchor).days // length
    start = anchor + timedelta(days=k * length)
    return Period(start, start + timedelta(days=length))


def first_start_on_or_after(cadence: str, day: date, **kw) -> date:
    """The first period start on or after `day`."""
    period = period_of(cadence, day, **kw)
    return period.start if period.start == day else period.end


def schedule_period(schedule, day: date) -> Period:
    return period_of(
        schedule.cadence,
        day,
        anchor=schedule.start_date,
        day_of_month=schedule.day_of_month,
        every_days=schedule.every_days,
    )


def schedule_first_start(schedule, day: date) -> date | None:
    """The next period start on or after both `day` and the start date; None after the end date."""
    start = first_start_on_or_after(
        schedule.cadence,
        max(day, schedule.start_date),
        anchor=schedule.start_date,
        day_of_month=schedule.day_of_month,
        every_days=schedule.every_days,
    )
    if schedule.end_date is not None and start > schedule.end_date:
        return None
    return start
