"""Hold verbs: reserve a member's credits, then capture them as usage or release them (docs/holds.md).

Every movement is a ledger transfer through `wallets.ledger.post_transfer`:
- HOLD: the member's pockets funded by the org (usage draw order: earliest expiry first, then credit type
  draw order) -> the external Holds wallet; each part of the hold remembers its pocket's expiry day;
- capture: a HOLD_RELEASE of everything held back to the member's pockets, then a HOLD_CAPTURE from those
  pockets to Usage (the captured credits, in draw order), in one transaction, so the capture reads like any
  usage charge (a member debit beside a Usage credit); for a member removed meanwhile, one HOLD_CAPTURE
  Holds -> Usage and the rest -> the org wallet;
- HOLD_RELEASE (void or expiry): Holds -> the member's pockets.
Expiry travels with the credits (docs/expiry.md): whatever goes back goes to the pocket with the part's day (the
member's, or the org wallet's for a removed member). Held credits sit in the Holds account and do not expire
while held; released after their day, they land in a pocket already past it and the next daily expiry run
expires them.

One statement each, for the usual cases: a hold is `wallets.ledger.post_usage` writing the Hold row with the
transfer (`sql/hold_then.sql`); a capture of an open hold of a current member is `wallets.ledger.post_settle`, which
locks the hold, writes the release and the capture and marks the hold captured (`sql/capture_source.sql`,
`sql/capture_then.sql`). Anything else takes the general path: the hold locked, `post_transfer`, the status, in one
transaction. Both write the same ledger.

Lock order, as everywhere: the domain row first (the hold; for a new hold the membership), then the
membership, then the pockets (post_transfer, by id). The hold's status changes in the same transaction as its
capture or release transfer, so capture, void and expiry racing on one hold have exactly one winner.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from core.sql import load_sql
from holds.errors import CaptureTooLarge, HoldError, HoldExpired, HoldKeyReused, HoldNotFound, HoldNotOpen
from holds.models import DEFAULT_EXPIRES_IN, MAX_EXPIRES_IN, Hold, HoldStatus, expiry_from
from orgs.models import MembershipStatus, Organization
from wallets.errors import IdempotencyConflict, InvalidAmount, LedgerBusy, MemberNotActive, WalletError
from wallets.ledger import Leg, Settlement, Then, check_amount, execute_prepared, post_settle, post_transfer, post_usage
from wallets.models import MAX_AMOUNT, NEVER, ExternalCode, Transfer, TransferKind, Wallet


@dataclass(frozen=True, slots=True)
class HoldResult:
    hold: Hold
    # The transfer this call is about: the HOLD for create_hold, the HOLD_CAPTURE or HOLD_RELEASE otherwise.
    transfer: Transfer | None
    # The same request was answered before (same idempotency key, or the hold already ended this way).
    replayed: bool = False


# Hand-written, prepared statements on the hot path (as wallets.services.member_charge_usage): ORM compilation
# of these reads and writes cost more than the database work.
_LOCK_HOLD = load_sql(__file__, "lock_hold.sql")
# The hold's row, written by the ledger's drawn statement itself (wallets.ledger.post_usage's `Then`).
_HOLD_ROW = load_sql(__file__, "hold_then.sql")
# A capture in one statement (wallets.ledger.post_settle): the hold locked first, then released and charged.
_CAPTURE = Settlement(source=load_sql(__file__, "capture_source.sql"), then=load_sql(__file__, "capture_then.sql"))
_CAPTURED = (
    "UPDATE holds_hold SET status = 'captured', captured = %s, capture_transfer_id = %s, closed_at = %s "
    "WHERE id = %s RETURNING id"
)
_RELEASED = "UPDATE holds_hold SET status = %s, release_transfer_id = %s, closed_at = %s WHERE id = %s RETURNING id"


def _fingerprint(org_id: int, membership_id: int, amount: int, description: str) -> str:
    body = json.dumps(["hold", org_id, membership_id, amount, description], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def check_expires_in(expires_in) -> int:
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise WalletError(f"expires_in is a whole number of seconds from 1 to {MAX_EXPIRES_IN:,} (7 days).")
    return expires_in


def create_hold(
    *,
    org: Organization,
    membership_id: int,
    amount: int,
    description: str = "",
    expires_in: int = DEFAULT_EXPIRES_IN,
    api_key_id: int | None = None,
    actor=None,
    idempotency_key: str | None = None,
) -> HoldResult:
    """Reserve `amount` of the member's credits funded by this org (earliest expiry first, then Promo before
    Org-allocated, oldest pocket first, like a usage charge): one HOLD transfer to the Holds wallet.
    InsufficientCredits (with the shortfall) when they are not there. The same idempotency key with the same
    request returns the first hold."""
    check_amount(amount)
    check_expires_in(expires_in)
    description = (description or "").strip()[:500]
    key = idempotency_key or f"hold:{uuid.uuid4()}"
    try:
        membership_id = int(membership_id)
    except (TypeError, ValueError):
        raise MemberNotActive() from None
    fingerprint = _fingerprint(org.pk, membership_id, amount, description)
    # One statement writes the HOLD transfer and the hold's row (outside a caller's transaction, its own
    # transaction: no BEGIN or COMMIT round trips); refusals are decided before anything is written, so a
    # caller's transaction (the API's) stays usable after any of them.
    return _create(org, membership_id, amount, description, expires_in, api_key_id, actor, key, fingerprint)


def _replay_hold(org, key, fingerprint) -> HoldResult | None:
    hold = Hold.objects.filter(org=org, idempotency_key=key).select_related("hold_transfer").first()
    if hold is None:
        return None
    if _fingerprint(org.pk, hold.membership_id, hold.amount, hold.description) != fingerprint:
        raise HoldKeyReused()
    return HoldResult(hold, hold.hold_transfer, replayed=True)


def _create(org, membership_id, amount, description, expires_in, api_key_id, actor, key, fingerprint):
    # One ledger statement (wallets.ledger.post_usage, the usage draw order) locks the membership and the member's
    # pockets, plans the hold over them, writes the HOLD transfer and, with it, the Hold row (hold_then.sql).
    try:
        posted = post_usage(
            kind=TransferKind.HOLD,
            org=org,
            membership_id=membership_id,
            to_code=ExternalCode.HOLDS.value,
            amount=amount,
            fingerprint=fingerprint,
            actor=actor,
            memo=description or "Hold",
            idempotency_key=key,
            then=Then(
                _HOLD_ROW,
                {"hold_api_key": api_key_id, "hold_description": description, "hold_expires_in": expires_in},
            ),
        )
    except IdempotencyConflict:
        raise HoldKeyReused() from None
    if posted.replayed:  # the key made a hold before (or a racer's, committed while we waited for the membership)
        return _replay_hold(org, key, fingerprint) or HoldResult(
            _hold_of_transfer(posted.transfer), posted.transfer, True
        )
    # One part per pocket taken from (a member has one pocket per credit type and expiry day), in draw order: as
    # the statement wrote them.
    parts = [[ct_id, slug, take, day.isoformat()] for ct_id, slug, take, day in posted.taken]
    now = posted.transfer.created_at
    hold = _hold_from(
        {
            "id": posted.written["id"],
            "org_id": org.pk,
            "membership_id": membership_id,
            "wallet_id": posted.wallet_id,
            "api_key_id": api_key_id,
            "amount": amount,
            "captured": 0,
            "status": HoldStatus.OPEN,
            "description": description,
            "parts": parts,
            "idempotency_key": key,
            "created_at": now,
            "expires_at": expiry_from(expires_in, now),
            "closed_at": None,
            "hold_transfer_id": posted.transfer.pk,
            "capture_transfer_id": None,
            "release_transfer_id": None,
        }
    )
    return HoldResult(hold, posted.transfer)


def _hold_of_transfer(transfer: Transfer) -> Hold:
    return Hold.objects.get(hold_transfer_id=transfer.pk)


@dataclass(slots=True)
class _Locked:
    hold: Hold
    member_active: bool
    holds_wallet_id: int | None
    usage_wallet_id: int | None
    org_wallet_id: int | None

    def wallet_ids(self, org: Organization, *, need_usage: bool) -> tuple[int, int | None, int]:
        """(Holds wallet, Usage wallet or None, where the rest goes back)."""
        holds_id = self.holds_wallet_id or Wallet.objects.external(ExternalCode.HOLDS).pk
        usage_id = None
        if need_usage:
            usage_id = self.usage_wallet_id or Wallet.objects.external(ExternalCode.USAGE).pk
        if self.member_active:
            return holds_id, usage_id, self.hold.wallet_id
        return holds_id, usage_id, self.org_wallet_id or Wallet.objects.for_org(org).pk


_HOLD_FIELDS = [
    "id",
    "membership_id",
    "wallet_id",
    "api_key_id",
    "amount",
    "captured",
    "status",
    "description",
    "parts",
    "idempotency_key",
    "created_at",
    "expires_at",
    "closed_at",
    "hold_transfer_id",
    "capture_transfer_id",
    "release_transfer_id",
]


def _lock_hold(org: Organization, hold_id) -> _Locked:
    """The hold (the domain row, first in the lock order) and its membership, locked in one statement. The
    membership lock orders a capture or release against the member's removal: the rest goes back to the
    member's pockets while they are a member, else to the org wallet (where their Return sent the rest)."""
    rows = execute_prepared(_LOCK_HOLD, [_hold_pk(hold_id), org.pk])
    if not rows:
        raise HoldNotFound()
    row = rows[0]
    values = dict(zip(_HOLD_FIELDS, row[:16], strict=True), org_id=org.pk)
    if isinstance(values["parts"], str):  # Django's connection reads jsonb as text (the ORM parses it itself)
        values["parts"] = json.loads(values["parts"])
    hold = _hold_from(values)
    return _Locked(hold, row[16] == MembershipStatus.ACTIVE, row[17], row[18], row[19])


