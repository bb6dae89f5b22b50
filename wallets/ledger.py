"""The one primitive that moves credits.

Every movement (purchase, transfer, bulk transfer, approval, seat credits, allocations, returns,
refunds, usage, promo grants) is a list of signed legs handed to `post_transfer`. Inside one database
transaction it:

1. checks the legs (positive whole amounts, each credit type sums to zero);
2. locks every pocket involved in ascending id order (the one lock order shared by every caller;
   callers lock their own domain row — request, membership, purchase — *before* calling), creating
   missing pockets first;
3. looks the idempotency key up *after* the locks, so a concurrent duplicate waits, then replays;
4. refuses overdrafts on non-external pockets;
5. writes the transfer, its entries and the new cached balances.

On PostgreSQL steps 2-5 are ONE prepared statement (`_PG_POST`): the hot pocket rows are held for that
statement and the COMMIT only. The idempotency check there is the unique (org, key) index itself:
`ON CONFLICT DO NOTHING` waits for a racer with the same key, writes nothing, and the first transfer is
read back and replayed. Other databases (SQLite) run the same steps as separate statements.

The database has the last word: a CHECK keeps non-external balances >= 0, a statement trigger
rejects entries that do not sum to zero per transfer and credit type, and triggers forbid UPDATE and
DELETE of transfers and entries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from wallets.errors import IdempotencyConflict, InsufficientCredits, InvalidAmount, LedgerBusy
from wallets.models import MAX_AMOUNT, CreditType, Entry, Pocket, Transfer, Wallet

log = logging.getLogger("credits.ledger")


@dataclass(frozen=True, slots=True)
class Leg:
    """A signed amount on the pocket (wallet, credit type, funding org)."""

    wallet_id: int
    credit_type_id: int
    amount: int
    funding_org_id: int | None = None
    is_external: bool = False

    @property
    def pocket_key(self) -> tuple[int, int, int | None]:
        return (self.wallet_id, self.credit_type_id, self.funding_org_id)


def leg(wallet: Wallet, credit_type: CreditType | int, amount: int, funding_org=None) -> Leg:
    ct_id = credit_type if isinstance(credit_type, int) else credit_type.pk
    fo_id = funding_org if (funding_org is None or isinstance(funding_org, int)) else funding_org.pk
    return Leg(wallet.pk, ct_id, amount, fo_id, wallet.is_external)


def check_amount(amount) -> int:
    """A positive whole number of credits no larger than MAX_AMOUNT, or InvalidAmount."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(amount, "Credits are whole numbers: enter an amount like 100.")
    if amount <= 0:
        raise InvalidAmount(amount, "Enter an amount greater than zero.")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(amount, f"That amount is too large (at most {MAX_AMOUNT:,} credits).")
    return amount


def _merge_legs(legs: Iterable[Leg]) -> list[Leg]:
    """One leg per pocket (sums repeated pockets, drops those that net to zero), in a stable order."""
    totals: dict[tuple, int] = defaultdict(int)
    external: dict[tuple, bool] = {}
    for lg in legs:
        if isinstance(lg.amount, bool) or not isinstance(lg.amount, int) or lg.amount == 0:
            raise InvalidAmount(lg.amount)
        if abs(lg.amount) > MAX_AMOUNT:
            raise InvalidAmount(lg.amount, f"That amount is too large (at most {MAX_AMOUNT:,} credits).")
        totals[lg.pocket_key] += lg.amount
        external[lg.pocket_key] = lg.is_external
    merged = [Leg(*key[:2], amt, key[2], external[key]) for key, amt in totals.items() if amt != 0]
    per_type: dict[int, int] = defaultdict(int)
    for lg in merged:
        per_type[lg.credit_type_id] += lg.amount
    if not merged or any(per_type.values()):
        raise ValueError(f"Legs must be non-empty and sum to zero per credit type: {dict(per_type)}")
    return merged


