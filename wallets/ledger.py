"""The one primitive that moves credits.

Every movement (purchase, transfer, bulk transfer, approval, seat credits, allocations, returns,
refunds, usage, promo grants) is a list of signed legs handed to `post_transfer`. Inside one database
transaction it:

1. checks the legs (positive whole amounts, each credit type sums to zero);
2. locks every non-external pocket involved in ascending id order (the one lock order shared by every
   caller; callers lock their own domain row — request, membership, purchase — *before* calling),
   creating missing pockets first. External pockets (Stripe, Usage, Promotions) have no floor and keep
   no cached balance, so they are never locked: an org's usage charges share no row;
3. looks the idempotency key up *after* the locks, so a concurrent duplicate waits, then replays;
4. refuses overdrafts on non-external pockets;
5. writes the transfer, its entries (each with the transfer's org) and the new cached balances.

Steps 2-5 are ONE prepared statement (`sql/post_transfer.sql`): the hot pocket rows are held for that
statement and the COMMIT only. The idempotency check there is the unique (org, key) index itself:
`ON CONFLICT DO NOTHING` waits for a racer with the same key, writes nothing, and the first transfer is
read back and replayed.

`post_usage` is the same primitive in its drawn form (`sql/post_usage.sql`), for the movements whose legs depend
on the balances at the time: a member's usage charge and a hold. The statement locks the membership, then the
member's pockets (by id), plans the debit over them in the usage draw order and writes the transfer and its
entries, all at once: a usage charge is one round trip, and outside a caller's transaction its own transaction
(no BEGIN or COMMIT round trips). Same lock order, same CHECK, trigger and `ON CONFLICT` key, same entries.

The database has the last word: a CHECK keeps non-external balances >= 0, a statement trigger
rejects entries that do not sum to zero per transfer and credit type, and triggers forbid UPDATE and
DELETE of transfers and entries.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from core.sql import load_sql
from wallets.errors import (
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    LedgerBusy,
    MemberNotActive,
    WalletError,
)
from wallets.models import MAX_AMOUNT, NEVER, CreditType, Transfer, Wallet
from wallets.results import Posted, Settled, UsageCharged
from wallets.signals import transfer_posted

log = logging.getLogger("credits.ledger")


@dataclass(frozen=True, slots=True)
class Leg:
    """A signed amount on the pocket (wallet, credit type, funding org, expiry day)."""

    wallet_id: int
    credit_type_id: int
    amount: int
    funding_org_id: int | None = None
    is_external: bool = False
    expires_on: datetime.date = NEVER

    @property
    def pocket_key(self) -> tuple[int, int, int | None, datetime.date]:
        return (self.wallet_id, self.credit_type_id, self.funding_org_id, self.expires_on)


@dataclass(frozen=True, slots=True)
class Then:
    """A caller's write that rides in a ledger statement (post_usage, post_settle): `sql` is the body of a
    data-modifying CTE that reads the statement's transfer (`t` in post_usage, `t2` in post_settle), so it is
    written exactly when the transfer is, by the same statement; `params` are its named parameters. What it
    RETURNs comes back as a dict. The text must be constant per caller (the statement is prepared once per text)."""

    sql: str
    params: dict
    # Data-modifying CTEs of the caller's own that `sql` reads, written before it: "name AS (...), name AS (...)".
    before: str = ""


def _json(value):
    # Django's connection reads json as text (the ORM parses it itself).
    return json.loads(value) if isinstance(value, str) else value


def leg(
    wallet: Wallet, credit_type: CreditType | int, amount: int, funding_org=None, expires_on: datetime.date = NEVER
) -> Leg:
    ct_id = credit_type if isinstance(credit_type, int) else credit_type.pk
    fo_id = funding_org if (funding_org is None or isinstance(funding_org, int)) else funding_org.pk
    return Leg(wallet.pk, ct_id, amount, fo_id, wallet.is_external, expires_on)


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
        if lg.is_external and lg.expires_on != NEVER:
            raise ValueError("External pockets never expire: an external leg has no expiry day")
        totals[lg.pocket_key] += lg.amount
        external[lg.pocket_key] = lg.is_external
    merged = [Leg(key[0], key[1], amt, key[2], external[key], key[3]) for key, amt in totals.items() if amt != 0]
    per_type: dict[int, int] = defaultdict(int)
    for lg in merged:
        per_type[lg.credit_type_id] += lg.amount
    if not merged or any(per_type.values()):
        raise ValueError(f"Legs must be non-empty and sum to zero per credit type: {dict(per_type)}")
    return merged


def fingerprint_of(kind: str, legs: Sequence[Leg], memo: str, org_id: int | None) -> str:
    # A leg's expiry day is part of it only when it has one, so fingerprints of never-expiring legs are the ones
    # recorded before pockets had expiry days (an old key replayed after the upgrade still matches).
    body = json.dumps(
        [
            kind,
            org_id,
            memo,
            sorted(
                (lg.wallet_id, lg.credit_type_id, lg.funding_org_id, lg.amount)
                + (() if lg.expires_on == NEVER else (lg.expires_on.isoformat(),))
                for lg in legs
            ),
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


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
) -> Posted:
    """Move credits as one transfer. `Posted.replayed` is True when the idempotency key had already been
    used with the same legs (nothing moved again). Raises WalletError subclasses.

    The fingerprint defaults to the legs; a caller whose request is not its legs (a usage charge, whose
    legs depend on the balances at the time) passes its own, after checking the key under its lock."""
    merged = _merge_legs(legs)
    memo = (memo or "").strip()[:500]
    org_id = org.pk if org is not None else None
    fingerprint = fingerprint or fingerprint_of(kind, merged, memo, org_id)
    # Nested in a caller's transaction (which already locked its domain row), no savepoint: it would
    # cost two round trips while the hot pocket row is locked. Domain errors are therefore returned out
    # of the block and raised after it, so the caller's transaction stays usable.
    nested = transaction.get_connection().in_atomic_block
    error: Exception | None = None
    watched: Sequence = ()
    gross = sum(lg.amount for lg in merged if lg.amount > 0)
    try:
        with transaction.atomic(savepoint=not nested):
            outcome = _post(
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
            if isinstance(outcome, tuple):
                posted, watched = outcome
            elif isinstance(outcome, Posted):
                if outcome.replayed:
                    return outcome
                posted, watched = outcome, ()
            else:
                error = outcome
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
    _announce(posted.transfer, kind, org_id, merged, watched, gross)
    return posted


def _announce(transfer: Transfer, kind: str, org_id, legs: Sequence[Leg], watched: Sequence, amount: int) -> None:
    """What every form of the primitive does once its transfer is written: `transfer_posted` (still inside the
    caller's transaction when nested, its own having committed otherwise: receivers defer their side effects to
    on_commit, wallets/signals.py) and the audit line."""
    if transfer_posted.receivers:
        transfer_posted.send(sender=Transfer, transfer=transfer, kind=kind, org_id=org_id, legs=legs, watched=watched)
    _log_movement(transfer.pk, kind, amount, org_id, transfer.actor_id, len(legs))


def _written(**values) -> Transfer:
    """The transfer row a ledger statement has just written, built the way a query builds it (from_db: half the cost
    of Transfer(...), which matters at one statement per charge)."""
    return Transfer.from_db(connection.alias, _TRANSFER_FIELDS, [values[name] for name in _TRANSFER_FIELDS])


def _log_movement(transfer_id, kind: str, amount: int, org_id, actor_id, legs: int) -> None:
    """The audit line of every money movement (both forms of the primitive write it)."""
    log.info(
        "money_movement transfer=%s kind=%s amount=%s org_id=%s actor_id=%s legs=%s",
        transfer_id,
        kind,
        amount,
        org_id,
        actor_id,
        legs,
    )


def _credit_type_name(credit_type_id: int) -> str:
    return CreditType.objects.filter(pk=credit_type_id).values_list("name", flat=True).first() or ""


def _replay(previous: Transfer, fingerprint: str) -> Posted:
    if previous.fingerprint != fingerprint:
        raise IdempotencyConflict()
    return Posted(previous, replayed=True)


def _is_lock_failure(exc: OperationalError) -> bool:
    code = getattr(getattr(exc, "__cause__", None), "sqlstate", None)
    return code in {"55P03", "40P01", "40001"}


def fetch_hot(sql: str, params: list, *, lock_of: str | None = None) -> list[tuple]:
    """A hot-path read as a prepared statement, with `FOR UPDATE OF <lock_of>` appended when given."""
    return execute_prepared(sql + (f" FOR UPDATE OF {lock_of}" if lock_of else ""), params)


def execute_prepared(sql: str, params: list | dict) -> list[tuple]:
    """Run a hot statement as a server-side prepared statement on Django's own connection (same
    transaction). Django's cursors bind client-side, which re-plans the statement every time."""
    connection.ensure_connection()
    pg = connection.connection
    if pg.prepare_threshold is None and settings.LEDGER_PREPARED_STATEMENTS:
        # Django opens connections with prepare_threshold=None, which makes psycopg ignore prepare=True
        # (every call was parsed and planned again). Django's own cursors bind client-side and never
        # prepare, so a threshold no query reaches enables exactly the explicit prepare=True calls below.
        pg.prepare_threshold = 2**31 - 1
    start = time.monotonic() if connection.queries_logged else None
    if isinstance(params, dict):
        # Named placeholders, turned into $1, $2, ... once per statement here: psycopg caches that work only for
        # statements under 4 KB and redid it on every call of the longer ones (about 0.1 ms each).
        text, names = _numbered(sql)
        with psycopg.RawCursor(pg) as cur:
            cur.execute(text, [params[name] for name in names], prepare=True)
            rows = cur.fetchall()
    else:
        with psycopg.Cursor(pg) as cur:
            cur.execute(sql, params, prepare=True)
            rows = cur.fetchall()
    if start is not None:
        # Counted like any other query (DEBUG, assertNumQueries, CaptureQueriesContext): a query-count
        # figure that left out the ledger's own statements would flatter every money-moving page.
        elapsed = f"{time.monotonic() - start:.3f}"
        connection.queries_log.append({"sql": f"/* prepared */ {sql.strip()}", "time": elapsed})
    return rows


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%|%")


