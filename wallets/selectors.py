"""Reads for pages: balances and recent movements. Never write."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Sum
from django.db.models.expressions import RawSQL

from core.sql import load_sql
from wallets.models import CreditType, Entry, Pocket, Wallet


@dataclass
class TypeBalance:
    credit_type: CreditType
    balance: int


@dataclass
class WalletBalance:
    wallet: Wallet
    total: int
    by_type: list[TypeBalance]


def wallet_balance(wallet: Wallet) -> WalletBalance:
    """Total and split by credit type (every credit type listed, zero included). Two queries."""
    sums = dict(
        Pocket.objects.filter(wallet=wallet).values_list("credit_type_id").annotate(s=Sum("balance")).order_by()
    )
    by_type = [TypeBalance(ct, int(sums.get(ct.pk) or 0)) for ct in CreditType.objects.all()]
    return WalletBalance(wallet=wallet, total=sum(b.balance for b in by_type), by_type=by_type)


def pocket_balance(pocket: Pocket) -> int:
    """A pocket's balance: the cached one, or for an external pocket (which keeps none: 0 by CHECK, so that
    no charge waits on its row) the sum of its entries. One query for an external pocket."""
    if pocket.is_external:
        return int(Entry.objects.filter(pocket=pocket).aggregate(s=Sum("amount"))["s"] or 0)
    return pocket.balance


def wallet_pockets(wallet: Wallet) -> list[Pocket]:
    """Non-empty pockets with their credit type and funding org (for 'by funding org')."""
    return list(
        Pocket.objects.filter(wallet=wallet, balance__gt=0)
        .select_related("credit_type", "funding_org")
        .order_by("credit_type__sort_order", "funding_org__name")
    )


_TYPE_BALANCES_AFTER = load_sql(__file__, "type_balances_after.sql")


def type_balances_after(
    points: Sequence[tuple[int, int, datetime.datetime, int]], using: str = DEFAULT_DB_ALIAS
) -> list[int | None]:
    """For each (wallet id, credit type id, created_at, entry id) of an internal wallet: that wallet's balance of
    that credit type right after that entry, over all its pockets of the type. An entry's own `balance_after` is
    its pocket's only, which is not the type's balance once a wallet holds credits that expire on different days.
    One query (sql/type_balances_after.sql), whatever the points; None for a point with no pocket of the type."""
    # Run even for no points: a page's query count does not depend on its data.
    wallet_ids, type_ids, stamps, entry_ids = ([p[i] for p in points] for i in range(4))
    with connections[using].cursor() as cur:
        cur.execute(_TYPE_BALANCES_AFTER, [wallet_ids, type_ids, stamps, entry_ids])
        found = dict(cur.fetchall())
    return [found.get(i) for i in range(1, len(points) + 1)]


# The credit type's balance of the entry's wallet right after the entry's transfer, as a column of the entry
# query itself (no query of its own): each of the wallet's pockets of that type as of the transfer's last entry
# of that wallet and type, summed (as sql/type_balances_after.sql). A transfer that drew on several pockets of one
# type has an entry for each, and every one of them shows the balance after the whole transfer.
_TYPE_BALANCE_AFTER_COLUMN = load_sql(__file__, "type_balance_after_column.sql")


def _with_type_balance(qs):
    """`type_balance_after` on each entry: None on external wallets (they keep no balance)."""
    return qs.annotate(type_balance_after=RawSQL(_TYPE_BALANCE_AFTER_COLUMN, []))  # noqa: S611 (sql/, no parameters)


def recent_entries(wallet: Wallet, limit: int = 10) -> list[Entry]:
    """The wallet's latest movements, newest first, with the transfer, its actor and credit type, and the
    credit type's balance after each (`type_balance_after`)."""
    return list(
        _with_type_balance(Entry.objects.filter(wallet=wallet))
        .select_related("transfer", "transfer__actor", "transfer__org", "credit_type")
        .order_by("-id")[:limit]
    )


@dataclass
class LedgerProblem:
    kind: str
    detail: str


def _entry_problem(eid, ew, pw, ec, pc, eo, to, no_pocket, no_transfer) -> str:
    if no_pocket or no_transfer:
        return f"entry {eid}: its {'pocket' if no_pocket else 'transfer'} does not exist"
    return (
        f"entry {eid}: wallet {ew}, credit type {ec}, org {eo} but its pocket's wallet {pw}, credit type {pc} "
        f"and its transfer's org {to}"
    )