def fingerprint_of(kind: str, legs: Sequence[Leg], memo: str, org_id: int | None) -> str:
    body = json.dumps(
        [kind, org_id, memo, sorted((lg.wallet_id, lg.credit_type_id, lg.funding_org_id, lg.amount) for lg in legs)],
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _pocket_query(keys: Iterable[tuple[int, int, int | None]]) -> Q:
    """OR of groups, each exact: (credit type, funding org) with `wallet_id IN (…)` (compact for bulk moves to
    many wallets), or (wallet, funding org) with `credit_type_id IN (…)` (compact for one wallet's many credit
    types, e.g. a Return), whichever needs fewer groups."""
    keys = list(keys)
    by_type: dict[tuple[int, int | None], list[int]] = defaultdict(list)
    by_wallet: dict[tuple[int, int | None], list[int]] = defaultdict(list)
    for wallet_id, ct_id, fo_id in keys:
        by_type[(ct_id, fo_id)].append(wallet_id)
        by_wallet[(wallet_id, fo_id)].append(ct_id)
    q = Q(pk__in=[])
    if len(by_wallet) < len(by_type):
        for (wallet_id, fo_id), ct_ids in by_wallet.items():
            part = Q(wallet_id=wallet_id, credit_type_id__in=ct_ids)
            part &= Q(funding_org__isnull=True) if fo_id is None else Q(funding_org_id=fo_id)
            q |= part
        return q
    for (ct_id, fo_id), wallet_ids in by_type.items():
        part = Q(credit_type_id=ct_id, wallet_id__in=wallet_ids)
        part &= Q(funding_org__isnull=True) if fo_id is None else Q(funding_org_id=fo_id)
        q |= part
    return q


def _lock_pockets(legs: Sequence[Leg]) -> dict[tuple, tuple[int, int]]:
    """Create missing pockets, then lock all of them in ascending id order. Returns key -> (id, balance)."""
    keys = sorted({lg.pocket_key for lg in legs}, key=lambda k: (k[0], k[1], k[2] or 0))

    def locked() -> dict[tuple, tuple[int, int]]:
        rows = (
            Pocket.objects.select_for_update()
            .filter(_pocket_query(keys))
            .order_by("pk")
            .values_list("pk", "wallet_id", "credit_type_id", "funding_org_id", "balance")
        )
        return {(w, c, f): (pk, bal) for pk, w, c, f, bal in rows}

    found = locked()
    missing = [lg for lg in legs if lg.pocket_key not in found]
    if missing:
        _create_pockets(missing, timezone.now())
        found = locked()
    return found


def _previous_transfer(org_id: int | None, key: str) -> Transfer | None:
    return Transfer.objects.filter(org_id=org_id, idempotency_key=key).first()


def post_transfer(
    *,
    kind: str,
    legs: Iterable[Leg],
    org=None,
    actor=None,
    memo: str = "",
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    key_checked: bool = False,
) -> Transfer:
    """Move credits as one transfer; returns it. `transfer.replayed` is True when the idempotency key
    had already been used with the same legs (nothing moved again). Raises WalletError subclasses.

    key_checked: the caller looked the key up itself, inside this transaction and after locking its
    domain row (e.g. a usage charge, whose fingerprint is the request, not the legs), so the generic
    path skips its own lookup; the unique (org, key) constraint stays the backstop either way."""
    merged = _merge_legs(legs)
    memo = (memo or "").strip()[:500]
    org_id = org.pk if org is not None else None
    fingerprint = fingerprint or fingerprint_of(kind, merged, memo, org_id)
    # Nested in a caller's transaction (which already locked its domain row), no savepoint: it would
    # cost two round trips while the hot pocket row is locked. Domain errors are therefore returned out
    # of the block and raised after it, so the caller's transaction stays usable.
    nested = transaction.get_connection().in_atomic_block
    error: Exception | None = None
    gross = sum(lg.amount for lg in merged if lg.amount > 0)
    try:
        with transaction.atomic(savepoint=not nested):
            if connection.vendor == "postgresql":
                outcome = _post_postgres(
                    kind,
                    org_id,
                    getattr(actor, "pk", None),
                    memo,
                    idempotency_key,
                    fingerprint,
                    gross,
                    merged,
                    timezone.now(),
                )
                if isinstance(outcome, Transfer):
                    if outcome.replayed:
                        return outcome
                    transfer = outcome
                else:
                    error = outcome
            else:
                transfer, error = _post_generic(
                    kind, org_id, actor, memo, idempotency_key, fingerprint, gross, merged, key_checked
                )
                if transfer is not None and transfer.replayed:
                    return transfer
    except IntegrityError:
        # The unique (org, idempotency_key) backstop: a racer with the same key committed first. Outside a
        # caller's transaction the first transfer can be read back and replayed; inside one, the
        # transaction is spoilt, so the caller gets a clean "try again" (the retry replays).
        if idempotency_key and not nested and (previous := _previous_transfer(org_id, idempotency_key)):
            return _replay(previous, fingerprint)
        if idempotency_key and nested:
            raise LedgerBusy() from None
        raise
    except OperationalError as exc:
        if _is_lock_failure(exc):
            raise LedgerBusy() from exc
        raise
    if error is not None:
        raise error
    log.info(
        "money_movement transfer=%s kind=%s amount=%s org_id=%s actor_id=%s legs=%s",
        transfer.pk,
        kind,
        gross,
        org_id,
        getattr(actor, "pk", None),
        len(merged),
    )
    return transfer


def _post_generic(kind, org_id, actor, memo, key, fingerprint, gross, merged, key_checked):
    """Other databases (SQLite: one writer at a time): lock, check the key, check balances, write.
    Returns (transfer, error); a replayed transfer has `replayed` set."""
    pockets = _lock_pockets(merged)
    if key and not key_checked and (previous := _previous_transfer(org_id, key)) is not None:
        return _replay(previous, fingerprint), None
    rows = []  # (pocket_id, wallet_id, credit_type_id, amount, balance_after)
    for lg in merged:
        pocket_id, balance = pockets[lg.pocket_key]
        after = balance + lg.amount
        if after < 0 and not lg.is_external:
            error = InsufficientCredits(
                available=balance, requested=-lg.amount, credit_type_name=_credit_type_name(lg.credit_type_id)
            )
            return None, error
        rows.append((pocket_id, lg.wallet_id, lg.credit_type_id, lg.amount, after))
    transfer = _write(kind, org_id, actor, memo, key, fingerprint, gross, rows)
    transfer.replayed = False
    return transfer, None


def _credit_type_name(credit_type_id: int) -> str:
    return CreditType.objects.filter(pk=credit_type_id).values_list("name", flat=True).first() or ""


def _replay(previous: Transfer, fingerprint: str) -> Transfer:
    if previous.fingerprint != fingerprint:
        raise IdempotencyConflict()
    previous.replayed = True
    return previous


def _is_lock_failure(exc: OperationalError) -> bool:
    code = getattr(getattr(exc, "__cause__", None), "sqlstate", None)
    return code in {"55P03", "40P01", "40001"} or "database is locked" in str(exc)


def fetch_hot(sql: str, params: list, *, lock_of: str | None = None) -> list[tuple]:
    """A hot-path read: prepared on PostgreSQL (with `FOR UPDATE OF <lock_of>` appended), a plain cursor
    elsewhere (SQLite serializes writers and has no row locks)."""
    if connection.vendor == "postgresql":
        return execute_prepared(sql + (f" FOR UPDATE OF {lock_of}" if lock_of else ""), params)
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def execute_prepared(sql: str, params: list) -> list[tuple]:
    """Run a hot statement as a server-side prepared statement on Django's own connection (same
    transaction). Django's cursors bind client-side, which re-plans the statement every time."""
    import psycopg

    connection.ensure_connection()
    pg = connection.connection
    if pg.prepare_threshold is None and settings.LEDGER_PREPARED_STATEMENTS:
        # Django opens connections with prepare_threshold=None, which makes psycopg ignore prepare=True
        # (every call was parsed and planned again). Django's own cursors bind client-side and never
        # prepare, so a threshold no query reaches enables exactly the explicit prepare=True calls below.
        pg.prepare_threshold = 2**31 - 1
    start = time.monotonic() if connection.queries_logged else None
    with psycopg.Cursor(pg) as cur:
        cur.execute(sql, params, prepare=True)
        rows = cur.fetchall()
    if start is not None:
        # Counted like any other query (DEBUG, assertNumQueries, CaptureQueriesContext): a query-count
        # figure that left out the ledger's own statements would flatter every money-moving page.
        elapsed = f"{time.monotonic() - start:.3f}"
        connection.queries_log.append({"sql": f"/* prepared */ {sql.strip()}", "time": elapsed})
    return rows


# PostgreSQL: lock, check, write in ONE statement, so the hot pocket rows are held for this statement and
# the COMMIT only, with no round trip to Python in between.
# - the legs arrive as four binary arrays (%b): psycopg's text format quoted every element (14 ms for 2,000 legs);
# - `found` looks each leg's pocket up through the partial unique index that fits it (funded, or not): one
#   index probe per leg. (`IS NOT DISTINCT FROM` matched neither index, so each leg scanned every pocket of
#   its wallet: a 2,000-leg Return spent 110 ms there, and a charge's external Usage pocket scaled with the
#   number of orgs). MATERIALIZED keeps it a fixed input of `locked`, like `legs`: inlined, its pocket scans
#   became part of the locking query, and when a pocket it found was updated by another transaction while
#   we waited for its lock, the re-check dropped it (eight members charged at once on a fresh Usage pocket:
#   half came back LedgerBusy; tests/billing/test_api_concurrency.py);
# - `locked` takes the row locks in ascending id order (LockRows over a Sort: every lock is taken in that
#   order whatever the rest of the plan does) and, after waiting, sees the latest committed balances;
# - `ok` needs every locked row, so nothing below runs before all locks are held; it is false when a
#   pocket is missing or a non-external pocket would go below zero — then nothing at all is written;
# - `t` inserts the transfer; ON CONFLICT DO NOTHING makes a racer with the same idempotency key wait for
#   the first to commit and then write nothing (the caller reads the first transfer back and replays it);
# - `upd` and `ins` depend on `t`, so a refused or replayed transfer changes no balance.
_PG_POST = """
WITH legs AS (
    SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[])
        AS l(wallet_id, credit_type_id, funding_org_id, amount)
), found AS MATERIALIZED (
    SELECT p.id, legs.amount FROM legs
    JOIN wallets_pocket p ON p.wallet_id = legs.wallet_id AND p.credit_type_id = legs.credit_type_id
                         AND p.funding_org_id = legs.funding_org_id
    UNION ALL
    SELECT p.id, legs.amount FROM legs
    JOIN wallets_pocket p ON p.wallet_id = legs.wallet_id AND p.credit_type_id = legs.credit_type_id
                         AND p.funding_org_id IS NULL AND legs.funding_org_id IS NULL
), locked AS (
    SELECT p.id, p.wallet_id, p.credit_type_id, p.funding_org_id, p.balance, p.is_external, found.amount
    FROM wallets_pocket p
    JOIN found ON p.id = found.id
    ORDER BY p.id
    FOR UPDATE OF p
), ok AS (
    SELECT count(*) = %s::int AND coalesce(bool_and(is_external OR balance + amount >= 0), false) AS ok
    FROM locked
), t AS (
    INSERT INTO wallets_transfer (org_id, kind, actor_id, memo, idempotency_key, fingerprint, amount, created_at)
    SELECT %s::bigint, %s::varchar, %s::bigint, %s::varchar, %s::varchar, %s::varchar, %s::bigint, %s::timestamptz
    FROM ok WHERE ok.ok
    ON CONFLICT DO NOTHING
    RETURNING id
), upd AS (
    UPDATE wallets_pocket p SET balance = p.balance + locked.amount
    FROM locked, t
    WHERE p.id = locked.id
    RETURNING p.id, p.wallet_id, p.credit_type_id, locked.amount, p.balance
), ins AS (
    INSERT INTO wallets_entry (transfer_id, pocket_id, wallet_id, credit_type_id, amount, balance_after, created_at)
    SELECT t.id, upd.id, upd.wallet_id, upd.credit_type_id, upd.amount, upd.balance, %s::timestamptz
    FROM t, upd
    RETURNING 1
)
SELECT ok.ok, (SELECT id FROM t), (SELECT count(*) FROM upd), (SELECT count(*) FROM ins),
       -- the locked balances, for the caller's error message, only when nothing could be written
       CASE WHEN NOT ok.ok THEN
           (SELECT json_agg(json_build_array(wallet_id, credit_type_id, funding_org_id, balance)) FROM locked)
       END
FROM ok
"""


def _post_postgres(kind, org_id, actor_id, memo, key, fingerprint, gross, merged, now):
    """Returns a Transfer (new, or the first one for a replayed key) or a WalletError to raise."""
    params = [
        [lg.wallet_id for lg in merged],
        [lg.credit_type_id for lg in merged],
        [lg.funding_org_id for lg in merged],
        [lg.amount for lg in merged],
        len(merged),
        org_id,
        kind,
        actor_id,
        memo,
        key,
        fingerprint,
        gross,
        now,
        now,
    ]
    for attempt in (1, 2):
        ((_ok, transfer_id, updated, inserted, locked),) = execute_prepared(_PG_POST, params)
        if transfer_id is not None:
            if updated != len(merged) or inserted != len(merged):
                raise RuntimeError(f"ledger write touched {updated}/{inserted} of {len(merged)} pockets")
            transfer = Transfer(
                pk=transfer_id,
                org_id=org_id,
                kind=kind,
                actor_id=actor_id,
                memo=memo,
                idempotency_key=key,
                fingerprint=fingerprint,
                amount=gross,
                created_at=now,
            )
            transfer.replayed = False
            return transfer
        # Nothing was written. A used key (committed before, or by a racer we just waited for) replays.
        if key and (previous := _previous_transfer(org_id, key)) is not None:
            return _replay(previous, fingerprint)
        balances = {(w, c, f): bal for w, c, f, bal in locked or []}
        missing = [lg for lg in merged if lg.pocket_key not in balances]
        if missing and attempt == 1:
            _create_pockets(missing, now)  # new ids, above every lock already held: the order stays ascending
            continue
        for lg in merged:
            balance = balances.get(lg.pocket_key)
            if balance is not None and balance + lg.amount < 0 and not lg.is_external:
                return InsufficientCredits(
                    available=balance, requested=-lg.amount, credit_type_name=_credit_type_name(lg.credit_type_id)
                )
        break
    raise LedgerBusy()


def _create_pockets(legs: Sequence[Leg], now) -> None:
    Pocket.objects.bulk_create(
        [
            Pocket(
                wallet_id=lg.wallet_id,
                credit_type_id=lg.credit_type_id,
                funding_org_id=lg.funding_org_id,
                is_external=lg.is_external,
                created_at=now,
            )
            for lg in legs
        ],
        ignore_conflicts=True,
    )


def _write(kind, org_id, actor, memo, key, fingerprint, gross, rows) -> Transfer:
    now = timezone.now()
    actor_id = getattr(actor, "pk", None)
    transfer = Transfer.objects.create(
        org_id=org_id,
        kind=kind,
        actor_id=actor_id,
        memo=memo,
        idempotency_key=key,
        fingerprint=fingerprint,
        amount=gross,
        created_at=now,
    )
    Entry.objects.bulk_create(
        [
            Entry(
                transfer=transfer, pocket_id=p, wallet_id=w, credit_type_id=c, amount=a, balance_after=b, created_at=now
            )
            for p, w, c, a, b in rows
        ],
        batch_size=500,
    )
    for p, _w, _c, a, _b in rows:
        Pocket.objects.filter(pk=p).update(balance=F("balance") + a)
    return transfer