@functools.cache
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with its %(name)s placeholders as $n (each name one number) and %% as %, and the names in order."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(0) == "%%":
            return "%"
        if match.group(1) is None:
            raise ValueError(f"a lone % in a statement with named placeholders: {sql[:80]!r}")
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _PLACEHOLDER.sub(number, sql), tuple(names)


_PG_POST = load_sql(__file__, "post_transfer.sql")  # lock, check and write in one statement


def _post(
    kind, org_id, actor_id, memo, key, fingerprint, gross, merged, now
) -> tuple[Posted, Sequence] | Posted | WalletError:
    """The new transfer with the balance watches on its wallets (rows of `watches`), the first transfer for a
    replayed key, or the WalletError to raise."""
    params = [
        [lg.wallet_id for lg in merged],
        [lg.credit_type_id for lg in merged],
        [lg.funding_org_id for lg in merged],
        [lg.amount for lg in merged],
        [lg.expires_on for lg in merged],
        len(merged),
        org_id,
        kind,
        actor_id,
        memo,
        key,
        fingerprint,
        gross,
        now,
    ]
    internal = sum(1 for lg in merged if not lg.is_external)
    for attempt in (1, 2):
        ((_ok, transfer_id, updated, inserted, locked, watched),) = execute_prepared(_PG_POST, params)
        if transfer_id is not None:
            if updated != internal or inserted != len(merged):
                raise RuntimeError(f"ledger write touched {updated}/{inserted} of {internal}/{len(merged)} pockets")
            transfer = _written(
                id=transfer_id,
                org_id=org_id,
                kind=kind,
                actor_id=actor_id,
                memo=memo,
                idempotency_key=key,
                fingerprint=fingerprint,
                amount=gross,
                created_at=now,
            )
            return Posted(transfer), watched or ()
        # Nothing was written. A used key (committed before, or by a racer we just waited for) replays.
        if key and (previous := _previous_transfer(org_id, key)) is not None:
            return _replay(previous, fingerprint)
        balances = {(w, c, f, datetime.date.fromisoformat(e)): bal for w, c, f, e, bal in locked or []}
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