def ledger_problems(limit: int = 50) -> list[LedgerProblem]:
    """Everything that breaks the ledger's invariants; an empty list means the books are right.

    Set-based SQL (a few GROUP BYs over the entry table), so it stays fast at millions of entries.
    """
    problems: list[LedgerProblem] = []
    pocket_sql = load_sql(__file__, "problem_pockets.sql")
    negative_sql = "SELECT id, balance FROM wallets_pocket WHERE balance < 0 AND NOT is_external LIMIT %s"
    transfer_sql = load_sql(__file__, "problem_transfers.sql")
    books_sql = "SELECT credit_type_id, SUM(amount) FROM wallets_entry GROUP BY credit_type_id HAVING SUM(amount) <> 0"
    empty_sql = load_sql(__file__, "problem_empty_transfers.sql")
    gross_sql = load_sql(__file__, "problem_gross.sql")
    entry_copies_sql = load_sql(__file__, "problem_entry_copies.sql")
    transfer_orgs_sql = load_sql(__file__, "problem_transfer_orgs.sql")
    expiry_conserved_sql = load_sql(__file__, "problem_expiry_conserved.sql")
    expired_sql = load_sql(__file__, "problem_expired.sql")
    with connection.cursor() as cur:
        cur.execute(pocket_sql, [limit])
        problems += [
            LedgerProblem("pocket", f"pocket {pid}: cached balance {bal} but entries sum to {s}")
            for pid, bal, s in cur.fetchall()
        ]
        cur.execute(negative_sql, [limit])
        problems += [
            LedgerProblem("negative", f"pocket {pid}: balance {bal} is below zero") for pid, bal in cur.fetchall()
        ]
        cur.execute(transfer_sql, [limit])
        problems += [
            LedgerProblem("transfer", f"transfer {tid}: credit type {ct} entries sum to {s}, not 0")
            for tid, ct, s in cur.fetchall()
        ]
        cur.execute(books_sql)
        problems += [
            LedgerProblem("books", f"credit type {ct}: the books sum to {s}, not 0") for ct, s in cur.fetchall()
        ]
        cur.execute(empty_sql, [limit])
        problems += [LedgerProblem("transfer", f"transfer {tid} has no entries") for (tid,) in cur.fetchall()]
        cur.execute(gross_sql, [limit])
        problems += [
            LedgerProblem("transfer", f"transfer {tid}: amount {amt} but its credits sum to {s}")
            for tid, amt, s in cur.fetchall()
        ]
        cur.execute(entry_copies_sql, [limit])
        problems += [LedgerProblem("entry", _entry_problem(*row)) for row in cur.fetchall()]
        cur.execute(transfer_orgs_sql, [limit])
        problems += [
            LedgerProblem("transfer", f"transfer {tid}: its org {oid} does not exist") for tid, oid in cur.fetchall()
        ]
        cur.execute(expiry_conserved_sql, [limit])
        problems += [
            LedgerProblem(
                "expiry",
                f"transfer {tid}: credit type {ct} expiring {day:%Y-%m-%d} sums to {s}, not 0 (expiry must travel "
                "with the credits)",
            )
            for tid, ct, day, s in cur.fetchall()
        ]
        cur.execute(expired_sql, {"tz": settings.TIME_ZONE, "limit": limit})
        problems += [
            LedgerProblem(
                "expiry",
                f"entry {eid} of transfer {tid} ({kind}, pocket expiring {day:%Y-%m-%d}, made {made:%Y-%m-%d}): {why}",
            )
            for eid, tid, kind, day, made, why in cur.fetchall()
        ]
    return problems


@dataclass
class EntriesPage:
    entries: list[Entry]
    older: int | None  # pass as `before` for the next (older) page
    kind: str = ""


def wallet_entries_page(wallet: Wallet, *, before: int | None = None, kind: str = "", limit: int = 25) -> EntriesPage:
    """One page of a wallet's movements, newest first, keyset-paginated on the entry id (index
    wallets_entry_wallet_recent): one query whatever the page, stable while new entries arrive. Each entry has
    `type_balance_after`, its credit type's balance in the wallet after its transfer."""
    qs = _with_type_balance(Entry.objects.filter(wallet=wallet))
    if before is not None:
        qs = qs.filter(id__lt=before)
    if kind:
        qs = qs.filter(transfer__kind=kind)
    rows = list(
        qs.select_related("transfer", "transfer__actor", "transfer__org", "credit_type").order_by("-id")[: limit + 1]
    )
    older = rows[limit - 1].pk if len(rows) > limit else None
    return EntriesPage(entries=rows[:limit], older=older, kind=kind)
