"""Reads about holds: what is held per member, and a check that the Holds wallet matches the open holds."""

from __future__ import annotations

from django.db import connection
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from holds.models import Hold, HoldStatus


def held_subquery(membership_ref: str = "pk"):
    """Credits held by a membership's open holds, as an annotation (a correlated sum: no extra query)."""
    held = (
        Hold.objects.filter(membership_id=OuterRef(membership_ref), status=HoldStatus.OPEN)
        .order_by()
        .values("membership_id")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    return Coalesce(Subquery(held), 0)


def held_for_user(user_id: int, org_id: int | None = None) -> int:
    """Credits held from this user's wallet by open holds (in one org, or in every org): one query."""
    rows = Hold.objects.filter(membership__user_id=user_id, status=HoldStatus.OPEN)
    if org_id is not None:
        rows = rows.filter(org_id=org_id)
    return rows.aggregate(s=Sum("amount"))["s"] or 0


_HOLDS_VS_LEDGER = """
SELECT o.org_id, o.credit_type_id, o.held, COALESCE(l.balance, 0)
FROM (
    SELECT h.org_id, (part->>0)::bigint AS credit_type_id, SUM((part->>2)::bigint) AS held
    FROM holds_hold h, jsonb_array_elements(h.parts) part
    WHERE h.status = 'open'
    GROUP BY 1, 2
) o
FULL JOIN (
    SELECT p.funding_org_id AS org_id, e.credit_type_id, SUM(e.amount) AS balance
    FROM wallets_entry e
    JOIN wallets_pocket p ON p.id = e.pocket_id
    JOIN wallets_wallet w ON w.id = p.wallet_id AND w.kind = 'external' AND w.code = 'holds'
    GROUP BY 1, 2
) l USING (org_id, credit_type_id)
WHERE COALESCE(o.held, 0) <> COALESCE(l.balance, 0)
"""


def holds_problems() -> list[str]:
    """Each (org, credit type) whose open holds differ from the Holds wallet's balance: [] when they agree."""

    with connection.cursor() as cursor:
        cursor.execute(_HOLDS_VS_LEDGER)
        return [
            f"org {org} credit type {ct}: open holds {held or 0}, Holds wallet {bal}"
            for org, ct, held, bal in cursor.fetchall()
        ]
