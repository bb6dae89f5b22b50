"""GET /balance (the org wallet) and GET /members/{member_id}/balance (what a member holds from the org)."""

from __future__ import annotations

from ninja import Router

from api.schemas import READ_ERRORS, MemberBalanceOut, OrgBalanceOut, PathId, Problem
from api.selectors import member_org_balance, org_member
from apikeys.models import ApiKey
from wallets.models import CreditType, Wallet
from wallets.selectors import wallet_balance

router = Router(tags=["balances"])


@router.get("/balance", response={200: OrgBalanceOut, **READ_ERRORS}, summary="Org balance")
def org_balance(request):
    """The org wallet's balance, total and by credit type."""
    key: ApiKey = request.auth
    balance = wallet_balance(Wallet.objects.for_org(key.org))
    return {
        "org": key.org.slug,
        "total": balance.total,
        "by_credit_type": [
            {"credit_type": b.credit_type.slug, "name": b.credit_type.name, "balance": b.balance}
            for b in balance.by_type
        ],
    }


@router.get(
    "/members/{member_id}/balance",
    response={200: MemberBalanceOut, 404: Problem, **READ_ERRORS},
    summary="Member balance",
)
def member_balance(request, member_id: PathId):
    """What the member holds from this org, by credit type: what usage charged by this org can spend."""
    key: ApiKey = request.auth
    membership = org_member(key, member_id)
    by_slug = member_org_balance(org=key.org, membership=membership)
    return {"member_id": membership.pk, "total": sum(by_slug.values()), "by_credit_type": _balance_rows(by_slug)}


def _balance_rows(by_slug: dict[str, int]) -> list[dict]:
    names = dict(CreditType.objects.values_list("slug", "name"))
    return [{"credit_type": slug, "name": names.get(slug, slug), "balance": bal} for slug, bal in by_slug.items()]
