"""Transactions queries: one row per transfer of an org, newest first, paginated by keyset.

A read-side selector (it never writes), shared by the Transactions page, the CSV export's reference
path and the REST API (which pages with `filter_transfers` + `keyset` under its own cursor format):

    page = transactions_page(org, filt, cursor=request.GET.get("cursor"), limit=50)
    page.rows, page.older_cursor, page.newer_cursor     # pass a cursor back to get the next page
    for row in iter_transactions(org, filt): ...        # every row, newest first, in keyset chunks

One row is one Transfer of the org (`Transfer.org`), ordered by (created_at, id). Pagination is keyset:
a cursor encodes the last row shown, so a page is an index range scan on `wallets_transfer_org_recent`
(org, created_at DESC, id DESC) however deep it is, and rows inserted meanwhile never shift a page. A
page costs four queries whatever its size or the size of its transfers (a bulk transfer with 10,000
legs is summarized by one GROUP BY, not loaded).

Amounts are signed from the org wallet's point of view (credits leaving the org wallet are negative);
a transfer that does not touch the org wallet (e.g. a member's usage) has `amount=None` and only
`credits` (the gross amount moved).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Sum
from django.utils import timezone

from orgs.models import Organization
from reporting.filters import TransactionFilter
from wallets.models import CreditType, Entry, Transfer, TransferKind, Wallet, WalletKind
from wallets.selectors import type_balances_after

PAGE_SIZE = 50
EXPORT_CHUNK = 5000


class CursorError(ValueError):
    """A cursor that was not made by this module (tampered, truncated or from another version)."""


# --- cursors ---------------------------------------------------------------------------------------


def encode_cursor(created_at: datetime, pk: int, direction: str = "older") -> str:
    raw = f"{'o' if direction == 'older' else 'n'}|{created_at.isoformat()}|{pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[str, datetime, int]:
    """(direction, created_at, id) or CursorError."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        flag, stamp, pk = raw.split("|")
        created_at = datetime.fromisoformat(stamp)
        if flag not in ("o", "n") or created_at.tzinfo is None:
            raise ValueError(flag)
        return ("older" if flag == "o" else "newer"), created_at, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise CursorError("That page link is not valid.") from exc


# --- rows --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TransactionRow:
    id: int
    created_at: datetime
    kind: str
    kind_label: str
    from_label: str
    to_label: str
    to_count: int  # > 1: a bulk transfer ("N members"), expandable
    credit_types: list[str]
    amount: int | None  # signed, from the org wallet's point of view; None if the org wallet is untouched
    credits: int  # gross credits moved
    balances_after: list[tuple[str, int]]  # (credit type name, the org wallet's balance of it right after)
    actor: str
    memo: str

    @property
    def balance_after_text(self) -> str:
        if len(self.balances_after) == 1:
            return str(self.balances_after[0][1])
        return "; ".join(f"{name} {bal}" for name, bal in self.balances_after)


@dataclass
class TransactionPage:
    rows: list[TransactionRow]
    older_cursor: str | None  # the next page (older rows), None on the last page
    newer_cursor: str | None  # the previous page (newer rows), None on the first page
    filter: TransactionFilter = field(default_factory=TransactionFilter)


KIND_LABELS = dict(TransferKind.choices)


def filter_transfers(org: Organization, filt: TransactionFilter):
    """The org's transfers that match `filt` (unordered): the one definition of every filter, shared by the
    page, the CSV export and the REST API."""
    qs = Transfer.objects.filter(org=org)
    if filt.date_from:
        qs = qs.filter(created_at__gte=timezone.make_aware(datetime.combine(filt.date_from, time.min)))
    if filt.date_to and filt.date_to < date.max:  # up to 9999-12-31 inclusive: no upper bound (no overflow)
        qs = qs.filter(created_at__lt=timezone.make_aware(datetime.combine(filt.date_to + timedelta(days=1), time.min)))
    if filt.kinds:
        qs = qs.filter(kind__in=filt.kinds)
    if filt.amount_min is not None:
        qs = qs.filter(amount__gte=filt.amount_min)
    if filt.amount_max is not None:
        qs = qs.filter(amount__lte=filt.amount_max)
    if filt.credit_type is not None:
        qs = qs.filter(Exists(Entry.objects.filter(transfer_id=OuterRef("pk"), credit_type_id=filt.credit_type.pk)))
    if filt.member_wallet_id is not None:
        qs = qs.filter(Exists(Entry.objects.filter(transfer_id=OuterRef("pk"), wallet_id=filt.member_wallet_id)))
    return qs


TRANSFER_FIELDS = ("id", "created_at", "kind", "amount", "memo", "actor__name", "actor__email")


