"""Balance over time: the org wallet's end-of-day balances per credit type, and their SVG layout.

The Billing page's chart card. `balance_chart` reads every day's balance in ONE query
(`sql/balance_chart.sql`: an index probe per day and pocket, whatever the number of entries) and lays
the credit types out as stacked bands in a fixed box, with a "nice" axis (four equal whole-number
steps), so the template only draws polygons and labels: no JavaScript, no chart library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from core.money import dollars
from core.sql import load_sql
from wallets.models import CreditType, Wallet

_BALANCE_BY_DAY = load_sql(__file__, "balance_chart.sql")


@dataclass
class ChartSeries:
    credit_type: CreditType
    values: list[int]  # end-of-day balance, one per day
    path: str = ""  # SVG polygon points of the stacked band


@dataclass
class ChartDay:
    """One day's column: a focusable hit area whose title and tooltip say that day's balances."""

    label: str  # what a screen reader and the <title> say: "Mar 3: Org-allocated 50,000, Promo 5,000; ..."
    lines: list[tuple[float, str]]  # the visible tooltip: (baseline y, text), one line each
    x: float  # the day's x (the cursor line)
    hit_x: float  # the hit area, a column as wide as one day
    hit_w: float
    tip_x: float  # the tooltip box, kept inside the chart
    tip_y: float
    tip_w: float
    tip_h: float


@dataclass
class BalanceChart:
    days: list[date]
    series: list[ChartSeries]
    max_total: int
    width: int = 640
    height: int = 180
    ticks: list[tuple[float, str]] = field(default_factory=list)  # (y, label)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    is_empty: bool = False  # the org wallet held nothing on any day of the range
    points: list[ChartDay] = field(default_factory=list)  # hover/focus values, one per day

    @property
    def totals(self) -> list[int]:
        return [sum(s.values[i] for s in self.series) for i in range(len(self.days))]


CHART_RANGES = (30, 90)


def balance_chart(
    wallet: Wallet, by_type: list, days: int = 30, today: date | None = None, using: str = DEFAULT_DB_ALIAS
) -> BalanceChart:
    """End-of-day balances of `wallet` per credit type over the last `days` days, stacked, as SVG
    geometry, with ONE query on the database `using` (the read replica when core.replica.read_alias allows
    it): for each day and pocket, the balance_after of the pocket's last entry before the day ends.
    `by_type` (from wallet_balance, which the page already has) gives the credit types, in the order they
    are stacked."""
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    day_list = [start + timedelta(days=i) for i in range(days)]
    ends = [timezone.make_aware(datetime.combine(d + timedelta(days=1), time.min)) for d in day_list]
    found: dict[tuple[int, int], int] = {}
    with connections[using].cursor() as cursor:
        cursor.execute(_BALANCE_BY_DAY, [ends, wallet.pk])
        for i, ct_id, total in cursor.fetchall():
            found[(int(i) - 1, ct_id)] = int(total)
    series = [
        ChartSeries(tb.credit_type, [found.get((i, tb.credit_type.pk), 0) for i in range(days)]) for tb in by_type
    ]
    chart = BalanceChart(days=day_list, series=series, max_total=0)
    _layout(chart)
    return chart


def _nice_max(value: int) -> int:
    """The axis top: four equal whole-number steps of 1, 2, 2.5 or 5 x 10^k (e.g. 0/25/50/75/100, never
    0/2/5/7/10) reaching at least `value`."""
    magnitude = 1
    while True:
        for step in (1, 2, 25, 5) if magnitude >= 10 else (1, 2, 5):
            tick = step * magnitude // (10 if step == 25 else 1)
            if 4 * tick >= max(value, 1):
                return 4 * tick
        magnitude *= 10


def _layout(chart: BalanceChart) -> None:
    """Stacked bands as polygon points in a width x height box (left 56 px for the axis labels)."""
    left, right, top, bottom = 56, chart.width - 8, 8, chart.height - 22
    totals = chart.totals
    chart.max_total = _nice_max(max(totals, default=0))
    n = len(chart.days)

    def x(i: int) -> float:
        return left + (right - left) * (i / (n - 1) if n > 1 else 0)

    def y(v: int) -> float:
        return bottom - (bottom - top) * v / chart.max_total

    base = [0] * n
    for s in chart.series:
        upper = [base[i] + s.values[i] for i in range(n)]
        points = [f"{x(i):.1f},{y(upper[i]):.1f}" for i in range(n)]
        points += [f"{x(i):.1f},{y(base[i]):.1f}" for i in range(n - 1, -1, -1)]
        s.path = " ".join(points)
        base = upper
    chart.ticks = [(y(chart.max_total * f // 4), f"{chart.max_total * f // 4:,}") for f in range(5)]
    chart.is_empty = not any(totals)
    chart.x_labels = [(x(i), chart.days[i].strftime("%b %-d")) for i in (0, n // 2, n - 1)] if n else []
    chart.points = _points(chart, x, top, bottom, left, right)


TIP_LINE = 12  # tooltip line height, in the chart's units (its text is 9 units high)
TIP_WIDTH = 150


def _points(chart: BalanceChart, x, top: float, bottom: float, left: float, right: float) -> list[ChartDay]:
    """Each day's values for hover and keyboard focus: a column-wide hit area, and a tooltip box placed beside
    the day and kept inside the chart (no JavaScript: CSS shows it on :hover and :focus)."""
    n = len(chart.days)
    step = (right - left) / (n - 1) if n > 1 else right - left
    totals = chart.totals
    points = []
    for i, day in enumerate(chart.days):
        when = day.strftime("%b %-d, %Y")
        parts = [f"{s.credit_type.name} {s.values[i]:,}" for s in chart.series]
        total = f"Total {totals[i]:,} credits ({dollars(totals[i])})"
        lines = [when, *parts, total]
        tip_h = TIP_LINE * len(lines) + 6
        cx = x(i)
        tip_x = cx + 8 if cx + 8 + TIP_WIDTH <= right else cx - 8 - TIP_WIDTH
        points.append(
            ChartDay(
                label=f"{when}: {', '.join(parts)}; {total}",
                lines=[(top + TIP_LINE * (k + 1), text) for k, text in enumerate(lines)],
                x=cx,
                hit_x=max(left, cx - step / 2),
                hit_w=min(right, cx + step / 2) - max(left, cx - step / 2),
                tip_x=max(left, tip_x),
                tip_y=top,
                tip_w=TIP_WIDTH,
                tip_h=min(tip_h, bottom - top),
            )
        )
    return points
