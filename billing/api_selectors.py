"""Reads for the API. Never write."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Exists, OuterRef, Q

from orgs.models import Membership, Organization
from wallets.models import CreditType, Entry, Pocket, Transfer, Wallet


class BadCursor(ValueError):
    pass


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
# "<microseconds since 1970>_<id>": every string the pattern allows decodes, so the OpenAPI schema says
# exactly which cursors are valid. Clients treat it as opaque.
CURSOR_PATTERN = r"^[0-9]{1,17}_[0-9]{1,18}$"


def encode_cursor(created_at: datetime, pk: int) -> str:
    return f"{(created_at - EPOCH) // ONE_MICROSECOND}_{pk}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise BadCursor("This cursor is not valid; use next_cursor from a previous page.")
    micros, _, pk = cursor.partition("_")
    return EPOCH + int(micros) * ONE_MICROSECOND, int(pk)


@dataclass
class TransferPage:
    items: list[Transfer]
    next_cursor: str | None


def org_transfers_page(
    *,
    org: Organization,
    kind: str | None = None,
    member_wallet_id: int | None = None,
    credit_type: CreditType | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> TransferPage:
    """The org's transfers, newest first, keyset-paginated by (created_at, id): one query per page,
    whatever the depth. Filters: kind, a member (transfers touching their Default wallet), a credit type,
    and a [since, until) date range."""
    qs = Transfer.objects.filter(org=org)
    if kind:
        qs = qs.filter(kind=kind)
    if member_wallet_id is not None:
        qs = qs.filter(Exists(Entry.objects.filter(transfer=OuterRef("pk"), wallet_id=member_wallet_id)))
    if credit_type is not None:
        qs = qs.filter(Exists(Entry.objects.filter(transfer=OuterRef("pk"), credit_type=credit_type)))
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    if cursor:
        when, pk = decode_cursor(cursor)
        qs = qs.filter(Q(created_at__lt=when) | Q(created_at=when, pk__lt=pk))
    rows = list(qs.select_related("actor", "usage_charge").order_by("-created_at", "-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return TransferPage(rows, encode_cursor(rows[-1].created_at, rows[-1].pk) if more and rows else None)


def member_org_balance(*, org: Organization, membership: Membership) -> dict[str, int]:
    """What the member holds from this org, by credit type slug (what usage in this org can spend).
    The member's personal credits and other orgs' credits are not this org's business."""
    wallet = Wallet.objects.for_user(membership.user)
    rows = dict(Pocket.objects.filter(wallet=wallet, funding_org=org).values_list("credit_type__slug", "balance"))
    return {ct.slug: int(rows.get(ct.slug, 0)) for ct in CreditType.objects.all()}
