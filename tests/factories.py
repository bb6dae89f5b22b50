"""Factories that go through the domain services, so every object is made the way the app makes it.

Factories never set balances: `fund` posts a real ledger transfer, so verify_ledger holds in every test.
"""

import itertools

import factory

from orgs.models import Membership, Organization, Role, User
from orgs.services import membership_add, org_create, user_create
from wallets.models import CreditType
from wallets.services import org_credit_from_stripe, org_grant_promo

_seq = itertools.count(1)


class UserFactory(factory.Factory):
    class Meta:
        model = User

    email = factory.LazyFunction(lambda: f"user{next(_seq)}@example.com")
    password = "pw-correct-horse-battery"
    name = ""

    @classmethod
    def _create(cls, model_class, email, password, name, **kwargs):
        return user_create(email=email, password=password, name=name, **kwargs)


class OrgFactory(factory.Factory):
    class Meta:
        model = Organization

    name = factory.LazyFunction(lambda: f"Org {next(_seq)}")
    owner = factory.SubFactory(UserFactory)

    @classmethod
    def _create(cls, model_class, name, owner):
        return org_create(name=name, owner=owner)


class MembershipFactory(factory.Factory):
    class Meta:
        model = Membership

    org = factory.SubFactory(OrgFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER

    @classmethod
    def _create(cls, model_class, org, user, role):
        return membership_add(org=org, user=user, role=role)


def fund(org, amount: int, credit_type: str = "org-allocated"):
    """Put credits in the org wallet through the ledger (a purchase, or a promo grant for Promo)."""
    if credit_type == "promo":
        return org_grant_promo(org=org, amount=amount, memo="test funding").transfer
    ct = CreditType.objects.get(slug=credit_type)
    assert ct.slug == "org-allocated"
    return org_credit_from_stripe(org=org, amount=amount, memo="test funding").transfer


def ledger_snapshot():
    """Everything a movement could change; compare before and after to prove nothing moved."""
    from wallets.models import Entry, Pocket, Transfer

    return (
        Transfer.objects.count(),
        Entry.objects.count(),
        sorted(Pocket.objects.values_list("pk", "balance")),
    )


def bulk_members(org, n: int, role: str = Role.MEMBER, prefix: str = "bulk") -> list[Membership]:
    """Many members at once (set-based), for query-count and benchmark tests."""
    from django.utils import timezone

    from wallets.models import Wallet, WalletKind

    now = timezone.now()
    run = next(_seq)
    users = User.objects.bulk_create(
        [User(email=f"{prefix}{run}-{i}@example.com", password="!", date_joined=now) for i in range(n)]
    )
    if not all(u.pk for u in users):  # SQLite before RETURNING support would not set pks
        users = list(User.objects.filter(email__startswith=f"{prefix}{run}-"))
    Wallet.objects.bulk_create([Wallet(kind=WalletKind.USER, user=u, name="Default wallet") for u in users])
    return Membership.objects.bulk_create([Membership(org=org, user=u, role=role) for u in users])
