"""Transactions: every movement of an org, filtered, paginated by keyset, exported, and charted.

A read-side selector (it never writes), shared by the Transactions page, its CSV export and the REST
API (which pages with `filter_transfers` + `keyset` under its own cursor format). The interface:

    filt, errors = parse_filter(org, request.GET)      # never raises; errors -> an empty filter
    page = transactions_page(org, filt, cursor=request.GET.get("cursor"), limit=50)
    page.rows, page.older_cursor, page.newer_cursor     # pass a cursor back to get the next page
    for row in iter_transactions(org, filt): ...        # every row, newest first, in keyset chunks

One row is one Transfer of the org (`Transfer.org`), newest first, ordered by (created_at, id).
Pagination is keyset: a cursor encodes the last row shown, so a page is an index range scan on
`wallets_transfer_org_recent` (org, created_at DESC, id DESC) however deep it is, and rows inserted
meanwhile never shift a page. A page costs four queries whatever its size or the size of its
transfers (a bulk transfer with 10,000 legs is summarized by one GROUP BY, not loaded).

Amounts are signed from the org wallet's point of view (credits leaving the org wallet are negative);
a transfer that does not touch the org wallet (e.g. a member's usage) has `amount=None` and only
`credits` (the gross amount moved).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from orgs.models import Organization
from wallets.models import MAX_AMOUNT, CreditType, Entry, Transfer, TransferKind, Wallet, WalletKind

PAGE_SIZE = 50
EXPORT_CHUNK = 5000

# Kinds listed in the filter, in the order users think of them.
FILTER_KINDS = list(TransferKind.choices)


class CursorError(ValueError):
    """A cursor that was not made by this module (tampered, truncated or from another version)."""


@dataclass(frozen=True)
class TransactionFilter:
    """A validated filter. Every field is optional; empty fields do not filter.

    date_from/date_to are inclusive calendar days (in settings.TIME_ZONE); amount_min/amount_max bound
    the credits moved (the transfer's gross amount, unsigned); member_wallet_id keeps transfers that
    touched that member's Default wallet; credit_type keeps transfers with an entry of that type.
    """

    date_from: date | None = None
    date_to: date | None = None
    kinds: tuple[str, ...] = ()
    member_email: str = ""
    member_wallet_id: int | None = None
    credit_type: CreditType | None = None
    amount_min: int | None = None
    amount_max: int | None = None

    @property
    def is_empty(self) -> bool:
        return self == TransactionFilter()

    def as_params(self) -> dict[str, str | list[str]]:
        """GET parameters that parse back into this filter (for links and the export URL)."""
        params: dict[str, str | list[str]] = {}
        if self.date_from:
            params["from"] = self.date_from.isoformat()
        if self.date_to:
            params["to"] = self.date_to.isoformat()
        if self.kinds:
            params["kind"] = list(self.kinds)
        if self.member_email:
            params["member"] = self.member_email
        if self.credit_type:
            params["credit_type"] = self.credit_type.slug
        if self.amount_min is not None:
            params["min"] = str(self.amount_min)
        if self.amount_max is not None:
            params["max"] = str(self.amount_max)
        return params


FILTER_PARAMS = ("from", "to", "kind", "member", "credit_type", "min", "max")


def parse_filter(org: Organization, params, credit_types: list[CreditType] | None = None):
    """(TransactionFilter, errors) from GET parameters. Never raises.

    Any malformed value gives a user-readable message in `errors` and an EMPTY filter, so the caller
    shows an unfiltered (but valid) page with the message instead of a 500 or a silently wrong list.
    One query at most (the member lookup), plus one for credit types unless they are passed in.
    """
    errors: list[str] = []
    values: dict = {}

    def text(name: str) -> str:
        return (params.get(name) or "").strip()

    for name, key in (("from", "date_from"), ("to", "date_to")):
        raw = text(name)
        if raw:
            try:
                values[key] = date.fromisoformat(raw)
            except ValueError:
                errors.append(f"“{raw[:40]}” is not a date: use YYYY-MM-DD.")
    if values.get("date_from") and values.get("date_to") and values["date_from"] > values["date_to"]:
        errors.append("The start date is after the end date.")

    kinds = [k.strip() for k in params.getlist("kind") if k and k.strip()] if hasattr(params, "getlist") else []
    known = set(TransferKind.values)
    errors.extend(f"“{k[:40]}” is not a kind of transaction." for k in kinds if k not in known)
    values["kinds"] = tuple(dict.fromkeys(kinds))

    for name, key in (("min", "amount_min"), ("max", "amount_max")):
        raw = text(name).replace(",", "").replace("_", "")
        if raw:
            if not raw.isdigit() or not raw.isascii():
                errors.append(f"“{raw[:40]}” is not an amount: use a whole number of credits like 100.")
            elif int(raw) > MAX_AMOUNT:
                errors.append(f"Amounts are at most {MAX_AMOUNT:,} credits.")
            else:
                values[key] = int(raw)
    low, high = values.get("amount_min"), values.get("amount_max")
    if low is not None and high is not None and low > high:
        errors.append("The minimum amount is larger than the maximum.")

    slug = text("credit_type")
    if slug:
        types = credit_types if credit_types is not None else list(CreditType.objects.all())
        match = next((ct for ct in types if ct.slug == slug), None)
        if match is None:
            errors.append(f"“{slug[:40]}” is not a credit type.")
        values["credit_type"] = match

    email = text("member")
    if email:
        values["member_email"] = email
        wallet_id = member_wallet_id(org, email)
        if wallet_id is None:
            errors.append(f"No member of {org.name} has the email “{email[:80]}”.")
        values["member_wallet_id"] = wallet_id

    if errors:
        return TransactionFilter(), errors
    return TransactionFilter(**values), []


def member_wallet_id(org: Organization, email: str) -> int | None:
    """The Default wallet of the org's member with this email (case-insensitive), or None. Removed members
    included: their history is still this org's history. One query (none for an email with a NUL byte, which
    no address has and PostgreSQL cannot compare)."""
    if "\x00" in email:
        return None
    return (
        Wallet.objects.filter(kind=WalletKind.USER, user__email__iexact=email, user__memberships__org=org)
        .values_list("pk", flat=True)
        .first()
    )


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
    balances_after: list[tuple[str, int]]  # (credit type name, org wallet pocket balance after)
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


def _fetch(qs, direction: str, at: tuple[datetime, int] | None, limit: int) -> list[tuple]:
    """One keyset range of transfer tuples, newest first."""
    rows = list(keyset(qs, direction, at).values_list(*TRANSFER_FIELDS)[:limit])
    if direction == "newer":
        rows.reverse()
    return rows


class _Labels:
    """Wallet labels and credit type names, cached across the chunks of one export."""

    def __init__(self, org_wallet_id: int, credit_types: dict[int, str]):
        self.org_wallet_id = org_wallet_id
        self.credit_types = credit_types
        self.wallets: dict[int, str] = {org_wallet_id: "Org wallet"}

    def load(self, wallet_ids: set[int]) -> None:
        missing = wallet_ids - self.wallets.keys()
        if not missing:
            return
        for pk, kind, name, user_name, email in Wallet.objects.filter(pk__in=missing).values_list(
            "pk", "kind", "name", "user__name", "user__email"
        ):
            self.wallets[pk] = (user_name or email) if kind == WalletKind.USER else name


def _rows(transfers: list[tuple], labels: _Labels) -> list[TransactionRow]:
    """Summarize the entries of these transfers with one GROUP BY (transfer, credit type) and one
    wallet-label lookup (skipped when cached); never loads a bulk transfer's legs one by one."""
    if not transfers:
        return []
    ow = labels.org_wallet_id
    sums = (
        Entry.objects.filter(transfer_id__in=[t[0] for t in transfers])
        .values_list("transfer_id", "credit_type_id")
        .annotate(
            org_amount=Sum("amount", filter=Q(wallet_id=ow)),
            org_balance=Max("balance_after", filter=Q(wallet_id=ow)),
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
    out = []
    for pk, created_at, kind, credits, memo, actor_name, actor_email in transfers:
        groups = sorted(by_transfer.get(pk, ()), key=lambda g: g[1])
        amount = None
        balances = []
        n_from = n_to = 0
        from_ids: set = set()
        to_ids: set = set()
        for _t, ct, org_amount, org_balance, nf, fw, nt, tw in groups:
            if org_amount is not None:
                amount = (amount or 0) + org_amount
                balances.append((names.get(ct, "?"), org_balance))
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


def _labels(org: Organization, credit_types: list[CreditType] | None = None) -> _Labels:
    types = credit_types if credit_types is not None else list(CreditType.objects.all())
    return _Labels(Wallet.objects.for_org(org).pk, {ct.pk: ct.name for ct in types})


def transactions_page(
    org: Organization,
    filt: TransactionFilter,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    credit_types: list[CreditType] | None = None,
) -> TransactionPage:
    """One page of the org's transactions, newest first. `cursor` is an `older_cursor` or
    `newer_cursor` of a previous page (None: the newest page); a bad cursor raises CursorError.
    Queries: the org wallet, the transfers, the entry summary, wallet labels (+ credit types unless
    passed in): constant, whatever the page number or the data size."""
    direction, at = "older", None
    if cursor:
        direction, stamp, pk = decode_cursor(cursor)
        at = (stamp, pk)
    labels = _labels(org, credit_types)
    transfers = _fetch(filter_transfers(org, filt), direction, at, limit + 1)
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


def iter_transactions(org: Organization, filt: TransactionFilter, chunk_size: int = EXPORT_CHUNK):
    """Every matching row, newest first, `chunk_size` transfers per keyset step (two or three queries
    a step). Memory stays at one chunk whatever the total, and rows inserted during an export are
    neither repeated nor do they shift it."""
    labels = _labels(org)
    qs = filter_transfers(org, filt)
    at = None
    while True:
        transfers = _fetch(qs, "older", at, chunk_size)
        if not transfers:
            return
        yield from _rows(transfers, labels)
        if len(transfers) < chunk_size:
            return
        at = (transfers[-1][1], transfers[-1][0])


# --- CSV ---------------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "id",
    "date",
    "kind",
    "from",
    "to",
    "credit_type",
    "amount",
    "credits_moved",
    "balance_after",
    "actor",
    "message",
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    """A text cell a spreadsheet will not run: cells starting with = + - @ (or tab/CR) get a leading '."""
    if value and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_date(value: datetime) -> str:
    """ISO 8601 in UTC with microseconds, the same text PostgreSQL's export writes."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def csv_chunks(rows: Iterator[TransactionRow], rows_per_chunk: int = 1000) -> Iterator[str]:
    """CSV text (header first), `rows_per_chunk` rows per yielded string. Numbers are written as numbers;
    every text cell goes through csv_safe."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    n = 0
    for r in rows:
        writer.writerow(
            (
                r.id,
                csv_date(r.created_at),
                r.kind_label,
                csv_safe(r.from_label),
                csv_safe(r.to_label),
                csv_safe(" + ".join(r.credit_types)),
                "" if r.amount is None else r.amount,
                r.credits,
                csv_safe(r.balance_after_text),
                csv_safe(r.actor),
                csv_safe(r.memo),
            )
        )
        n += 1
        if n >= rows_per_chunk:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
            n = 0
    yield buf.getvalue()


# The same rows and cells as csv_chunks(iter_transactions(...)), computed by PostgreSQL and streamed with
# COPY ... TO STDOUT: Python only forwards bytes, so a million rows take seconds and a few MB of memory.
# tests/billing/test_transactions.py checks that both paths write the same cells.
_SAFE_SQL = "CASE WHEN left({0}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) THEN chr(39) || {0} ELSE {0} END"


def _sql_text(value: str) -> str:
    """A SQL string literal for a name we own (credit type names), safe inside a %s-parameterized query."""
    return "'" + value.replace("'", "''").replace("%", "%%") + "'"


def _export_sql(org: Organization, filt: TransactionFilter) -> tuple[str, list]:
    """One flat aggregate per transfer (no per-row sort or join): per credit type columns are spelled
    out, there are only a handful of credit types."""
    inner = (
        filter_transfers(org, filt)
        .order_by("-created_at", "-id")
        .values("id", "created_at", "kind", "amount", "memo", "actor_id")
    )
    inner_sql, inner_params = inner.query.sql_with_params()
    kind_case = "CASE t.kind " + " ".join("WHEN %s THEN %s" for _ in TransferKind.choices) + " ELSE t.kind END"
    kind_params = [x for pair in TransferKind.choices for x in pair]
    ow = int(Wallet.objects.for_org(org).pk)
    types = [(int(pk), _sql_text(name)) for pk, name in CreditType.objects.order_by("pk").values_list("pk", "name")]
    per_type = ",\n".join(
        f"bool_or(e.credit_type_id = {pk}) AS has_{pk}, "
        f"MAX(e.balance_after) FILTER (WHERE e.wallet_id = {ow} AND e.credit_type_id = {pk}) AS bal_{pk}, "
        f"COUNT(*) FILTER (WHERE e.amount < 0 AND e.credit_type_id = {pk}) AS nf_{pk}, "
        f"COUNT(*) FILTER (WHERE e.amount > 0 AND e.credit_type_id = {pk}) AS nt_{pk}"
        for pk, _ in types
    )
    cts = "concat_ws(' + ', " + ", ".join(f"CASE WHEN s.has_{pk} THEN {name} END" for pk, name in types) + ")"
    bal_many = (
        "concat_ws('; ', "
        + ", ".join(f"CASE WHEN s.bal_{pk} IS NOT NULL THEN {name} || ' ' || s.bal_{pk} END" for pk, name in types)
        + ")"
    )
    balance = f"CASE WHEN s.n_bal = 1 THEN s.bal_one::text ELSE {bal_many} END"

    def side(side: str, w: str, u: str) -> str:
        n = "GREATEST(" + ", ".join(f"s.n{side[0]}_{pk}" for pk, _ in types) + ", 2)"
        label = (
            f"CASE WHEN {w}.id = {ow} THEN 'Org wallet' WHEN {w}.kind = 'user' "
            f"THEN COALESCE(NULLIF({u}.name, ''), {u}.email) ELSE {w}.name END"
        )
        return (
            f"CASE WHEN s.min_{side} <> s.max_{side} THEN to_char({n}, 'FM999,999,999,990') || ' members' "
            f"WHEN s.min_{side} IS NULL THEN '—' ELSE {label} END"
        )

    sql = f"""
        SELECT t.id AS id,
               to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') AS date,
               {kind_case} AS kind,
               {_SAFE_SQL.format(side("from", "fw", "fu"))} AS "from",
               {_SAFE_SQL.format(side("to", "tw", "tu"))} AS "to",
               {_SAFE_SQL.format(cts)} AS credit_type,
               s.org_amount AS amount,
               t.amount AS credits_moved,
               {_SAFE_SQL.format(balance)} AS balance_after,
               {_SAFE_SQL.format("COALESCE(NULLIF(a.name, ''), a.email, '')")} AS actor,
               {_SAFE_SQL.format("t.memo")} AS message
        FROM ({inner_sql}) t
        CROSS JOIN LATERAL (
            SELECT SUM(e.amount) FILTER (WHERE e.wallet_id = {ow}) AS org_amount,
                   COUNT(*) FILTER (WHERE e.wallet_id = {ow}) AS n_bal,
                   MAX(e.balance_after) FILTER (WHERE e.wallet_id = {ow}) AS bal_one,
                   MIN(e.wallet_id) FILTER (WHERE e.amount < 0) AS min_from,
                   MAX(e.wallet_id) FILTER (WHERE e.amount < 0) AS max_from,
                   MIN(e.wallet_id) FILTER (WHERE e.amount > 0) AS min_to,
                   MAX(e.wallet_id) FILTER (WHERE e.amount > 0) AS max_to,
                   {per_type}
            FROM wallets_entry e WHERE e.transfer_id = t.id
        ) s
        LEFT JOIN orgs_user a ON a.id = t.actor_id
        LEFT JOIN wallets_wallet fw ON fw.id = s.min_from LEFT JOIN orgs_user fu ON fu.id = fw.user_id
        LEFT JOIN wallets_wallet tw ON tw.id = s.min_to LEFT JOIN orgs_user tu ON tu.id = tw.user_id
        ORDER BY t.created_at DESC, t.id DESC
    """
    return sql, [*kind_params, *inner_params]


def copy_csv(org: Organization, filt: TransactionFilter, flush_bytes: int = 256 * 1024) -> Iterator[bytes]:
    """PostgreSQL only: the export as CSV bytes (header first), streamed by COPY (SELECT ...) TO STDOUT in
    ~256 KB pieces. One statement, so one consistent snapshot of the ledger."""

    sql, params = _export_sql(org, filt)
    copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)"
    connection.ensure_connection()
    with connection.cursor() as cursor:
        # A long streamed nested-loop scan: JIT compilation and parallel workers only delay the first byte.
        cursor.execute("SET jit = off; SET max_parallel_workers_per_gather = 0")
        try:
            with cursor.cursor.copy(copy_sql, params) as copy:
                buf = bytearray()
                for data in copy:
                    buf += data
                    if len(buf) >= flush_bytes:
                        yield bytes(buf)
                        buf.clear()
                if buf:
                    yield bytes(buf)
        finally:
            cursor.execute("RESET jit; RESET max_parallel_workers_per_gather")


def export_csv(org: Organization, filt: TransactionFilter) -> Iterator[bytes | str]:
    """The CSV export as an iterator for StreamingHttpResponse: COPY on PostgreSQL, keyset chunks elsewhere."""

    if connection.vendor == "postgresql":
        return copy_csv(org, filt)
    return csv_chunks(iter_transactions(org, filt))


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


# --- balance over time ----------------------------------------------------------------------------------


@dataclass
class ChartSeries:
    credit_type: CreditType
    values: list[int]  # end-of-day balance, one per day
    path: str = ""  # SVG polygon points of the stacked band


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

    @property
    def totals(self) -> list[int]:
        return [sum(s.values[i] for s in self.series) for i in range(len(self.days))]


CHART_RANGES = (30, 90)


def balance_chart(wallet: Wallet, by_type: list, days: int = 30, today: date | None = None) -> BalanceChart:
    """End-of-day balances of `wallet` per credit type over the last `days` days, stacked, as SVG
    geometry, with ONE query. On PostgreSQL: for each day and pocket, the balance_after of the pocket's
    last entry before the day ends (an index probe on wallets_entry_pocket_time: days x pockets probes,
    whatever the number of entries). Elsewhere: the net movement per day and credit type, walked back
    from today's balances (`by_type`, from wallet_balance, which the page already has)."""
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    day_list = [start + timedelta(days=i) for i in range(days)]
    if connection.vendor == "postgresql":
        ends = [timezone.make_aware(datetime.combine(d + timedelta(days=1), time.min)) for d in day_list]
        found: dict[tuple[int, int], int] = {}
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT d.i, p.credit_type_id, SUM(last.balance_after)
                FROM unnest(%s::timestamptz[]) WITH ORDINALITY AS d(day_end, i)
                CROSS JOIN wallets_pocket p
                CROSS JOIN LATERAL (
                    SELECT e.balance_after FROM wallets_entry e
                    WHERE e.pocket_id = p.id AND e.created_at < d.day_end
                    ORDER BY e.created_at DESC, e.id DESC LIMIT 1
                ) last
                WHERE p.wallet_id = %s
                GROUP BY d.i, p.credit_type_id
                """,
                [ends, wallet.pk],
            )
            for i, ct_id, total in cursor.fetchall():
                found[(int(i) - 1, ct_id)] = int(total)
        series = [
            ChartSeries(tb.credit_type, [found.get((i, tb.credit_type.pk), 0) for i in range(days)]) for tb in by_type
        ]
    else:
        start_at = timezone.make_aware(datetime.combine(start, time.min))
        nets: dict[tuple[date, int], int] = {}
        for day, ct_id, total in (
            Entry.objects.filter(wallet=wallet, created_at__gte=start_at)
            .annotate(day=TruncDate("created_at"))
            .values_list("day", "credit_type_id")
            .annotate(s=Sum("amount"))
            .order_by()
        ):
            nets[(day, ct_id)] = int(total)
        series = []
        for tb in by_type:
            values = [0] * days
            balance = int(tb.balance)
            for i in range(days - 1, -1, -1):
                values[i] = balance
                balance -= nets.get((day_list[i], tb.credit_type.pk), 0)
            series.append(ChartSeries(tb.credit_type, values))
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
