"""The Usage page (issue 19): each member's usage in a chosen range of UTC days, the org's usage per day, and
a CSV export of member x day rows; plus the daily rollup that keeps it fast (docs/usage.md#the-usage-page).

    rng, errors = parse_range(request.GET)                 # errors: {field: message}
    page = members_page(org.pk, rng, cursor=..., using=alias)   # 1 query: a page of 50 + totals
    days = usage_days(org.pk, rng, using=alias)                # 1 query: the org's usage per day
    copy_usage_csv(org.pk, rng, using=alias)                   # 1 COPY statement, streamed

What counts as usage is what reporting/usage.py counts: a member's debits on their Default-wallet pockets
funded by the org, in a transfer that credited the org's Usage pocket. Each read is one statement whatever
the org's size: the rollup (reporting.models.UsageDay) for the days before its watermark, the ledger for the
live tail after it, in one snapshot (sql/usage_page_rows.sql), so figures are exact.

`roll_up_usage` (the periodic task in reporting.tasks calls it) rolls whole UTC days that ended more than
ROLLUP_LAG ago, in chunks, each an upsert by (org, wallet, day) plus the watermark's move in one
transaction, under a transaction-level advisory lock (a second worker at the same moment skips).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from core.money import dollars
from core.sql import load_sql
from reporting.models import UsageRollup

PAGE_SIZE = 50
MAX_DAYS = 366
ROLLUP_LAG = timedelta(hours=1)  # a day is rolled up once it ended this long ago (no transaction is that long)
ROLLUP_CHUNK_DAYS = 31  # days per rollup transaction
_LOCK_KEY = 0x0C0FFEE5_19  # pg advisory lock: one rollup at a time

_TAIL = load_sql(__file__, "usage_page_tail.sql").strip()
_MEMBERS = load_sql(__file__, "usage_page_members.sql").replace("{tail}", _TAIL)
_DAYS = load_sql(__file__, "usage_page_days.sql").replace("{tail}", _TAIL)
_EXPORT = load_sql(__file__, "usage_page_export.sql").replace("{tail}", _TAIL)
_ROLLUP = [part.strip() for part in load_sql(__file__, "usage_rollup.sql").split(";\n") if part.strip()]
_WATERMARK = "SELECT rolled_until FROM reporting_usagerollup WHERE id = 1"
_FIRST_USAGE = """
SELECT min(u.created_at) FROM wallets_wallet uw
JOIN wallets_pocket up ON up.wallet_id = uw.id AND up.funding_org_id IS NOT NULL
JOIN LATERAL (SELECT e.created_at FROM wallets_entry e WHERE e.pocket_id = up.id ORDER BY e.created_at LIMIT 1) u
    ON true
