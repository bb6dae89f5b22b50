"""Period math: monthly day D (29-31 clamp to the month's last day), weekly, every N days."""

from datetime import date

import pytest

from schedules.periods import Period, first_start_on_or_after, period_of


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 1, 31), Period(date(2026, 1, 31), date(2026, 2, 28))),
        (date(2026, 2, 28), Period(date(2026, 2, 28), date(2026, 3, 31))),
        (date(2026, 3, 15), Period(date(2026, 2, 28), date(2026, 3, 31))),
        (date(2028, 2, 10), Period(date(2028, 1, 31), date(2028, 2, 29))),  # leap year: Feb 29
        (date(2026, 12, 31), Period(date(2026, 12, 31), date(2027, 1, 31))),
    ],
)
def test_monthly_day_31_runs_on_the_months_last_day(day, expected):
    assert period_of("monthly", day, anchor=date(2026, 1, 1), day_of_month=31) == expected


def test_monthly_day_30_in_february_and_april():
    assert period_of("monthly", date(2026, 3, 1), anchor=date(2026, 1, 1), day_of_month=30) == Period(
        date(2026, 2, 28), date(2026, 3, 30)
    )
    assert period_of("monthly", date(2026, 4, 30), anchor=date(2026, 1, 1), day_of_month=30).end == date(2026, 5, 30)


def test_monthly_day_1():
    assert period_of("monthly", date(2026, 5, 17), anchor=date(2026, 1, 1), day_of_month=1) == Period(
        date(2026, 5, 1), date(2026, 6, 1)
    )


def test_weekly_counts_from_the_start_date():
    anchor = date(2026, 1, 7)  # a Wednesday
    assert period_of("weekly", date(2026, 1, 20), anchor=anchor) == Period(date(2026, 1, 14), date(2026, 1, 21))
    assert period_of("weekly", date(2026, 1, 21), anchor=anchor) == Period(date(2026, 1, 21), date(2026, 1, 28))


def test_every_n_days():
    anchor = date(2026, 1, 1)
    assert period_of("every_n_days", date(2026, 1, 11), anchor=anchor, every_days=10) == Period(
        date(2026, 1, 11), date(2026, 1, 21)
    )
    assert period_of("every_n_days", date(2026, 1, 10), anchor=anchor, every_days=10) == Period(
        date(2026, 1, 1), date(2026, 1, 11)
    )


def test_first_start_on_or_after():
    assert first_start_on_or_after("monthly", date(2026, 1, 31), anchor=date(2026, 1, 1), day_of_month=31) == date(
        2026, 1, 31
    )
    assert first_start_on_or_after("monthly", date(2026, 2, 1), anchor=date(2026, 1, 1), day_of_month=31) == date(
        2026, 2, 28
    )
    assert first_start_on_or_after("weekly", date(2026, 1, 8), anchor=date(2026, 1, 7)) == date(2026, 1, 14)
