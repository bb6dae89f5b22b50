"""POST /api/v1/transfers `order`: which expiring credits leave the org wallet first (issue 19)."""

import datetime

import pytest
from django.utils import timezone

from tests.api.helpers import Api, issue_key
from tests.factories import MembershipFactory, ledger_snapshot
from wallets.models import Pocket, Wallet
from wallets.selectors import ledger_problems
from wallets.services import org_grant_promo

pytestmark = pytest.mark.django_db


def _days(n):
    return timezone.localdate() + datetime.timedelta(days=n)


@pytest.fixture
def expiring(funded_org):
    org_grant_promo(org=funded_org, amount=100, expires_on=_days(10))
    org_grant_promo(org=funded_org, amount=100, expires_on=_days(50))
    return funded_org


def _member_days(membership):
    pockets = Pocket.objects.filter(wallet=Wallet.objects.for_user(membership.user), balance__gt=0)
    return sorted(pockets.values_list("expires_on", "balance"))


def test_order_latest_and_the_soonest_default(expiring, owner):
    api = Api(issue_key(expiring, "transfer", created_by=owner)[1])
    first, second, third = (MembershipFactory(org=expiring) for _ in range(3))
    body = {"members": [first.pk], "amount": 30, "credit_type": "promo", "order": "latest"}
    assert api.post("/transfers", body, key="o1").status_code == 201
    assert _member_days(first) == [(_days(50), 30)]
    assert api.post("/transfers", {**body, "members": [second.pk], "order": "soonest"}, key="o2").status_code == 201
    assert _member_days(second) == [(_days(10), 30)]
    del body["order"]
    many = api.post("/transfers", {**body, "members": [third.pk, first.pk]}, key="o3")
    assert many.status_code == 201
    assert _member_days(third) == [(_days(10), 30)] and _member_days(first) == [(_days(10), 30), (_days(50), 30)]
    assert ledger_problems() == []


def test_unknown_order_is_refused_and_nothing_moves(expiring, owner):
    api = Api(issue_key(expiring, "transfer", created_by=owner)[1])
    member = MembershipFactory(org=expiring)
    before = ledger_snapshot()
    body = {"members": [member.pk], "amount": 30, "credit_type": "promo", "order": "random"}
    response = api.post("/transfers", body, key="bad")
    assert response.status_code == 422 and response.json()["code"] == "validation_error"
    assert ledger_snapshot() == before