WHERE uw.kind = 'external' AND uw.code = 'usage'
"""

PRESETS = [("30d", "Last 30 days"), ("month", "This month"), ("7d", "Last 7 days"), ("custom", "Custom dates")]
_PRESET_KEYS = {key for key, _ in PRESETS}


# --- the range -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageRange:
    """UTC days first..last, both included."""

    preset: str
    first: date
    last: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def as_params(self) -> dict[str, str]:
        """The GET parameters that select this range again (the pager's and the export's links)."""
        if self.preset == "custom":
            return {"range": "custom", "from": self.first.isoformat(), "to": self.last.isoformat()}
        return {"range": self.preset}

    def sql_params(self, org_id: int, watermark: date | None) -> dict:
        """The statements' parameters: the rolled part of the range (days before `watermark`, the first day not
        rolled up; None: nothing is) cut into its whole ISO weeks and the days at either edge, and the live
        tail's start (the watermark, or the range's start if later)."""
        rolled_end = min(self.last + timedelta(days=1), watermark) if watermark else self.first
        rolled_end = max(rolled_end, self.first)
        wk_from = self.first + timedelta(days=(7 - self.first.weekday()) % 7)  # the first Monday in the range
        wk_to = rolled_end - timedelta(days=rolled_end.weekday())  # the last Monday whose week is rolled
        if wk_to <= wk_from:  # no whole week: days only
            wk_from = wk_to = d2_from = d2_to = rolled_end
            d1_to = rolled_end
        else:
            d1_to, d2_from, d2_to = wk_from, wk_to, rolled_end
        tail_since = datetime.combine(rolled_end, time.min, tzinfo=UTC)
        return {
            "org": org_id,
            "r_from": self.first,
            "r_to": rolled_end,
            "d1_from": self.first,
            "d1_to": d1_to,
            "wk_from": wk_from,
            "wk_to": wk_to,
            "d2_from": d2_from,
            "d2_to": d2_to,
            "tail_since": tail_since,
            "until": self.until,
        }


def preset_range(preset: str, today: date) -> UsageRange:
    if preset == "7d":
        return UsageRange("7d", today - timedelta(days=6), today)
    if preset == "30d":
        return UsageRange("30d", today - timedelta(days=29), today)
    return UsageRange("month", today.replace(day=1), today)


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def parse_range(params: Mapping[str, str], today: date | None = None) -> tuple[UsageRange, dict[str, str]]:
    """The range the GET parameters ask for, and {field: message} for what is wrong ("range", "from", "to").
    Without a range it is the last 30 days, the window of the Balance card's burn rate (This month is often empty
    on its first days). With errors the range returned is the same, for whoever wants to show something anyway."""
    today = today or timezone.now().astimezone(UTC).date()
    preset = (params.get("range") or "").strip()
    raw_from, raw_to = (params.get("from") or "").strip(), (params.get("to") or "").strip()
    if not preset:
        preset = "custom" if raw_from or raw_to else "30d"
    errors: dict[str, str] = {}
    if preset not in _PRESET_KEYS:
        errors["range"] = "Choose one of the ranges in the list."
    elif preset != "custom":
        return preset_range(preset, today), errors
    else:
        first, last = _parse_day(raw_from), _parse_day(raw_to)
        if first is None:
            errors["from"] = "Enter a start date, like 2026-12-01." if not raw_from else "Enter a date like 2026-12-01."
        if last is None:
            errors["to"] = "Enter an end date, like 2026-12-31." if not raw_to else "Enter a date like 2026-12-31."
        if first and last:
            if first > last:
                errors["to"] = "The end date is before the start date."
            elif (last - first).days + 1 > MAX_DAYS:
                errors["to"] = f"Choose at most {MAX_DAYS} days (this range has {(last - first).days + 1:,})."
            else:
                return UsageRange("custom", first, last), errors
    return preset_range("30d", today), errors


# --- reads ------------------------------------------------------------------------------------------


class CursorError(ValueError):
    """A page link not made by this module."""


def encode_cursor(used: int, wallet_id: int) -> str:
    return base64.urlsafe_b64encode(f"u|{used}|{wallet_id}".encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[int, int]:
    try:
        flag, used, wallet_id = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split("|")
        if flag != "u":
            raise ValueError(flag)
        return int(used), int(wallet_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise CursorError("That page link is not valid.") from exc


@dataclass(frozen=True, slots=True)
class MemberUsageRow:
    wallet_id: int
    user_id: int
    name: str
    email: str
    used: int
    total: int
    status: str | None  # the membership's status in the org (None: never a member, e.g. a deleted membership)

    @property
    def label(self) -> str:
        return self.name or self.email

    @property
    def usd(self) -> str:
        return dollars(self.used)

    @property
    def share(self) -> Decimal:
        """Percent of the org's usage in the range, one decimal place."""
        if not self.total:
            return Decimal(0)
        return (Decimal(self.used) * 100 / Decimal(self.total)).quantize(Decimal("0.1"), ROUND_HALF_UP)

    @property
    def is_current(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True, slots=True)
class MembersPage:
    rows: list[MemberUsageRow]
    total: int  # credits used by the org's members in the range
    members: int  # members with usage in the range
    next_cursor: str | None
    days: list[tuple[date, int]]  # the org's usage on every day of the range, oldest first (usage_days)


def rolled_until(using: str = DEFAULT_DB_ALIAS) -> date | None:
    """The rollup's watermark: the first UTC day not rolled up (None before the first rollup). ONE query.

    Read once per page and passed to the reads below: they take the rollup before it and the ledger from it on.
    If the rollup moves on meanwhile, the days it adds are still read from the ledger and the rows before the
    old watermark stay as they were (a re-roll writes the same sums), so the figures stay exact."""
    with connections[using].cursor() as cur:
        cur.execute(_WATERMARK)
        row = cur.fetchone()
    return row[0] if row else None


_UNREAD = object()


def members_page(
    org_id: int,
    rng: UsageRange,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    using: str = DEFAULT_DB_ALIAS,
    watermark: date | object | None = _UNREAD,
) -> MembersPage:
    """Members with usage in the range, most first, `limit` per page after `cursor` (CursorError if it is
    not one of ours), with the totals and the org's usage per day (`days`, as usage_days reads it). ONE query
    (two when `watermark` is not passed: it is read first)."""
    after_used, after_wallet = decode_cursor(cursor) if cursor else (None, None)
    if watermark is _UNREAD:
        watermark = rolled_until(using)
    params = {**rng.sql_params(org_id, watermark), "after_used": after_used, "after_wallet": after_wallet}
    params["lim"] = limit + 1
    with connections[using].cursor() as cur:
        cur.execute(_MEMBERS, params)
        fetched = cur.fetchall()
    total, members = (int(fetched[0][5]), int(fetched[0][6])) if fetched else (0, 0)
    found = dict(zip(fetched[0][8] or [], fetched[0][9] or [], strict=True)) if fetched else {}
    rows = [
        MemberUsageRow(int(w), int(u), name, email, int(used), total, status)
        for w, u, name, email, used, _, _, status, _, _ in fetched
        if w is not None
    ]
    more = len(rows) > limit
    rows = rows[:limit]
    return MembersPage(
        rows=rows,
        total=total,
        members=members,
        next_cursor=encode_cursor(rows[-1].used, rows[-1].wallet_id) if more else None,
        days=_every_day(rng, found),
    )


