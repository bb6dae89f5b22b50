"""The usage charge as it was before it became one statement (wallets.ledger.post_usage): a read that locks the
membership and the member's pockets (member_for_usage.sql), then `post_transfer` with the legs planned in Python,
in a transaction of its own: four round trips (BEGIN, the read, the ledger statement, COMMIT). bench/
usage_throughput.py and bench/holds.py run it beside the app's path in the same run. Not used by the app."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from orgs.models import MembershipStatus, Organization
from wallets.errors import IdempotencyConflict, InsufficientCredits, LedgerBusy, MemberNotActive, WalletError
from wallets.ledger import Leg, check_amount, execute_prepared, fetch_hot, post_transfer
from wallets.models import ExternalCode, Transfer, TransferKind, Wallet
from wallets.results import UsageCharged


def _usage_fingerprint(org_id: int, membership_id: int, amount: int, description: str) -> str:
    body = json.dumps(["usage", org_id, membership_id, amount, description], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


_MEMBER_FOR_USAGE = "\n".join(
    line
    for line in (Path(__file__).parent / "member_for_usage.sql").read_text().splitlines()
    if not line.lstrip().startswith("--")
)

_TRANSFER_BY_KEY = "SELECT id, fingerprint FROM wallets_transfer WHERE org_id = %s AND idempotency_key = %s"


def member_charge_usage(
    *,
    org: Organization,
    membership_id: int,
    amount: int,
    description: str = "",
    actor=None,
    idempotency_key: str | None = None,
) -> UsageCharged:
    """Charge a member for usage in this org: one USAGE transfer from their Default wallet to Usage.

    Only pockets funded by THIS org are spent (the org pays for work done in the org; the member's
    personal credits and other orgs' credits are never touched). Draw order: credit types by
    `CreditType.draw_order` (Promo before Org-allocated), then oldest pocket first. Because the credits
    leave the member's org-funded pockets, a later Return gives the org back only what is unspent.

    The fingerprint is the request (member, amount, description), not the legs: the legs depend on the
    balances at the time, and a replay must match the first call, not today's balances.
    """
    check_amount(amount)
    description = (description or "").strip()[:500]
    fingerprint = _usage_fingerprint(org.pk, membership_id, amount, description)
    try:
        membership_id = int(membership_id)
    except (TypeError, ValueError):
        raise MemberNotActive() from None
    # Inside a caller's transaction (the API's, which holds the idempotency record), no savepoint: two round
    # trips while the membership is locked. Every refusal below is decided before anything is written, so
    # it is returned out of the block and raised after it, and the caller's transaction stays usable.
    # LedgerBusy (a failed statement) propagates: that transaction is spoilt and must roll back.
    nested = transaction.get_connection().in_atomic_block
    error: WalletError | None = None
    with transaction.atomic(savepoint=not nested):
        try:
            return _charge_usage_locked(org, membership_id, amount, description, actor, idempotency_key, fingerprint)
        except LedgerBusy:
            raise
        except WalletError as exc:
            error = exc
    raise error


def _charge_usage_locked(org, membership_id, amount, description, actor, idempotency_key, fingerprint) -> UsageCharged:
    # Hand-written (prepared on PostgreSQL): this is the API's hot path, and ORM compilation of these reads
    # cost more than the database work. Lock order as everywhere: the membership (domain row) first, then
    # the member's pockets by id, then post_transfer's pocket locks; the first two in one statement.
    key = idempotency_key or ""
    rows = execute_prepared(
        _MEMBER_FOR_USAGE,
        [membership_id, org.pk, ExternalCode.USAGE.value, org.pk, key, org.pk, key, org.pk, timezone.localdate()],
    )
    if not rows or rows[0][0] != MembershipStatus.ACTIVE:
        raise MemberNotActive()
    _status, member_wallet_id, usage_wallet_id, slugs, seen_id, seen_fingerprint = rows[0][:6]
    pockets = [row[6:] for row in rows if row[6] is not None]
    if idempotency_key and seen_id is not None:
        if seen_fingerprint != fingerprint:
            raise IdempotencyConflict()
        return UsageCharged(Transfer.objects.get(pk=seen_id), replayed=True)
    if usage_wallet_id is None:
        usage_wallet_id = Wallet.objects.external(ExternalCode.USAGE).pk
    # Sorted into draw order: earliest expiry first, then credit type draw order, then oldest pocket first.
    pockets.sort(key=lambda p: (p[6], p[4], p[1], p[5], p[0]))  # expires_on, draw_order, credit type, created, id
    available = sum(p[2] for p in pockets)
    if available < amount:
        if idempotency_key and (seen := next(iter(fetch_hot(_TRANSFER_BY_KEY, [org.pk, idempotency_key])), None)):
            # A racer with the same key committed while we waited for the membership (its charge may be why
            # the balance is short; the statement above could not see it): a replay, not a wrong 402.
            if seen[1] != fingerprint:
                raise IdempotencyConflict()
            return UsageCharged(Transfer.objects.get(pk=seen[0]), replayed=True)
        raise InsufficientCredits(available=available, requested=amount)
    remaining = dict.fromkeys(slugs or (), 0)
    legs: list[Leg] = []
    drawn: dict[str, int] = {}
    left = amount
    for _pocket_id, ct_id, balance, slug, _draw_order, _created, expires_on in pockets:
        take = min(left, balance)
        if take:
            legs += [
                Leg(member_wallet_id, ct_id, -take, org.pk, False, expires_on),
                Leg(usage_wallet_id, ct_id, take, org.pk, True),
            ]
            drawn[slug] = drawn.get(slug, 0) + take
        remaining[slug] = remaining.get(slug, 0) + balance - take
        left -= take
    posted = post_transfer(
        kind=TransferKind.USAGE,
        org=org,
        actor=actor,
        memo=description,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        legs=legs,
    )
    if posted.replayed:  # a racer with the same key committed between our key check and the write
        return UsageCharged(posted.transfer, replayed=True)
    return UsageCharged(posted.transfer, drawn=tuple(drawn.items()), member_balance=remaining)
