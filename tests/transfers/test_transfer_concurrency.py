"""Exactly once, over real HTTP: concurrent POSTs of the Transfer form to the live server on PostgreSQL."""

import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.concurrency import race_all
from tests.factories import MembershipFactory, bulk_members, fund
from wallets.models import Entry, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CSRF = "c" * 32  # any well-formed token works when the cookie and the form field carry the same one


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}; csrftoken={CSRF}"


def _post(url: str, cookie: str, data: dict) -> tuple[int, str]:
    body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": CSRF}, doseq=True).encode()
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        url, data=body, headers={"Cookie": cookie, "HX-Request": "true", "HX-Target": "transfer-dialog"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_twenty_concurrent_posts_of_one_form_make_one_transfer(live_server, org, owner):
    fund(org, 1_000)
    member = MembershipFactory(org=org)
    cookie = _session_cookie(owner)
    url = live_server.url + reverse("billing:transfer_submit", args=[org.slug])
    form = {
        "mode": "one",
        "recipient": member.pk,
        "credit_type": "org-allocated",
        "amount": "300",
        "message": "double-click",
        "idempotency_key": str(uuid.uuid4()),
    }
    results = race_all([lambda: _post(url, cookie, form)] * 20)
    assert all(status == 200 for status, _ in results), results
    assert all("Transferred 300 Org-allocated credits" in html for _, html in results)
    assert Transfer.objects.filter(kind=TransferKind.TRANSFER).count() == 1
    assert wallet_balance(Wallet.objects.for_user(member.user)).total == 300
    assert wallet_balance(Wallet.objects.for_org(org)).total == 700
    assert ledger_problems() == []


def test_two_admins_bulk_transfers_that_together_overdraw_one_is_blocked(live_server, org, owner):
    fund(org, 1_000)
    admin = MembershipFactory(org=org, role="admin")
    bulk_members(org, 8)  # 10 members with the owner and the admin
    url = live_server.url + reverse("billing:transfer_submit", args=[org.slug])

    def form():
        return {"mode": "all", "credit_type": "org-allocated", "amount": "60", "idempotency_key": str(uuid.uuid4())}

    owner_cookie, admin_cookie = _session_cookie(owner), _session_cookie(admin.user)
    results = race_all([lambda: _post(url, owner_cookie, form()), lambda: _post(url, admin_cookie, form())])
    assert all(status == 200 for status, _ in results), results
    succeeded = [html for _, html in results if "to 10 members, 60 credits ($0.60) each." in html]
    blocked = [html for _, html in results if "200 missing" in html]
    assert len(succeeded) == 1 and len(blocked) == 1
    assert Transfer.objects.filter(kind=TransferKind.BULK_TRANSFER).count() == 1
    assert wallet_balance(Wallet.objects.for_org(org)).total == 400
    assert Entry.objects.filter(transfer__kind=TransferKind.BULK_TRANSFER, amount=60).count() == 10
    assert ledger_problems() == []


def test_without_the_form_token_the_live_server_refuses(live_server, org, owner):
    fund(org, 1_000)
    member = MembershipFactory(org=org)
    url = live_server.url + reverse("billing:transfer_submit", args=[org.slug])
    cookie = _session_cookie(owner).replace(f"csrftoken={CSRF}", "csrftoken=" + "d" * 32)
    status, _ = _post(
        url,
        cookie,
        {
            "mode": "one",
            "recipient": member.pk,
            "credit_type": "org-allocated",
            "amount": "5",
            "idempotency_key": str(uuid.uuid4()),
        },
    )
    assert status == 403
    assert wallet_balance(Wallet.objects.for_org(org)).total == 1_000