def keyset(qs, direction: str = "older", at: tuple[datetime, int] | None = None):
    """The transfers of `qs` past the row `at` = (created_at, id), ordered away from it: "older" newest
    first, "newer" oldest first (None: from the newest). The redundant created_at bound keeps the scan an
    index range on (org, created_at, id); the OR settles ties on created_at by id. Rows inserted meanwhile
    are newer than any page already shown, so they never shift an "older" page."""
    if at is not None:
        stamp, pk = at
        if direction == "older":
            qs = qs.filter(Q(created_at__lt=stamp) | Q(created_at=stamp, id__lt=pk), created_at__lte=stamp)
        else:
            qs = qs.filter(Q(created_at__gt=stamp) | Q(created_at=stamp, id__gt=pk), created_at__gte=stamp)
    return qs.order_by(*(("-created_at", "-id") if direction == "older" else ("created_at", "id")))


def _fetch(
    qs, direction: str, at: tuple[datetime, int] | None, limit: int, using: str = DEFAULT_DB_ALIAS
) -> list[tuple]:
    """One keyset range of transfer tuples, newest first."""
    rows = list(keyset(qs, direction, at).using(using).values_list(*TRANSFER_FIELDS)[:limit])
    if direction == "newer":
        rows.reverse()
    return rows


class _Labels:
    """Wallet labels and credit type names, cached across the chunks of one export; `using` is the database
    alias every read of the page goes to (core.replica.read_alias)."""

    def __init__(self, org_wallet_id: int, credit_types: dict[int, str], using: str = DEFAULT_DB_ALIAS):
        self.org_wallet_id = org_wallet_id
        self.credit_types = credit_types
        self.using = using
        self.wallets: dict[int, str] = {org_wallet_id: "Org wallet"}

    def load(self, wallet_ids: set[int]) -> None:
        missing = wallet_ids - self.wallets.keys()
        if not missing:
            return
        for pk, kind, name, user_name, email in (
            Wallet.objects.using(self.using)
            .filter(pk__in=missing)
            .values_list("pk", "kind", "name", "user__name", "user__email")
        ):
            self.wallets[pk] = (user_name or email) if kind == WalletKind.USER else name


def _rows(transfers: list[tuple], labels: _Labels) -> list[TransactionRow]:
    """Summarize the entries of these transfers with one GROUP BY (transfer, credit type) and one
    wallet-label lookup (skipped when cached); never loads a bulk transfer's legs one by one."""
    if not transfers:
        return []
    ow = labels.org_wallet_id
    sums = (
        Entry.objects.using(labels.using)
        .filter(transfer_id__in=[t[0] for t in transfers])
        .values_list("transfer_id", "credit_type_id")
        .annotate(
            org_amount=Sum("amount", filter=Q(wallet_id=ow)),
            org_entry=Max("id", filter=Q(wallet_id=ow)),
            n_from=Count("wallet_id", distinct=True, filter=Q(amount__lt=0)),
            from_wallet=Min("wallet_id", filter=Q(amount__lt=0)),
            n_to=Count("wallet_id", distinct=True, filter=Q(amount__gt=0)),
            to_wallet=Min("wallet_id", filter=Q(amount__gt=0)),
        )
        .order_by()
    )
    by_transfer: dict[int, list[tuple]] = {}
    wallet_ids: set[int] = set()
    for row in sums:
        by_transfer.setdefault(row[0], []).append(row)
        wallet_ids.add(row[5])
        wallet_ids.add(row[7])
    labels.load(wallet_ids - {None})
    names = labels.credit_types
    wallets = labels.wallets
    # The org wallet's balance of each credit type right after each transfer, over all its pockets of the type
    # (one per expiry day): one query for the whole page (wallets.selectors.type_balances_after).
    stamps = {t[0]: t[1] for t in transfers}
    points = [(pk, ct, entry) for pk, groups in by_transfer.items() for _t, ct, _a, entry, *_ in groups if entry]
    after = type_balances_after([(ow, ct, stamps[pk], entry) for pk, ct, entry in points], using=labels.using)
    balance_of = {(pk, ct): balance for (pk, ct, _e), balance in zip(points, after, strict=True)}
    out = []
    for pk, created_at, kind, credits, memo, actor_name, actor_email in transfers:
        groups = sorted(by_transfer.get(pk, ()), key=lambda g: g[1])
        amount = None
        balances = []
        n_from = n_to = 0
        from_ids: set = set()
        to_ids: set = set()
        for _t, ct, org_amount, _org_entry, nf, fw, nt, tw in groups:
            if org_amount is not None:
                amount = (amount or 0) + org_amount
                balances.append((names.get(ct, "?"), balance_of.get((pk, ct))))
            n_from, n_to = max(n_from, nf), max(n_to, nt)
            from_ids.add(fw)
            to_ids.add(tw)
        to_count = n_to if len(to_ids) == 1 else max(n_to, len(to_ids))
        out.append(
            TransactionRow(
                id=pk,
                created_at=created_at,
                kind=kind,
                kind_label=KIND_LABELS.get(kind, kind),
                from_label=_side_label(n_from, from_ids, wallets),
                to_label=_side_label(n_to, to_ids, wallets),
                to_count=to_count,
                credit_types=[names.get(g[1], "?") for g in groups],
                amount=amount,
                credits=credits,
                balances_after=balances,
                actor=actor_name or actor_email or "",
                memo=memo,
            )
        )
    return out