def _hold_pk(hold_id) -> int:
    try:
        hold_id = int(hold_id)
    except (TypeError, ValueError):
        raise HoldNotFound() from None
    if not 1 <= hold_id < 2**63:
        raise HoldNotFound()
    return hold_id


def hold_parts(hold: Hold) -> list[tuple[int, str, int, datetime.date]]:
    """(credit type id, slug, credits, expiry day) per part, in draw order. A part stored before pockets had
    expiry days has no day: its credits came from (and go back to) the never-expiring pocket."""
    return [
        (part[0], part[1], part[2], datetime.date.fromisoformat(part[3]) if len(part) > 3 else NEVER)
        for part in hold.parts
    ]


def _back_leg(hold: Hold, org: Organization, back_to: int, ct_id: int, amount: int, day: datetime.date) -> Leg:
    """Credits going back keep their expiry day, whether to the member's pocket or (a removed member) to the
    org wallet's own pocket, as a Return credits it."""
    if back_to == hold.wallet_id:
        return Leg(back_to, ct_id, amount, org.pk, False, day)
    return Leg(back_to, ct_id, amount, None, False, day)


def capture_hold(*, org: Organization, hold_id, amount: int, actor=None) -> HoldResult:
    """Charge `amount` (1 to the held amount) of an open, unexpired hold as usage and release the rest: a
    HOLD_RELEASE of all of it, then a HOLD_CAPTURE of `amount`, in one transaction (the result's transfer is the
    HOLD_CAPTURE). A second capture of the same amount replays the first; anything else on a hold
    that is no longer open is HoldNotOpen, on an expired one HoldExpired."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(amount, "Credits are whole numbers: enter an amount like 100.")
    hold_pk = _hold_pk(hold_id)
    if 0 < amount <= MAX_AMOUNT:
        # The usual capture (an open hold of a current member, not past its time, at most the held amount): ONE
        # statement, wallets.ledger.post_settle, locks the hold and its membership, then the member's pockets,
        # writes the HOLD_RELEASE and the HOLD_CAPTURE and marks the hold captured. Anything else writes nothing
        # there and takes the general path below, which says why (or replays, or sends a removed member's rest
        # to the org wallet).
        settled = post_settle(
            _CAPTURE,
            {"hold": hold_pk},
            org=org,
            from_code=ExternalCode.HOLDS.value,
            to_code=ExternalCode.USAGE.value,
            amount=amount,
            release=(
                TransferKind.HOLD_RELEASE,
                f"Hold {hold_pk} released for its capture",
                f"hold:{hold_pk}:capture-release",
                _settle_fingerprint(TransferKind.HOLD_RELEASE, org.pk, hold_pk, amount),
            ),
            charge=(
                TransferKind.HOLD_CAPTURE,
                f"hold:{hold_pk}:capture",
                _settle_fingerprint(TransferKind.HOLD_CAPTURE, org.pk, hold_pk, amount),
            ),
            actor=actor,
        )
        if settled is not None:
            return HoldResult(_hold_of_row(settled.written), settled.charge)
    nested = transaction.get_connection().in_atomic_block
    error: WalletError | None = None
    with transaction.atomic(savepoint=not nested):
        try:
            return _capture_locked(org, hold_pk, amount, actor)
        except LedgerBusy:
            raise
        except (WalletError, HoldError) as exc:
            error = exc
    raise error


def _settle_fingerprint(kind: str, org_id: int, hold_id: int, amount: int) -> str:
    """A capture's transfers are fingerprinted by the request (the hold and the amount), not by their legs, on both
    paths: the legs are known only once the hold is locked, inside the one statement."""
    body = json.dumps([kind, org_id, hold_id, amount], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


_HOLD_ATTNAMES = [f.attname for f in Hold._meta.concrete_fields]


def _hold_from(values: dict) -> Hold:
    """A Hold built the way a query builds one (Model.from_db, positional: about half the cost of Hold(**kwargs),
    which counts at one statement per hold)."""
    return Hold.from_db("default", _HOLD_ATTNAMES, [values[name] for name in _HOLD_ATTNAMES])


def _hold_of_row(row: dict) -> Hold:
    """The Hold as the capture statement RETURNed it (row_to_json: timestamps as ISO text)."""
    for name in ("created_at", "expires_at", "closed_at"):
        if row[name] is not None:
            row[name] = datetime.datetime.fromisoformat(row[name])
    return _hold_from(row)


def _capture_locked(org, hold_id, amount, actor) -> HoldResult:
    locked = _lock_hold(org, hold_id)
    hold = locked.hold
    if hold.status == HoldStatus.CAPTURED and hold.captured == amount:
        return HoldResult(hold, Transfer.objects.get(pk=hold.capture_transfer_id), replayed=True)
    if hold.status == HoldStatus.EXPIRED:
        raise HoldExpired()
    if hold.status != HoldStatus.OPEN:
        raise HoldNotOpen(f"This hold is {hold.get_status_display().lower()}: it can no longer be captured.")
    if hold.is_expired:
        raise HoldExpired()
    if amount <= 0:
        raise InvalidAmount(amount, "Enter an amount greater than zero (void the hold to capture nothing).")
    if amount > hold.amount:
        raise CaptureTooLarge(f"Capture at most the held amount: {hold.amount:,} credits held, {amount:,} asked.")
    holds_id, usage_id, back_to = locked.wallet_ids(org, need_usage=True)
    legs, left = [], amount
    if back_to == hold.wallet_id:
        # A current member: everything held goes back to their pockets (a HOLD_RELEASE), then the captured
        # credits leave those pockets for Usage, like any usage charge. Two transfers in this one transaction
        # (the pockets stay locked from the first to COMMIT, so nothing else can spend the released credits):
        # the capture then reads, in the ledger, as the member's debit beside the Usage credit, which is how
        # the usage reports (reporting/) tell whose usage it was.
        # Each part goes back to its own pocket (its expiry day), and the capture draws the parts in the order
        # the hold took them: earliest expiry first.
        release = []
        for ct_id, _slug, held, day in hold_parts(hold):
            take = min(left, held)
            release += [Leg(holds_id, ct_id, -held, org.pk, True), _back_leg(hold, org, back_to, ct_id, held, day)]
            if take:
                legs += [
                    Leg(hold.wallet_id, ct_id, -take, org.pk, False, day),
                    Leg(usage_id, ct_id, take, org.pk, True),
                ]
            left -= take
        post_transfer(
            kind=TransferKind.HOLD_RELEASE,
            org=org,
            actor=actor,
            memo=f"Hold {hold.pk} released for its capture",
            idempotency_key=f"hold:{hold.pk}:capture-release",
            fingerprint=_settle_fingerprint(TransferKind.HOLD_RELEASE, org.pk, hold.pk, amount),
            legs=release,
        )
    else:
        # A removed member: their Return sent the org wallet everything else; the rest goes there too, and the
        # captured credits go straight from Holds to Usage (one HOLD_CAPTURE transfer).
        for ct_id, _slug, held, day in hold_parts(hold):
            take = min(left, held)
            legs.append(Leg(holds_id, ct_id, -held, org.pk, True))
            if take:
                legs.append(Leg(usage_id, ct_id, take, org.pk, True))
            if held - take:
                legs.append(_back_leg(hold, org, back_to, ct_id, held - take, day))
            left -= take
    posted = post_transfer(
        kind=TransferKind.HOLD_CAPTURE,
        org=org,
        actor=actor,
        memo=hold.description or f"Hold {hold.pk} captured",
        idempotency_key=f"hold:{hold.pk}:capture",
        fingerprint=_settle_fingerprint(TransferKind.HOLD_CAPTURE, org.pk, hold.pk, amount),
        legs=legs,
    )
    now = timezone.now()
    execute_prepared(_CAPTURED, [amount, posted.transfer.pk, now, hold.pk])
    hold.status, hold.captured, hold.capture_transfer_id, hold.closed_at = (
        HoldStatus.CAPTURED,
        amount,
        posted.transfer.pk,
        now,
    )
    return HoldResult(hold, posted.transfer, replayed=posted.replayed)


def void_hold(*, org: Organization, hold_id, actor=None) -> HoldResult:
    """Release all of an open hold back to the member: one HOLD_RELEASE transfer. Voiding a voided hold replays;
    a captured or expired one is HoldNotOpen. A hold past its expiry that the task has not reached yet is
    HoldExpired and nothing moves: the task releases it, so its one outcome is "expired"."""
    return _release(org, hold_id, actor, HoldStatus.VOIDED)


def expire_hold(*, org: Organization, hold_id) -> HoldResult | None:
    """Release an open hold whose time is up (the expiry task); None when it is no longer open or not due."""
    try:
        return _release(org, hold_id, None, HoldStatus.EXPIRED)
    except (HoldNotOpen, HoldNotFound):
        return None


def _release(org, hold_id, actor, status: str) -> HoldResult:
    nested = transaction.get_connection().in_atomic_block
    error: Exception | None = None
    with transaction.atomic(savepoint=not nested):
        try:
            locked = _lock_hold(org, hold_id)
            hold = locked.hold
            if hold.status == status:
                return HoldResult(hold, Transfer.objects.get(pk=hold.release_transfer_id), replayed=True)
            if hold.status == HoldStatus.EXPIRED and status == HoldStatus.VOIDED:
                raise HoldExpired()
            if hold.status != HoldStatus.OPEN:
                raise HoldNotOpen(f"This hold is {hold.get_status_display().lower()}: it can no longer be voided.")
            if status == HoldStatus.EXPIRED and not hold.is_expired:
                raise HoldNotOpen("This hold has not expired yet.")
            if status == HoldStatus.VOIDED and hold.is_expired:
                raise HoldExpired()  # nothing moves here: the expiry task releases it (one outcome: expired)
            holds_id, _usage, back_to = locked.wallet_ids(org, need_usage=False)
            legs = []
            for ct_id, _slug, held, day in hold_parts(hold):
                legs += [Leg(holds_id, ct_id, -held, org.pk, True), _back_leg(hold, org, back_to, ct_id, held, day)]
            posted = post_transfer(
                kind=TransferKind.HOLD_RELEASE,
                org=org,
                actor=actor,
                memo=f"Hold {hold.pk} {status}",
                idempotency_key=f"hold:{hold.pk}:release",
                legs=legs,
            )
            now = timezone.now()
            execute_prepared(_RELEASED, [status, posted.transfer.pk, now, hold.pk])
            hold.status, hold.release_transfer_id, hold.closed_at = status, posted.transfer.pk, now
            return HoldResult(hold, posted.transfer, replayed=posted.replayed)
        except LedgerBusy:
            raise
        except (WalletError, HoldError) as exc:
            error = exc
    raise error


def expire_due_holds(*, limit: int = 500) -> int:
    """Release every open hold whose time is up (at most `limit` per call), each in its own transaction; the
    number released. Safe to run twice at once: each hold is locked and its status checked."""
    now = timezone.now()
    due = list(
        Hold.objects.filter(status=HoldStatus.OPEN, expires_at__lte=now)
        .select_related("org")
        .order_by("expires_at", "pk")[:limit]
    )
    released = 0
    for hold in due:
        result = expire_hold(org=hold.org, hold_id=hold.pk)
        if result is not None and not result.replayed:
            released += 1
    return released
