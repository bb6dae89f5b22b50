"""Which credits a movement sends: expiry travels with the credits (issue 19, docs/expiry.md).

A wallet holds one pocket per (credit type, funding org, expiry day). A caller describes a movement as it
always has, with legs whose expiry day is NEVER (`Leg`'s default); `post_drawn` turns each debit of an
internal wallet into debits of that wallet's pockets of the same credit type and funding org, the
soonest-expiring first (or the latest first, when the admin picks it), and gives each internal credit leg
the same expiry days in the same order: credits an org hands a member keep their date, and come back with
it on a Return. External legs (Stripe, Usage, Holds, Expired...) keep NEVER: external pockets never expire.

The plan is read without locks, then `post_transfer` locks every pocket in its one order and checks the
balances itself. If a racer drained a planned pocket in between, the ledger refuses the plan
(InsufficientCredits, nothing written, the caller's transaction still usable) and the plan is made again
from the new balances; only a plan that cannot be made at all is the caller's "not enough credits".

The fingerprint of a drawn transfer is that of the legs as the caller described them, not of the split:
a replayed request must match the first one whatever the balances are by then.
"""

from __future__ import annotations

import datetime
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence

from django.db import connection
from django.utils import timezone

from wallets.errors import InsufficientCredits
from wallets.ledger import Leg, _merge_legs, _previous_transfer, _replay, fingerprint_of, post_transfer
from wallets.models import NEVER, CreditType
from wallets.results import Posted

SOONEST = "soonest"
LATEST = "latest"
ORDERS = {SOONEST: "Soonest-expiring credits first", LATEST: "Latest-expiring credits first"}

_POCKETS = """
SELECT p.wallet_id, p.credit_type_id, p.funding_org_id, p.expires_on, p.balance
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS k(wallet_id, credit_type_id, funding_org_id)
JOIN wallets_pocket p ON p.wallet_id = k.wallet_id AND p.credit_type_id = k.credit_type_id
                     AND p.funding_org_id IS NOT DISTINCT FROM k.funding_org_id
WHERE p.balance > 0 AND NOT p.is_external AND p.expires_on > %s::date
"""


def pocket_balances(keys: Iterable[tuple[int, int, int | None]]) -> dict[tuple, list[tuple[datetime.date, int]]]:
    """{(wallet, credit type, funding org): [(expiry day, balance), ...]} for the non-empty pockets whose credits
    can still be spent: a pocket expires ON its day (the daily run moves it to Expired that day), so from that
    day on it is never planned, even before the run has swept it. One query."""
    keys = list(dict.fromkeys(keys))
    out: dict[tuple, list[tuple[datetime.date, int]]] = defaultdict(list)
    if not keys:
        return out
    with connection.cursor() as cur:
        cur.execute(_POCKETS, [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], timezone.localdate()])
        for wallet_id, ct_id, fo_id, expires_on, balance in cur.fetchall():
            out[(wallet_id, ct_id, fo_id)].append((expires_on, balance))
    return out


def split_by_expiry(legs: Sequence[Leg], order: str = SOONEST) -> list[Leg]:
    """The legs with every internal debit split over its pockets' expiry days (in `order`) and every internal
    credit without a day of its own given the days its credits come from. Raises InsufficientCredits when a
    debit is larger than its pockets hold."""
    if order not in ORDERS:
        raise ValueError(f"unknown expiry order {order!r}")
    debits = [lg for lg in legs if lg.amount < 0 and not lg.is_external]
    balances = pocket_balances((lg.wallet_id, lg.credit_type_id, lg.funding_org_id) for lg in debits)
    used: dict[tuple, int] = defaultdict(int)  # (wallet, ct, fo, day) already planned by an earlier debit
    out: list[Leg] = []
    pieces: dict[int, deque[list]] = defaultdict(deque)  # credit type -> [day, amount left] in draw order
    for lg in legs:
        if lg.amount > 0 or lg.is_external:
            continue
        key = (lg.wallet_id, lg.credit_type_id, lg.funding_org_id)
        days = sorted(balances.get(key, ()), reverse=(order == LATEST))
        left = -lg.amount
        if lg.expires_on != NEVER:  # the caller named the pocket: no choice to make
            days = [(d, b) for d, b in days if d == lg.expires_on]
        available = sum(b - used[(*key, d)] for d, b in days)
        if available < left:
            raise InsufficientCredits(
                available=available, requested=left, credit_type_name=_credit_type_name(lg.credit_type_id)
            )
        for day, balance in days:
            take = min(left, balance - used[(*key, day)])
            if take <= 0:
                continue
            used[(*key, day)] += take
            out.append(Leg(lg.wallet_id, lg.credit_type_id, -take, lg.funding_org_id, False, day))
            pieces[lg.credit_type_id].append([day, take])
            left -= take
            if not left:
                break
    for lg in legs:
        if lg.amount < 0 and not lg.is_external:
            continue
        if lg.is_external or lg.expires_on != NEVER:
            out.append(lg)
            continue
        queue, left = pieces[lg.credit_type_id], lg.amount
        while left and queue:
            day, amount = queue[0]
            take = min(left, amount)
            out.append(Leg(lg.wallet_id, lg.credit_type_id, take, lg.funding_org_id, False, day))
            left -= take
            if take == amount:
                queue.popleft()
            else:
                queue[0][1] = amount - take
        if left:  # credits from an external account (a purchase, a grant): they carry no day
            out.append(Leg(lg.wallet_id, lg.credit_type_id, left, lg.funding_org_id, False, NEVER))
    return out


def _credit_type_name(credit_type_id: int) -> str:
    return CreditType.objects.filter(pk=credit_type_id).values_list("name", flat=True).first() or ""


def post_drawn(*, kind: str, legs: Iterable[Leg], order: str = SOONEST, org=None, memo: str = "", **kwargs) -> Posted:
    """`post_transfer` of the legs split by expiry (see the module docstring). Same keyword arguments."""
    legs = list(legs)
    memo_clean = (memo or "").strip()[:500]
    kwargs.setdefault("fingerprint", fingerprint_of(kind, _merge_legs(legs), memo_clean, getattr(org, "pk", None)))
    key = kwargs.get("idempotency_key")
    for attempt in (1, 2, 3):
        try:
            split = split_by_expiry(legs, order)
        except InsufficientCredits:
            # The same request may have been made before (a double-click): its credits are why there are
            # none left to plan with. A used key replays; the ledger would have said so after its locks.
            if key and (previous := _previous_transfer(getattr(org, "pk", None), key)) is not None:
                return _replay(previous, kwargs["fingerprint"])
            raise
        try:
            return post_transfer(kind=kind, legs=split, org=org, memo=memo, **kwargs)
        except InsufficientCredits:
            if attempt == 3:
                raise
            # A racer spent a planned pocket between the plan and the locks: plan again from what is there now.
    raise AssertionError("unreachable")
