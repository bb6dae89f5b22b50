from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from wallets.models import Wallet
from wallets.selectors import recent_entries, wallet_balance, wallet_pockets


@login_required
@require_GET
def wallet_page(request: HttpRequest) -> HttpResponse:
    """The signed-in user's Default wallet: balance by credit type and by funding org, recent movements."""
    wallet = Wallet.objects.for_user(request.user)
    context = {
        "wallet": wallet,
        "balance": wallet_balance(wallet),
        "pockets": wallet_pockets(wallet),
        "entries": recent_entries(wallet, limit=20),
    }
    return render(request, "wallets/wallet.html", context)
