"""Property: any sequence of movements, valid or not, keeps the ledger's invariants."""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgs.services import membership_add, org_create, user_create
from wallets.errors import WalletError
from wallets.models import CreditType, Pocket, Wallet
from wallets.selectors import ledger_problems
from wallets.services import org_credit_from_stripe, org_grant_promo, org_transfer_to_member

amounts = st.one_of(st.integers(min_value=-5, max_value=3_000), st.sampled_from([0, 10**15, 10**15 + 1]))
_run = itertools.count()

moves = st.lists(
    st.tuples(
        st.sampled_from(["buy", "promo", "give"]),
        st.integers(0, 2),
        amounts,
        st.sampled_from(["org-allocated", "promo"]),
    ),
    max_size=25,
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=moves)
def test_random_movements_keep_the_books_balanced(moves):
    run = next(_run)
    owner = user_create(email=f"o{run}@example.com", password=None)
    org = org_create(name="Prop Org", owner=owner)
    members = [
        membership_add(org=org, user=user_create(email=f"m{i}-{run}@example.com", password=None)) for i in range(3)
    ]
    types = {ct.slug: ct for ct in CreditType.objects.all()}
    for op, who, amount, ct_slug in moves:
        try:
            if op == "buy":
                org_credit_from_stripe(org=org, amount=amount)
            elif op == "promo":
                org_grant_promo(org=org, amount=amount)
            else:
                org_transfer_to_member(
                    org=org, membership_id=members[who].pk, credit_type=types[ct_slug], amount=amount
                )
        except WalletError:
            pass
    assert ledger_problems() == []
    assert not Pocket.objects.filter(balance__lt=0, is_external=False).exists()
    org_wallet = Wallet.objects.for_org(org)
    assert all(p.balance >= 0 for p in Pocket.objects.filter(wallet=org_wallet))
