"""What the money verbs return: typed results instead of attributes stuck onto model instances."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from wallets.models import Transfer


@dataclass(frozen=True, slots=True)
class Posted:
    """A transfer the ledger holds for the request."""

    transfer: Transfer
    # The idempotency key was used before with the same request: nothing moved this time.
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class UsageCharged(Posted):
    # (credit type slug, credits) in draw order; empty on a replay (the first answer is stored by the API).
    drawn: tuple[tuple[str, int], ...] = ()
    # {credit type slug: this org's credits left with the member after the charge}, for each credit type of the
    # member's spendable pockets funded by the org (in draw order); empty on a replay. (The API's answer lists every
    # credit type, 0 when none: api/sql/idempotency_answer_row.sql reads the credit types itself.)
    member_balance: dict[str, int] = field(default_factory=dict)
    # Each pocket drawn, in draw order: (credit type id, slug, credits, expiry day); empty on a replay.
    taken: tuple[tuple[int, str, int, datetime.date], ...] = ()
    # The member's wallet the credits came from; None on a replay.
    wallet_id: int | None = None
    # What the caller's `Then` write returned (its row as a dict); None without one, or on a replay.
    written: dict | None = None


@dataclass(frozen=True, slots=True)
class Settled:
    """A settlement (wallets.ledger.post_settle): the release and the charge, written by one statement."""

    release: Transfer
    charge: Transfer
    # What the caller's `Then` write returned (its domain row as a dict).
    written: dict
