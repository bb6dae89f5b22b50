"""Reads for the API. Never write."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from api.errors import ApiProblem
from apikeys.models import ApiKey
from orgs.models import Membership, Organization
from wallets.models import CreditType, Pocket, Wallet


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


def member_org_balance(*, org: Organization, membership: Membership) -> dict[str, int]:
    """What the member holds from this org, by credit type slug (what usage in this org can spend).
    The member's personal credits and other orgs' credits are not this org's business."""
    wallet = Wallet.objects.for_user(membership.user)
    rows = dict(Pocket.objects.filter(wallet=wallet, funding_org=org).values_list("credit_type__slug", "balance"))
    return {ct.slug: int(rows.get(ct.slug, 0)) for ct in CreditType.objects.all()}


def org_member(key: ApiKey, member_id: int) -> Membership:
    """A membership of the key's org (with its user), or 404: another org's members do not exist for this key."""
    membership = Membership.objects.select_related("user").filter(org_id=key.org_id, pk=member_id).first()
    if membership is None:
        raise ApiProblem(404, "member_not_found", "No such member in this organization.", member_id=member_id)
    return membership