_PG_USAGE = load_sql(__file__, "post_usage.sql")  # the drawn form: plan, lock, check and write in one statement


@functools.cache
def _usage_statement(then_sql: str | None = None, before: str = "", watched: bool = False) -> str:
    """The drawn statement: with the caller's `Then` write, and in its watched form (which returns the balance watches
    on the member's wallet) or its unwatched one (which writes nothing for a watched wallet, see post_usage)."""
    sql = _PG_USAGE
    if then_sql is not None:
        ctes = f", {before}" if before else ""
        sql = sql.replace("/*then*/", f"{ctes}, then_write AS ({then_sql})", 1).replace(
            "/*written*/NULL::json", "(SELECT row_to_json(w) FROM then_write w)", 1
        )
    return sql if watched else _unwatched(sql, " AND NOT (SELECT m.watched FROM m)")


def _unwatched(sql: str, condition: str) -> str:
    """A ledger statement's unwatched form (docs/ledger.md, "Watched wallets"): the watches' subplans between
    /*watches*/ and /*end watches*/ left out (the column is NULL), and `condition`, which is false for a watched
    wallet, put where /*only unwatched*/ marks the write's own condition."""
    head, rest = sql.split("/*watches*/", 1)
    _watches, tail = rest.split("/*end watches*/", 1)
    return (head + "NULL::json" + tail).replace("/*only unwatched*/", condition, 1)


