"""Transactions CSV export: the rows of the Transactions page as a download, streamed.

`export_csv` is what the export view streams: PostgreSQL computes every row and cell and sends them with
`COPY (SELECT ...) TO STDOUT`, so Python only forwards bytes and a million rows take seconds and a few MB
of memory. `csv_chunks(iter_transactions(...))` writes the same cells from the Python rows; it is the
reference the COPY statement must match cell for cell (tests/reporting/test_transactions.py compares them).

Every text cell is made safe for spreadsheets (`csv_safe`): a cell starting with = + - @ tab or CR gets a
leading ', so opening the file never runs a formula. The COPY statement is composed with psycopg.sql
from `sql/export.sql`; every value in it (org wallet id, credit type ids and names, kind labels, the
filter's parameters) is a psycopg literal, never text pasted into the statement.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Count, OuterRef, Subquery
from psycopg.sql import SQL, Composable, Identifier, Literal

from core.replica import stream_read
from core.sql import load_sql
from orgs.models import Organization
from reporting.filters import TransactionFilter
from reporting.queries import TransactionRow, filter_transfers, org_wallet_id
from wallets.models import CreditType, Pocket, TransferKind, WalletKind

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


# --- COPY --------------------------------------------------------------------------------------------

_EXPORT = SQL(load_sql(__file__, "export.sql"))
_PARTY = SQL(load_sql(__file__, "export_party.sql"))
_CREDIT_TYPE_COLUMNS = SQL(load_sql(__file__, "export_credit_type.sql"))
_TYPE_BALANCE = SQL(load_sql(__file__, "export_type_balance.sql"))
_COPY = SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)")
# csv_safe in SQL: the leading characters of _FORMULA_START (tab and CR as chr(9), chr(13)).
_SAFE = SQL("CASE WHEN left({0}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) THEN chr(39) || {0} ELSE {0} END")


def _safe(expr: Composable) -> Composable:
    return _SAFE.format(expr)


def _export_sql(org: Organization, filt: TransactionFilter, using: str = DEFAULT_DB_ALIAS) -> Composable:
    """The export's SELECT: sql/export.sql with its per credit type columns spelled out (there are only a
    handful of credit types) and the filtered transfers as a subquery. Two queries, on `using`: the org
    wallet and the credit types."""
    inner = (
        filter_transfers(org, filt)
        .order_by("-created_at", "-id")
        .values("id", "created_at", "kind", "amount", "memo", "actor_id")
    )
    # Django's SQL with its parameters bound by psycopg (client side, as COPY needs), so the statement
    # carries no placeholders and no literal of ours is ever read as one.
    transfers = SQL(connections[using].ops.compose_sql(*inner.query.sql_with_params()))
    ow_id = int(org_wallet_id(org, using))
    ow = Literal(ow_id)
    # Each credit type with how many pockets of it the org wallet holds (one per expiry day): the same one query.
    pockets = (
        Pocket.objects.filter(wallet_id=ow_id, credit_type_id=OuterRef("pk"))
        .order_by()
        .values("credit_type_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    rows = list(
        CreditType.objects.using(using)
        .annotate(n_pockets=Subquery(pockets))
        .order_by("pk")
        .values_list("pk", "name", "n_pockets")
    )
    types = [(int(pk), Literal(name)) for pk, name, _n in rows]
    several = {int(pk) for pk, _name, n in rows if (n or 0) > 1}

    kind = SQL("CASE t.kind {} ELSE t.kind END").format(
        SQL(" ").join(
            SQL("WHEN {} THEN {}").format(Literal(value), Literal(label)) for value, label in TransferKind.choices
        )
    )
    per_type = SQL(",\n").join(
        _CREDIT_TYPE_COLUMNS.format(
            credit_type=Literal(pk),
            org_wallet=ow,
            has=Identifier(f"has_{pk}"),
            balance=Identifier(f"bal_{pk}"),
            entry=Identifier(f"eid_{pk}"),
            legs_from=Identifier(f"nf_{pk}"),
            legs_to=Identifier(f"nt_{pk}"),
        )
        for pk, _ in types
    )
    credit_type = SQL("concat_ws(' + ', {})").format(
        SQL(", ").join(SQL("CASE WHEN {} THEN {} END").format(Identifier("s", f"has_{pk}"), name) for pk, name in types)
    )
    # The org wallet's balance of each type after the transfer: its one pocket's balance_after, or, for a type
    # it holds in several pockets, their sum as of the transfer (sql/export_type_balance.sql).
    type_balances = SQL(", ").join(
        SQL("{} AS {}").format(
            _TYPE_BALANCE.format(entry=Identifier("s", f"eid_{pk}"), org_wallet=ow, credit_type=Literal(pk))
            if pk in several
            else Identifier("s", f"bal_{pk}"),
            Identifier(f"tb_{pk}"),
        )
        for pk, _ in types
    )
    after = [Identifier("b", f"tb_{pk}") for pk, _ in types]
    balances = SQL("concat_ws('; ', {})").format(
        SQL(", ").join(
            SQL("CASE WHEN {0} IS NOT NULL THEN {1} || ' ' || {0} END").format(b, name)
            for b, (_pk, name) in zip(after, types, strict=True)
        )
    )
    # One credit type: the number alone, as TransactionRow.balance_after_text writes it.
    balance_after = SQL("CASE WHEN num_nonnulls({0}) = 1 THEN coalesce({0})::text ELSE {1} END").format(
        SQL(", ").join(after), balances
    )

    def party(side: str, wallet: str, user: str) -> Composable:
        return _PARTY.format(
            min_wallet=Identifier("s", f"min_{side}"),
            max_wallet=Identifier("s", f"max_{side}"),
            leg_counts=SQL(", ").join(Identifier("s", f"n{side[0]}_{pk}") for pk, _ in types),
            wallet=Identifier(wallet),
            user=Identifier(user),
            org_wallet=ow,
            user_kind=Literal(WalletKind.USER.value),
        )

    return _EXPORT.format(
        kind=kind,
        from_label=_safe(party("from", "fw", "fu")),
        to_label=_safe(party("to", "tw", "tu")),
        credit_type=_safe(credit_type),
        balance_after=_safe(balance_after),
        actor=_safe(SQL("COALESCE(NULLIF(a.name, ''), a.email, '')")),
        message=_safe(SQL("t.memo")),
        transfers=transfers,
        org_wallet=ow,
        per_type=per_type,
        type_balances=type_balances,
    )


def copy_csv(
    org: Organization, filt: TransactionFilter, flush_bytes: int = 256 * 1024, using: str = DEFAULT_DB_ALIAS
) -> Iterator[bytes]:
    """The export as CSV bytes (header first), streamed by COPY (SELECT ...) TO STDOUT in ~256 KB
    pieces, on the database `using`. One statement, so one consistent snapshot of the ledger.

    The settings and the COPY run in one transaction (SET LOCAL): behind PgBouncer in transaction mode a
    session-level SET could land on another server connection, or stay behind on this one for the next
    client."""
    copy_sql = _COPY.format(_export_sql(org, filt, using))
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        # A long streamed nested-loop scan: JIT compilation and parallel workers only delay the first byte.
        cursor.execute("SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0")
        with cursor.cursor.copy(copy_sql) as copy:
            buf = bytearray()
            for data in copy:
                buf += data
                if len(buf) >= flush_bytes:
                    yield bytes(buf)
                    buf.clear()
            if buf:
                yield bytes(buf)


def export_csv(org: Organization, filt: TransactionFilter, using: str = DEFAULT_DB_ALIAS) -> Iterator[bytes]:
    """The CSV export as an iterator for StreamingHttpResponse (COPY, see copy_csv), read on `using`. If the
    replica fails before the first bytes, the export is read from the primary instead (core.replica)."""
    return stream_read(using, lambda alias: copy_csv(org, filt, using=alias))
