"""What people see of expiring credits (issue 19, docs/expiry.md "What people see"). Reads only, never write.

- `balance_with_expiry(wallet)`: the Balance card's balance by credit type and the wallet's next expiry days, in
  the same two queries `wallets.selectors.wallet_balance` takes (the pockets grouped by type and day).
- `upcoming_expiry(wallet_id, ...)`: the next expiry days of one wallet (optionally only the pockets one org
  funded, or one credit type) and the credits due within 30 days. One query.
- `expiry_by_funder(pockets)`: the same per funding org, from pockets a page already has (no query).
- `org_pocket_days(org_id)` and `plan_draw(...)`: which expiry days a transfer out of the org wallet would send,
  soonest first or latest first (as `wallets.draw.split_by_expiry` splits it). One query, then arithmetic.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from core.money import credits_and_dollars
from wallets.draw import LATEST, ORDERS, SOONEST
from wallets.models import NEVER, CreditType, Pocket, Wallet
from wallets.selectors import TypeBalance, WalletBalance

SHOWN_DAYS = 3  # the next expiry days a page lists
SOON_DAYS = 30  # "N expire within 30 days"
ANY_FUNDER = object()  # upcoming_expiry's default: pockets funded by any org (or by none)


@dataclass(frozen=True, slots=True)
class ExpiringDay:
    day: datetime.date
    credits: int
    # The credit types expiring that day ("Promo"), in their display order; empty where the caller did not say.
    types: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """ "1,250 credits ($12.50)"."""
        return credits_and_dollars(self.credits)


@dataclass(slots=True)
class Expiry:
    """A wallet's (or a funding org's) next expiry days, soonest first, and what is due within SOON_DAYS."""

    days: list[ExpiringDay] = field(default_factory=list)  # at most SHOWN_DAYS
    more_days: int = 0  # further expiry days not listed
    soon: int = 0  # credits expiring within SOON_DAYS of today (today included)

    def __bool__(self) -> bool:
        return bool(self.days)

    @property
    def soon_text(self) -> str:
        return credits_and_dollars(self.soon)


def _expiry(
    rows: Iterable[tuple[datetime.date, int, tuple[int, str] | None]], limit: int, today: datetime.date
) -> Expiry:
    """Expiry from (day, credits, credit type) rows in any order (days may repeat); NEVER and empty rows are left
    out. The credit type is a (sort key, name) pair that names the day's credit types, or None (not named)."""
    by_day: dict[datetime.date, int] = defaultdict(int)
    names: dict[datetime.date, set[tuple[int, str]]] = defaultdict(set)
    for day, credits, named in rows:
        if day != NEVER and credits > 0:
            by_day[day] += credits
            if named is not None:
                names[day].add(named)
    days = sorted(by_day.items())
    soon_until = today + datetime.timedelta(days=SOON_DAYS)
    return Expiry(
        days=[ExpiringDay(d, c, tuple(name for _key, name in sorted(names[d]))) for d, c in days[:limit]],
        more_days=max(0, len(days) - limit),
        soon=sum(c for d, c in days if d <= soon_until),
    )


# --- one wallet ----------------------------------------------------------------------------------------------

_UPCOMING = """
SELECT p.expires_on, SUM(p.balance)::bigint AS credits,
       COUNT(*) OVER () AS days,
       SUM(SUM(p.balance) FILTER (WHERE p.expires_on <= %(soon)s)) OVER ()::bigint AS soon
FROM wallets_pocket p
WHERE p.wallet_id = %(wallet)s AND p.balance > 0 AND NOT p.is_external AND p.expires_on < %(never)s
  {funder} {credit_type}
GROUP BY p.expires_on
ORDER BY p.expires_on
LIMIT %(limit)s
"""


def upcoming_expiry(
    wallet_id: int,
    *,
    funding_org_id=ANY_FUNDER,
    credit_type_id: int | None = None,
    limit: int = SHOWN_DAYS,
    today: datetime.date | None = None,
) -> Expiry:
    """The wallet's next `limit` expiry days with their credits, and the credits due within 30 days. Only the
    pockets funded by `funding_org_id` when given (None: the wallet's own, unfunded credits). One query."""
    today = today or timezone.localdate()
    params = {
        "wallet": wallet_id,
        "soon": today + datetime.timedelta(days=SOON_DAYS),
        "never": NEVER,
        "limit": limit,
        "funder": funding_org_id,
        "credit_type": credit_type_id,
    }
    funder = ""
    if funding_org_id is None:
        funder = "AND p.funding_org_id IS NULL"
    elif funding_org_id is not ANY_FUNDER:
        funder = "AND p.funding_org_id = %(funder)s"
    sql = _UPCOMING.format(
        funder=funder, credit_type="AND p.credit_type_id = %(credit_type)s" if credit_type_id else ""
    )
    with connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    if not rows:
        return Expiry()
    return Expiry(
        days=[ExpiringDay(day, int(credits)) for day, credits, _n, _soon in rows],
        more_days=max(0, int(rows[0][2]) - len(rows)),
        soon=int(rows[0][3] or 0),
    )


