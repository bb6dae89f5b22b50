from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from core.replica import read_alias, run_read
from reporting.filters import WALLET_KINDS
from reporting.usage import member_usage
from wallets.expiring import expiry_by_funder
from wallets.models import NEVER, TransferKind, Wallet
from wallets.selectors import wallet_balance, wallet_entries_page, wallet_pockets


def _movements_params(request: HttpRequest) -> tuple[int | None, str, list[str]]:
    """(before, kind, errors) from GET; malformed values are dropped with a message."""
    errors = []
    kind = (request.GET.get("kind") or "").strip()
    if kind and kind not in TransferKind.values:
        errors.append(f"“{kind[:40]}” is not a kind of transaction; showing all transactions.")
        kind = ""
    raw = (request.GET.get("before") or "").strip()
    before = None
    if raw:
        if raw.isascii() and raw.isdigit() and len(raw) < 19:
            before = int(raw)
        else:
            errors.append("That page link is not valid; here are your newest transactions.")
    return before, kind, errors


@login_required
@require_GET
@vary_on_headers("HX-Request")  # the same URL answers a partial to htmx: never cache one for the other
def wallet_page(request: HttpRequest) -> HttpResponse:
    """The signed-in user's Default wallet: balance by credit type and by funding org, and every
    movement, newest first, paginated (htmx swaps the list; plain links work without JS)."""
    wallet = Wallet.objects.for_user(request.user)
    before, kind, errors = _movements_params(request)
    page = wallet_entries_page(wallet, before=before, kind=kind)
    base = {"kind": kind} if kind else {}
    context = {
        "wallet": wallet,
        "page": page,
        "entries": page.entries,
        "movement_errors": errors,
        "kinds": WALLET_KINDS,
        "newest_query": urlencode(base),
        "older_query": urlencode({**base, "before": page.older}) if page.older else "",
        "is_first_page": before is None,
    }
    if request.htmx and request.htmx.target == "movements" and not request.htmx.history_restore_request:
        return render(request, "wallets/_movements.html", context)
    context["balance"] = wallet_balance(wallet)
    context["pockets"] = wallet_pockets(wallet)
    context["expiring"] = expiry_by_funder(context["pockets"])  # from the pockets above: no query
    context["never"] = NEVER
    _usage_context(request, context)
    return render(request, "wallets/wallet.html", context)


def _usage_context(request: HttpRequest, context: dict) -> None:
    """Burn rate and the 7-day usage chart (reporting.usage: one query), for the current workspace's org: what
    that org paid for; in the Personal workspace, what every org paid for. The runway is the credits those
    orgs funded that are left (from the pockets the page already has). On the replica when read_alias allows."""
    org = request.workspace.org
    funded = [p for p in context["pockets"] if p.funding_org_id and (org is None or p.funding_org_id == org.pk)]
    left = sum(p.balance for p in funded)
    user_id, org_id = request.user.pk, org.pk if org else None
    usage = run_read(read_alias(request), lambda using: member_usage(user_id, org_id, left, using=using))
    context["usage_org"] = org
    context["burn"] = usage.burn
    context["usage_chart"] = usage.chart
    context["runway_of"] = f"credits from {org.name}" if org else "credits from your organizations"