# Memberships whose Default wallet was found watched (Wallet.watched): their charges go straight to the watched form.
# Per process and never wrong: a stale entry only costs the watch's subplans. Bounded, as memberships come and go.
_WATCHED_MEMBERSHIPS: set[int] = set()
_WATCHED_MAX = 100_000


_TRANSFER_FIELDS = [f.attname for f in Transfer._meta.concrete_fields]


def post_usage(
    *,
    kind: str,
    org,
    membership_id: int,
    to_code: str,
    amount: int,
    fingerprint: str,
    actor=None,
    memo: str = "",
    idempotency_key: str | None = None,
    then: Then | None = None,
) -> UsageCharged:
    """Move `amount` credits from a member's pockets funded by `org` (the usage draw order: earliest expiry, then
    credit type draw order, then the oldest pocket; credits past their day are skipped) to the org's pockets of the
    external wallet with code `to_code` (Usage, or Holds), as one `kind` transfer, in ONE statement.

    Raises MemberNotActive, InsufficientCredits (nothing written), IdempotencyConflict (a used key with another
    fingerprint) or LedgerBusy. A used key with the same fingerprint replays the first transfer. Outside a caller's
    transaction the statement is its own transaction; inside one (the API's), it is one statement of it and the
    caller's transaction stays usable after every refusal.

    `then`: the caller's domain row, written by the same statement when the transfer is (a hold's row): its result
    is `UsageCharged.written`."""
    check_amount(amount)
    memo = (memo or "").strip()[:500]
    nested = transaction.get_connection().in_atomic_block
    now = timezone.now()
    params = {
        "membership": membership_id,
        "org": org.pk,
        "today": timezone.localdate(),
        "amount": amount,
        "to_code": to_code,
        "never": NEVER,
        "kind": kind,
        "actor": getattr(actor, "pk", None),
        "memo": memo,
        "key": idempotency_key,
        "fingerprint": fingerprint,
        "now": now,
    }
    if then is not None:
        if clash := set(then.params) & set(params):
            raise ValueError(f"the caller's parameters would replace the ledger's: {sorted(clash)}")
        params.update(then.params)
    # Most wallets have no balance watch: the unwatched form leaves their subplans out, and writes nothing for a
    # wallet that has one (a watch made since, or a membership this process has not charged yet), which is then
    # charged by the watched form, so no watch ever misses a movement.
    watch_form = membership_id in _WATCHED_MEMBERSHIPS
    try:
        attempt = 0
        while attempt < 3:
            attempt += 1
            statement = _usage_statement(*((then.sql, then.before) if then else (None, "")), watched=watch_form)
            row = execute_prepared(statement, params)[0]
            status, wallet_id, wallet_watched, transfer_id, inserted, plan, watched, written_row = row
            if transfer_id is not None:
                break
            if wallet_watched and not watch_form:
                if len(_WATCHED_MEMBERSHIPS) >= _WATCHED_MAX:
                    _WATCHED_MEMBERSHIPS.clear()
                _WATCHED_MEMBERSHIPS.add(membership_id)
                watch_form = True
                attempt -= 1  # not an attempt: the same statement in its watched form
                continue
            # Nothing was written. Not a member (any more): refused, as before any other check. A used key
            # (committed before, or by a racer we just waited for) replays, whatever the balances are now.
            if status != "active" or wallet_id is None:
                raise MemberNotActive()
            if idempotency_key and (previous := _previous_transfer(org.pk, idempotency_key)) is not None:
                return UsageCharged(_replay(previous, fingerprint).transfer, replayed=True)
            available = sum(p[3] for p in plan or ())
            if available < amount:
                raise InsufficientCredits(available=available, requested=amount)
            missing = [p[0] for p in plan if p[5] is None]
            if missing and attempt < 3:
                # The org's first movement of a credit type into this account: create its pocket, then again.
                # One for every credit type the member holds, not only those this plan drew: by the next run
                # racers may have emptied these pockets, and the plan then draws another credit type.
                external_id = Wallet.objects.external(to_code).pk
                _create_pockets([Leg(external_id, ct, 1, org.pk, True) for ct in dict.fromkeys(missing)], now)
                continue
            raise LedgerBusy()
    except IntegrityError:
        if idempotency_key and not nested and (previous := _previous_transfer(org.pk, idempotency_key)):
            return UsageCharged(_replay(previous, fingerprint).transfer, replayed=True)
        if idempotency_key and nested:
            raise LedgerBusy() from None
        raise
    except OperationalError as exc:
        if _is_lock_failure(exc):
            raise LedgerBusy() from exc
        raise
    remaining: dict[str, int] = {}
    drawn: dict[str, int] = {}
    legs: list[Leg] = []
    taken: list[tuple[int, str, int, datetime.date]] = []
    credited: dict[int, int] = {}
    to_wallet_id: int = next(p[6] for p in plan if p[2])  # the external wallet (a transfer was written: a pocket drawn)
    for ct_id, slug, take, balance, day, _to_pocket, _to_wallet in plan:
        remaining[slug] = remaining.get(slug, 0) + balance - take
        if take:
            expires_on = datetime.date.fromisoformat(day)
            drawn[slug] = drawn.get(slug, 0) + take
            taken.append((ct_id, slug, take, expires_on))
            legs.append(Leg(wallet_id, ct_id, -take, org.pk, False, expires_on))
            credited[ct_id] = credited.get(ct_id, 0) + take
    if inserted != len(legs) + len(credited):
        raise RuntimeError(f"ledger write made {inserted} entries for {len(legs)} pockets and {len(credited)} types")
    legs += [Leg(to_wallet_id, ct_id, credits, org.pk, True) for ct_id, credits in credited.items()]
    transfer = _written(
        id=transfer_id,
        org_id=org.pk,
        kind=kind,
        actor_id=params["actor"],
        memo=memo,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        amount=amount,
        created_at=now,
    )
    _announce(transfer, kind, org.pk, legs, watched or (), amount)
    return UsageCharged(
        transfer,
        drawn=tuple(drawn.items()),
        member_balance=remaining,
        taken=tuple(taken),
        wallet_id=wallet_id,
        written=_json(written_row),
    )


