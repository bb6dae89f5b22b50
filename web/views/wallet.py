from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from reporting.filters import WALLET_KINDS
from wallets.models import TransferKind, Wallet
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
    return render(request, "wallets/wallet.html", context)