def usage_days(
    org_id: int, rng: UsageRange, using: str = DEFAULT_DB_ALIAS, watermark: date | object | None = _UNREAD
) -> list[tuple[date, int]]:
    """(day, credits) for every day of the range, oldest first, 0 on days without usage. ONE query (two
    when `watermark` is not passed)."""
    if watermark is _UNREAD:
        watermark = rolled_until(using)
    with connections[using].cursor() as cur:
        cur.execute(_DAYS, rng.sql_params(org_id, watermark))
        return _every_day(rng, dict(cur.fetchall()))


def _every_day(rng: UsageRange, found: dict) -> list[tuple[date, int]]:
    return [(rng.first + timedelta(days=i), int(found.get(rng.first + timedelta(days=i), 0))) for i in range(rng.days)]


def copy_usage_csv(
    org_id: int, rng: UsageRange, flush_bytes: int = 256 * 1024, using: str = DEFAULT_DB_ALIAS
) -> Iterator[bytes]:
    """The export (date, member, email, credits, usd; a header first) as CSV bytes, one row per member and day
    with usage, streamed by COPY (SELECT ...) TO STDOUT in ~256 KB pieces: flat memory for any size."""
    with transaction.atomic(using=using), connections[using].cursor() as cur:
        cur.execute("SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0")
        cur.execute(_WATERMARK)
        row = cur.fetchone()
        params = {**rng.sql_params(org_id, row[0] if row else None), "per_usd": int(settings.CREDITS_PER_USD)}
        statement = connections[using].ops.compose_sql(_EXPORT, params)
        copy_sql = f"COPY ({statement}) TO STDOUT WITH (FORMAT csv, HEADER true)"
        with cur.cursor.copy(copy_sql) as copy:
            buf = bytearray()
            for data in copy:
                buf += data
                if len(buf) >= flush_bytes:
                    yield bytes(buf)
                    buf.clear()
            if buf:
                yield bytes(buf)


# --- the rollup ---------------------------------------------------------------------------------------


def roll_up_days(first: date, end: date, using: str = DEFAULT_DB_ALIAS) -> int:
    """Recompute the rollup rows of the days first..end (end excluded) from the ledger, every org, upserting
    by (org, wallet, day); then the weeks touching those days and the orgs' daily totals from them. Idempotent.
    Returns the number of (org, wallet, day) rows written. Does not move the watermark."""
    params = {
        "since": datetime.combine(first, time.min, tzinfo=UTC),
        "until": datetime.combine(end, time.min, tzinfo=UTC),
        "week_from": first - timedelta(days=first.weekday()),
        "day_from": first,
        "day_to": end,
    }
    with transaction.atomic(using=using), connections[using].cursor() as cur:
        days, weeks, org_days = _ROLLUP
        cur.execute(days, params)
        written = cur.rowcount
        cur.execute(weeks, params)
        cur.execute(org_days, params)
    return written


def roll_up_usage(now: datetime | None = None, using: str = DEFAULT_DB_ALIAS) -> date | None:
    """Bring the rollup up to the last whole UTC day that ended more than ROLLUP_LAG ago, in chunks of
    ROLLUP_CHUNK_DAYS, each chunk's rows and the watermark's move in one transaction. Returns the new
    watermark, or None when another rollup holds the lock (it does the same work)."""
    end = ((now or timezone.now()) - ROLLUP_LAG).astimezone(UTC).date()  # days before it are finished
    while True:
        with transaction.atomic(using=using), connections[using].cursor() as cur:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK_KEY])
            if not cur.fetchone()[0]:
                return None
            state = UsageRollup.objects.using(using).select_for_update().filter(pk=1).first()
            if state is None:
                cur.execute(_FIRST_USAGE)
                (first_at,) = cur.fetchone()
                start = min(first_at.astimezone(UTC).date(), end) if first_at else end
                state = UsageRollup.objects.using(using).create(pk=1, rolled_until=start)
            start = state.rolled_until
            if start >= end:
                return start
            stop = min(end, start + timedelta(days=ROLLUP_CHUNK_DAYS))
            roll_up_days(start, stop, using=using)
            state.rolled_until = stop
            state.save(using=using, update_fields=["rolled_until", "updated_at"])
