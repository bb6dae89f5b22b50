"""Balance watches: tell a feature when a movement takes a wallet's balance across a threshold.

Low-balance alerts and auto top-up both need "this movement took wallet W below T". Each connecting its own
receiver to `transfer_posted` would cost a query per feature on every movement; instead the ledger statement
itself returns every watch on the transfer's wallets with the balance after it (post_transfer.sql, no extra
round trip), and this module's one receiver sends `balance_crossed` on commit for each watch whose threshold
lies between the balance before and after. A movement that rolls back sends nothing.

"below": before >= threshold > after; "above": before < threshold <= after. `after` is exact for the pockets the
transfer wrote (locked) and the statement's snapshot for the wallet's other pockets; `before` is `after` minus
the transfer's own legs on that wallet. Racers on those other pockets can make a crossing look doubled or
missed, and signals of concurrent movements arrive in any order. Receivers therefore treat the signal as a
hint: their task re-reads the balance under a lock on their own state row and decides (hysteresis,
exactly-once), which converges on the real balance whatever the order or number of signals.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Sum
from django.dispatch import Signal

from wallets.ledger import Leg
from wallets.models import BalanceWatch, CreditType, Pocket, Transfer, Wallet
from wallets.signals import transfer_posted

log = logging.getLogger("credits.watches")

# kwargs: watch_id, purpose, ref_id, wallet_id, credit_type_id, threshold, direction ("below" | "above"),
# balance_before, balance_after, transfer_id, org_id. Sent after the movement committed.
balance_crossed = Signal()


def watch_balance(
    *, wallet: Wallet, threshold: int, purpose: str, ref_id: int, credit_type: CreditType | None = None
) -> BalanceWatch:
    """Create or update the watch of (purpose, ref_id, wallet, credit type)."""
    watch, _ = BalanceWatch.objects.update_or_create(
        purpose=purpose,
        ref_id=ref_id,
        wallet=wallet,
        credit_type=credit_type,
        defaults={"threshold": threshold},
    )
    return watch


def unwatch(*, purpose: str, ref_id: int) -> int:
    """Delete the watches of one feature row; returns how many there were."""
    deleted, _ = BalanceWatch.objects.filter(purpose=purpose, ref_id=ref_id).delete()
    return deleted


def wallet_balance(wallet_id: int, credit_type_id: int | None = None) -> int:
    """A wallet's balance now: the sum of its pockets (of one credit type, or all)."""
    pockets = Pocket.objects.filter(wallet_id=wallet_id, is_external=False)
    if credit_type_id is not None:
        pockets = pockets.filter(credit_type_id=credit_type_id)
    return pockets.aggregate(total=Sum("balance"))["total"] or 0


def crossings(watches: Sequence[tuple], legs: Sequence[Leg]) -> list[dict]:
    """The watches (rows of post_transfer.sql's last column) whose threshold the legs crossed, as signal kwargs."""
    per_wallet: dict[int, int] = defaultdict(int)
    per_type: dict[tuple[int, int], int] = defaultdict(int)
    for lg in legs:
        if not lg.is_external:
            per_wallet[lg.wallet_id] += lg.amount
            per_type[(lg.wallet_id, lg.credit_type_id)] += lg.amount
    crossed = []
    for watch_id, purpose, ref_id, wallet_id, credit_type_id, threshold, after in watches:
        delta = per_wallet[wallet_id] if credit_type_id is None else per_type[(wallet_id, credit_type_id)]
        before = after - delta
        if before >= threshold > after:
            direction = "below"
        elif before < threshold <= after:
            direction = "above"
        else:
            continue
        crossed.append(
            {
                "watch_id": watch_id,
                "purpose": purpose,
                "ref_id": ref_id,
                "wallet_id": wallet_id,
                "credit_type_id": credit_type_id,
                "threshold": threshold,
                "direction": direction,
                "balance_before": before,
                "balance_after": after,
            }
        )
    return crossed


def _send(crossed: list[dict], transfer_id: int, org_id: int | None) -> None:
    for kwargs in crossed:
        try:
            balance_crossed.send(sender=BalanceWatch, transfer_id=transfer_id, org_id=org_id, **kwargs)
        except Exception:
            # The movement has committed: a failing receiver must not turn it into an error page.
            log.exception("balance_crossed receiver failed for watch %s", kwargs["watch_id"])


def _on_transfer_posted(
    sender, transfer: Transfer, kind: str, org_id: int | None, legs: Sequence[Leg], watched: Sequence = (), **kw
) -> None:
    """`watched`: the watches on the transfer's wallets with their balances after it, read by the ledger
    statement itself (wallets/sql/post_transfer.sql), so the check costs no query of its own."""
    crossed = crossings(watched, legs) if watched else []
    if crossed:
        transfer_id = transfer.pk
        transaction.on_commit(lambda: _send(crossed, transfer_id, org_id))


transfer_posted.connect(_on_transfer_posted, dispatch_uid="wallets.watches")