_PG_SETTLE = load_sql(__file__, "post_settle.sql")  # the settling form: release and charge in one statement


@dataclass(frozen=True, slots=True)
class Settlement:
    """The caller's two fragments of a settle statement (sql/post_settle.sql says what each must be): `source`, the
    SELECT that locks its domain row and returns (wallet_id, parts, ok); `then`, its domain row's write, reading
    `t2`. Constant text per caller: the statement is built and prepared once per Settlement."""

    source: str
    then: str


@functools.cache
def _settle_statement(settlement: Settlement, watched: bool = False) -> str:
    """The settling statement with the caller's fragments, in its watched or unwatched form (as `_usage_statement`)."""
    sql = _PG_SETTLE.replace("/*source*/", settlement.source, 1).replace("/*then*/", settlement.then, 1)
    return sql if watched else _unwatched(sql, " AND NOT (SELECT watched FROM ww)")


def post_settle(
    settlement: Settlement,
    params: dict,
    *,
    org,
    from_code: str,
    to_code: str,
    amount: int,
    release: tuple[str, str, str, str],
    charge: tuple[str, str, str],
    actor=None,
) -> Settled | None:
    """Settle credits parked for a member in the external account `from_code` (a hold's parts): all of them back to
    the member's pockets (the `release` transfer), then `amount` of them, in the parts' order, from those pockets to
    the external account `to_code` (the `charge` transfer). Both transfers, their entries, the pockets' balances and
    the caller's domain row (`settlement.then`) are written by ONE statement: one round trip, and outside a caller's
    transaction its own transaction. The ledger reads as two `post_transfer` calls would have written it.

    `release` is (kind, memo, idempotency key, fingerprint), `charge` (kind, idempotency key, fingerprint): its memo
    is the domain row's (`src.memo`). `params` are the fragments' own. None
    when nothing was written: no domain row, the row says no (`ok`), or a pocket is missing; the caller then takes
    its general path (two `post_transfer` calls in its transaction), which says why or creates the pockets."""
    check_amount(amount)
    now = timezone.now()
    actor_id = getattr(actor, "pk", None)
    values = {
        "org": org.pk,
        "amount": amount,
        "now": now,
        "never": NEVER,
        "from_code": from_code,
        "to_code": to_code,
        "actor": actor_id,
        "release_kind": release[0],
        "release_memo": release[1],
        "release_key": release[2],
        "release_fingerprint": release[3],
        "charge_kind": charge[0],
        "charge_key": charge[1],
        "charge_fingerprint": charge[2],
    }
    if clash := set(params) & set(values):
        raise ValueError(f"the caller's parameters would replace the ledger's: {sorted(clash)}")
    values.update(params)
    nested = transaction.get_connection().in_atomic_block
    try:
        # The unwatched form first (most member wallets have no balance watch); a watched wallet's settlement is
        # then written by the watched form, which returns the watches (a statement more for those wallets only).
        for watch_form in (False, True):
            row = execute_prepared(_settle_statement(settlement, watch_form), values)[0]
            _ok, release_id, charge_id, inserted, written, parts, pockets, wallet_id, charge_memo, watched, seen = row
            if charge_id is not None or not seen:
                break
    except (IntegrityError, psycopg.IntegrityError):  # the statement is psycopg's own (execute_prepared)
        if nested:
            raise LedgerBusy() from None
        return None  # a used key: nothing was written; the caller's general path replays or refuses
    except OperationalError as exc:
        if _is_lock_failure(exc):
            raise LedgerBusy() from exc
        raise
    if charge_id is None:
        return None
    parts, pockets = _json(parts), _json(pockets)
    external = {ct: (from_wallet, to_wallet) for ct, from_wallet, to_wallet in pockets}
    released: list[Leg] = []
    charged: list[Leg] = []
    held_by_type: dict[int, int] = defaultdict(int)
    taken_by_type: dict[int, int] = defaultdict(int)
    for ct, held, take, day in parts:
        expires_on = datetime.date.fromisoformat(day)
        released.append(Leg(wallet_id, ct, held, org.pk, False, expires_on))
        held_by_type[ct] += held
        if take:
            charged.append(Leg(wallet_id, ct, -take, org.pk, False, expires_on))
            taken_by_type[ct] += take
    released += [Leg(external[ct][0], ct, -held, org.pk, True) for ct, held in held_by_type.items()]
    charged += [Leg(external[ct][1], ct, take, org.pk, True) for ct, take in taken_by_type.items()]
    if inserted != len(released) + len(charged):
        raise RuntimeError(f"settlement wrote {inserted} entries for {len(released)} + {len(charged)} legs")
    transfers = []
    # The watches come back with the balance after both transfers; the release's own "after" is that plus what the
    # charge then took of the wallet (of the watch's credit type, or of any), so that each transfer is announced with
    # its own before and after: the release may cross a threshold on the way up ("above"), the charge on the way down.
    watched = watched or ()
    after_release = [
        (
            *row[:6],
            row[6]
            + sum(
                -lg.amount
                for lg in charged
                if lg.wallet_id == row[3] and not lg.is_external and row[4] in (None, lg.credit_type_id)
            ),
        )
        for row in watched
    ]
    for transfer_id, (kind, memo, key, fingerprint), legs, gross, watches in (
        (release_id, release, released, sum(held_by_type.values()), after_release),
        (charge_id, (charge[0], charge_memo, charge[1], charge[2]), charged, amount, watched),
    ):
        transfer = _written(
            id=transfer_id,
            org_id=org.pk,
            kind=kind,
            actor_id=actor_id,
            memo=memo,
            idempotency_key=key,
            fingerprint=fingerprint,
            amount=gross,
            created_at=now,
        )
        transfers.append(transfer)
        _announce(transfer, kind, org.pk, legs, watches, gross)
    return Settled(transfers[0], transfers[1], _json(written))


_CREATE_POCKETS = load_sql(__file__, "create_pockets.sql")


def _create_pockets(legs: Sequence[Leg], now) -> None:
    """The legs' missing pockets (a racer creating the same one is fine: ON CONFLICT DO NOTHING), each with
    its org: the funding org, else the org of an org wallet."""
    with connection.cursor() as cursor:
        cursor.execute(
            _CREATE_POCKETS,
            [
                now,
                [lg.wallet_id for lg in legs],
                [lg.credit_type_id for lg in legs],
                [lg.funding_org_id for lg in legs],
                [lg.is_external for lg in legs],
                [lg.expires_on for lg in legs],
            ],
        )