_BALANCE_BY_DAY = """
SELECT credit_type_id, expires_on, SUM(balance)::bigint FROM wallets_pocket
WHERE wallet_id = %s AND balance <> 0 GROUP BY credit_type_id, expires_on
"""


def balance_with_expiry(wallet: Wallet, *, limit: int = SHOWN_DAYS) -> tuple[WalletBalance, Expiry]:
    """`wallet_balance(wallet)` (total and every credit type, zero included) and the wallet's next expiry days,
    in the same two queries: the pockets summed by credit type and expiry day, and the credit types."""
    with connection.cursor() as cur:
        cur.execute(_BALANCE_BY_DAY, [wallet.pk])
        rows = cur.fetchall()
    sums: dict[int, int] = defaultdict(int)
    for ct_id, _day, credits in rows:
        sums[ct_id] += int(credits)
    by_type = [TypeBalance(ct, sums.get(ct.pk, 0)) for ct in CreditType.objects.all()]
    balance = WalletBalance(wallet=wallet, total=sum(b.balance for b in by_type), by_type=by_type)
    named = {b.credit_type.pk: (i, b.credit_type.name) for i, b in enumerate(by_type)}
    return balance, _expiry([(day, int(c), named.get(ct)) for ct, day, c in rows], limit, timezone.localdate())


@dataclass(slots=True)
class FunderExpiry:
    funding_org_name: str  # "" for a person's own credits
    expiry: Expiry


def expiry_by_funder(pockets: Iterable[Pocket], *, limit: int = SHOWN_DAYS) -> list[FunderExpiry]:
    """The Wallet page's next expiry days per funding org, from the pockets it already read (with funding_org
    selected): no query. Funding orgs in the order the pockets come; only those with credits that expire."""
    rows: dict[int | None, list[tuple[datetime.date, int, tuple[int, str]]]] = {}
    names: dict[int | None, str] = {}
    for p in pockets:
        rows.setdefault(p.funding_org_id, []).append(
            (p.expires_on, p.balance, (p.credit_type.sort_order, p.credit_type.name))
        )
        names[p.funding_org_id] = p.funding_org.name if p.funding_org is not None else ""
    today = timezone.localdate()
    out = [FunderExpiry(names[k], _expiry(v, limit, today)) for k, v in rows.items()]
    return [f for f in out if f.expiry]


# --- what a transfer out of the org wallet would send ---------------------------------------------------------

_ORG_POCKET_DAYS = """
SELECT p.credit_type_id, p.expires_on, SUM(p.balance)::bigint
FROM wallets_pocket p JOIN wallets_wallet w ON w.id = p.wallet_id
WHERE w.kind = 'org' AND w.org_id = %s AND p.funding_org_id IS NULL AND p.balance > 0
GROUP BY p.credit_type_id, p.expires_on
"""


def org_pocket_days(org_id: int) -> dict[int, list[tuple[datetime.date, int]]]:
    """{credit type id: [(expiry day, credits), ...]} of the org wallet's own credits, NEVER included. One query."""
    out: dict[int, list[tuple[datetime.date, int]]] = defaultdict(list)
    with connection.cursor() as cur:
        cur.execute(_ORG_POCKET_DAYS, [org_id])
        for ct_id, day, credits in cur.fetchall():
            out[ct_id].append((day, int(credits)))
    return out


def has_expiring(days: Iterable[tuple[datetime.date, int]]) -> bool:
    return any(day != NEVER and credits > 0 for day, credits in days)


def plan_draw(days: Iterable[tuple[datetime.date, int]], amount: int, order: str = SOONEST) -> list[ExpiringDay]:
    """The expiring part of `amount` credits drawn from pockets with these (day, balance), in `order`: what
    `wallets.draw.split_by_expiry` sends (credits that never expire are left out). Fewer credits than `amount`
    when the pockets hold less (the caller shows the shortfall)."""
    if order not in ORDERS:
        order = SOONEST
    out, left = [], max(0, amount)
    for day, balance in sorted(days, reverse=(order == LATEST)):
        take = min(left, balance)
        if take <= 0:
            break
        if day != NEVER:
            out.append(ExpiringDay(day, take))
        left -= take
    return sorted(out, key=lambda d: d.day)