def _side_label(n: int, ids: set, wallets: dict[int, str]) -> str:
    if n > 1 or len(ids) > 1:
        return f"{max(n, len(ids)):,} members"
    (wallet_id,) = ids or {None}
    return wallets.get(wallet_id, "—") if wallet_id is not None else "—"


def org_wallet_id(org: Organization, using: str = DEFAULT_DB_ALIAS) -> int:
    """The org wallet's id, read on `using`. One query; the org wallet exists from the org's creation, so a
    replica that has not caught up with a brand-new org is the only miss (then the primary makes it)."""
    pk = Wallet.objects.using(using).filter(kind=WalletKind.ORG, org=org).values_list("pk", flat=True).first()
    return pk if pk is not None else Wallet.objects.for_org(org).pk


def _labels(org: Organization, credit_types: list[CreditType] | None = None, using: str = DEFAULT_DB_ALIAS) -> _Labels:
    types = credit_types if credit_types is not None else list(CreditType.objects.using(using))
    return _Labels(org_wallet_id(org, using), {ct.pk: ct.name for ct in types}, using)


def transactions_page(
    org: Organization,
    filt: TransactionFilter,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    credit_types: list[CreditType] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> TransactionPage:
    """One page of the org's transactions, newest first. `cursor` is an `older_cursor` or
    `newer_cursor` of a previous page (None: the newest page); a bad cursor raises CursorError.
    Queries: the org wallet, the transfers, the entry summary, wallet labels (+ credit types unless
    passed in): constant, whatever the page number or the data size. All on the database `using`
    (the read replica when core.replica.read_alias allows it)."""
    direction, at = "older", None
    if cursor:
        direction, stamp, pk = decode_cursor(cursor)
        at = (stamp, pk)
    labels = _labels(org, credit_types, using)
    transfers = _fetch(filter_transfers(org, filt), direction, at, limit + 1, using)
    more = len(transfers) > limit
    if more:
        transfers = transfers[1:] if direction == "newer" else transfers[:limit]
    rows = _rows(transfers, labels)
    if direction == "older":
        older = more
        newer = at is not None
    else:
        older = True
        newer = more
    return TransactionPage(
        rows=rows,
        older_cursor=encode_cursor(rows[-1].created_at, rows[-1].id, "older") if rows and older else None,
        newer_cursor=encode_cursor(rows[0].created_at, rows[0].id, "newer") if rows and newer else None,
        filter=filt,
    )


def iter_transactions(
    org: Organization, filt: TransactionFilter, chunk_size: int = EXPORT_CHUNK, using: str = DEFAULT_DB_ALIAS
):
    """Every matching row, newest first, `chunk_size` transfers per keyset step (two or three queries
    a step). Memory stays at one chunk whatever the total, and rows inserted during an export are
    neither repeated nor do they shift it."""
    labels = _labels(org, using=using)
    qs = filter_transfers(org, filt)
    at = None
    while True:
        transfers = _fetch(qs, "older", at, chunk_size, using)
        if not transfers:
            return
        yield from _rows(transfers, labels)
        if len(transfers) < chunk_size:
            return
        at = (transfers[-1][1], transfers[-1][0])


# --- bulk recipients -----------------------------------------------------------------------------------


def transfer_recipients(org: Organization, transfer_id: int, limit: int = 500):
    """(transfer, [(name, email, credit type name, amount)], total) for an org's transfer, or None."""
    transfer = Transfer.objects.filter(org=org, pk=transfer_id).first()
    if transfer is None:
        return None
    org_wallet_id = Wallet.objects.for_org(org).pk
    qs = Entry.objects.filter(transfer=transfer, amount__gt=0).exclude(wallet_id=org_wallet_id)
    rows = list(
        qs.order_by("wallet__user__email", "wallet_id").values_list(
            "wallet__user__name", "wallet__user__email", "wallet__name", "credit_type__name", "amount"
        )[: limit + 1]
    )
    total = len(rows) if len(rows) <= limit else qs.count()
    return transfer, rows[:limit], total
