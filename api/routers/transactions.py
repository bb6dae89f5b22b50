"""GET /transactions: the org's transfers, newest first, with the Transactions page's filters
(reporting.filters) and keyset order (reporting.queries)."""

from __future__ import annotations

from ninja import Query, Router

from api.errors import ApiProblem
from api.schemas import READ_ERRORS, Problem, TransactionFilters, TransactionPage, only_known_params
from api.selectors import BadCursor, decode_cursor, encode_cursor, org_member
from apikeys.models import ApiKey
from reporting.filters import TransactionFilter, member_wallet_id
from reporting.queries import filter_transfers, keyset
from wallets.models import CreditType, Wallet

router = Router(tags=["transactions"])


@router.get(
    "/transactions",
    response={200: TransactionPage, 404: Problem, **READ_ERRORS},
    summary="List transactions",
)
def transaction_list(request, filters: Query[TransactionFilters]):
    """The org's transfers, newest first, paginated by an opaque keyset cursor: the Transactions page's
    filters and keyset order (reporting.filters, reporting.queries), so new transfers never shift a page."""
    only_known_params(request, TransactionFilters)
    key: ApiKey = request.auth
    wallet_ids = set()
    if filters.member_id is not None:
        wallet_ids.add(Wallet.objects.for_user(org_member(key, filters.member_id).user).pk)
    if filters.member:
        wallet_id = member_wallet_id(key.org, filters.member)
        if wallet_id is None:
            raise ApiProblem(404, "member_not_found", "No such member in this organization.", member=filters.member)
        wallet_ids.add(wallet_id)
    credit_type = None
    if filters.credit_type:
        credit_type = CreditType.objects.filter(slug=filters.credit_type).first()
        if credit_type is None:
            raise ApiProblem(404, "unknown_credit_type", f"No credit type “{filters.credit_type}”.")
    at = None
    if filters.cursor:
        try:
            at = decode_cursor(filters.cursor)
        except BadCursor as exc:
            raise ApiProblem(422, "invalid_cursor", str(exc)) from exc
    if len(wallet_ids) > 1:  # member and member_id name two different people: no transfer is both's
        return {"items": [], "next_cursor": None}
    filt = TransactionFilter(
        date_from=filters.date_from,
        date_to=filters.date_to,
        kinds=tuple(dict.fromkeys(filters.kind or ())),
        member_wallet_id=next(iter(wallet_ids), None),
        credit_type=credit_type,
        amount_min=filters.amount_min,
        amount_max=filters.amount_max,
    )
    qs = filter_transfers(key.org, filt)
    if filters.since is not None:
        qs = qs.filter(created_at__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(created_at__lt=filters.until)
    rows = list(keyset(qs, "older", at).select_related("actor", "usage_charge")[: filters.limit + 1])
    last = rows[filters.limit - 1] if len(rows) > filters.limit else None  # more rows follow this one
    next_cursor = encode_cursor(last.created_at, last.pk) if last else None
    items = []
    for t in rows[: filters.limit]:
        usage = getattr(t, "usage_charge", None)
        items.append(
            {
                "id": t.pk,
                "kind": t.kind,
                "amount": t.amount,
                "memo": t.memo,
                "actor": t.actor.email if t.actor_id else None,
                "created_at": t.created_at,
                "usage": (
                    {"member_id": usage.membership_id, "description": usage.description, "metadata": usage.metadata}
                    if usage
                    else None
                ),
            }
        )
    return {"items": items, "next_cursor": next_cursor}
