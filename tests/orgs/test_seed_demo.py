"""`manage.py seed_demo`: the README's demo org, logins and figures, and a second run that changes nothing."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from orgs.models import Membership, Organization, User
from tests.factories import ledger_snapshot
from wallets.models import Entry, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, wallet_balance

pytestmark = pytest.mark.django_db

# README "Demo logins": password `demo` for all of them.
ROLES = {
    "admin@example.com": "owner",
    "alice@example.com": "admin",
    "bob@example.com": "manager",
    "carol@example.com": "member",
    "dave@example.com": "member",
    "erin@example.com": "member",
}


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def _people():
    """Users and memberships, everything a re-run could duplicate or alter."""
    users = sorted(User.objects.values_list("email", "name", "is_staff", "is_superuser", "is_active", "password"))
    memberships = sorted(
        Membership.objects.values_list("org__name", "user__email", "role", "status", "has_seat", "joined_at")
    )
    orgs = sorted(Organization.objects.values_list("name", "slug", "seats"))
    return users, memberships, orgs


def _by_type(wallet) -> dict[str, int]:
    return {b.credit_type.slug: b.balance for b in wallet_balance(wallet).by_type}


def test_seed_twice_leaves_exactly_the_same_ledger_and_people():
    _seed()
    ledger, people = ledger_snapshot(), _people()
    transfers = sorted(Transfer.objects.values_list("pk", "kind", "org_id", "amount", "idempotency_key", "created_at"))
    _seed()
    assert ledger_snapshot() == ledger
    assert _people() == people
    assert (
        sorted(Transfer.objects.values_list("pk", "kind", "org_id", "amount", "idempotency_key", "created_at"))
        == transfers
    )
    assert ledger_problems() == []


def test_seed_creates_the_readme_logins_and_roles():
    output = _seed()
    org = Organization.objects.get(name="Quantum Lab")
    roles = dict(Membership.objects.filter(org=org, status="active").values_list("user__email", "role"))
    assert roles == ROLES
    for email in ROLES:
        user = User.objects.get(email=email)
        assert user.check_password("demo"), email
        assert email in output
        assert Wallet.objects.for_user(user).name == "Default wallet"
    owner = User.objects.get(email="admin@example.com")
    assert owner.is_staff and owner.is_superuser  # "Owner (and Django staff)"
    assert not User.objects.filter(email__in=list(ROLES)[1:], is_staff=True).exists()


def test_seed_produces_the_readme_balances_through_the_ledger():
    _seed()
    org = Organization.objects.get(name="Quantum Lab")
    assert _by_type(Wallet.objects.for_org(org)) == {"org-allocated": 50_000, "promo": 5_000}
    # The "few past movements": two purchases, a promo grant, and transfers to members in both credit types.
    kinds = sorted(Transfer.objects.filter(org=org).values_list("kind", flat=True))
    assert kinds == sorted([TransferKind.PURCHASE] * 2 + [TransferKind.PROMO_GRANT] + [TransferKind.TRANSFER] * 3)
    given = {
        email: _by_type(Wallet.objects.for_user(User.objects.get(email=email)))
        for email in ("alice@example.com", "carol@example.com", "dave@example.com", "erin@example.com")
    }
    assert given == {
        "alice@example.com": {"org-allocated": 1_500, "promo": 0},
        "carol@example.com": {"org-allocated": 1_000, "promo": 0},
        "dave@example.com": {"org-allocated": 0, "promo": 1_000},
        "erin@example.com": {"org-allocated": 0, "promo": 0},
    }
    # Every credit came in from the outside (Stripe, Promotions) through balanced transfers.
    assert Entry.objects.filter(transfer__org=org, wallet__kind="external").count() == 3
    assert ledger_problems() == []


def test_balance_card_shows_the_readme_figures():
    """README: sign in as admin@example.com, Quantum Lab, Billing: 55,000 credits (50,000 Org-allocated, 5,000 Promo)."""
    _seed()
    org = Organization.objects.get(name="Quantum Lab")
    client = Client()
    client.force_login(User.objects.get(email="admin@example.com"))
    html = client.get(reverse("billing:page", args=[org.slug])).content.decode()
    card = re.search(r'<section id="balance-card".*?</section>', html, re.S).group(0)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", card))
    assert re.search(r'data-testid="org-balance-total">55,000<', card)
    assert "Org-allocated 50,000" in text
    assert "Promo 5,000" in text
