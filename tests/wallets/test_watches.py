"""Balance watches: the ledger statement itself finds the watches whose threshold the movement crossed (no
query of its own), and balance_crossed is sent after commit, never for a movement that rolled back."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.factories import MembershipFactory, bulk_members
from wallets import ledger
from wallets.models import BalanceWatch, CreditType, Transfer, Wallet
from wallets.services import member_charge_usage, org_bulk_transfer, org_transfer_to_member
from wallets.signals import transfer_posted
from wallets.watches import _on_transfer_posted, balance_crossed, unwatch, wallet_balance, watch_balance

pytestmark = pytest.mark.django_db


@pytest.fixture
def ct():
    return CreditType.objects.get(slug="org-allocated")


@pytest.fixture
def heard():
    got = []

    def receiver(sender, **kwargs):
        got.append(kwargs)

    balance_crossed.connect(receiver, dispatch_uid="test-watches")
    yield got
    balance_crossed.disconnect(dispatch_uid="test-watches")


class CaptureOnCommit:
    def __enter__(self):
        self.start = len(connection.run_on_commit)
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            for _sids, func, _robust in connection.run_on_commit[self.start :]:
                func()
            del connection.run_on_commit[self.start :]
        return False


def _give(org, membership, ct, amount):
    return org_transfer_to_member(org=org, membership_id=membership.pk, credit_type=ct, amount=amount)


def test_crossing_below_is_heard_once_with_the_balances(funded_org, ct, heard):
    member = MembershipFactory(org=funded_org)
    org_wallet = Wallet.objects.for_org(funded_org)
    watch = watch_balance(wallet=org_wallet, threshold=5_000, purpose="alert", ref_id=1)
    with CaptureOnCommit():
        _give(funded_org, member, ct, 4_000)  # 10,000 -> 6,000: still above
    assert heard == []
    with CaptureOnCommit():
        _give(funded_org, member, ct, 2_000)  # 6,000 -> 4,000: crosses
    assert len(heard) == 1
    got = heard[0]
    assert got["watch_id"] == watch.pk
    assert (got["purpose"], got["ref_id"], got["direction"]) == ("alert", 1, "below")
    assert (got["balance_before"], got["balance_after"], got["threshold"]) == (6_000, 4_000, 5_000)
    assert got["org_id"] == funded_org.pk
    with CaptureOnCommit():
        _give(funded_org, member, ct, 1_000)  # already below: no second crossing
    assert len(heard) == 1


def test_crossing_above_and_credit_type_filter(funded_org, ct, heard):
    member = MembershipFactory(org=funded_org)
    member_wallet = Wallet.objects.for_user(member.user)
    promo = CreditType.objects.get(slug="promo")
    watch_balance(wallet=member_wallet, threshold=100, purpose="alert", ref_id=7)  # total
    watch_balance(wallet=member_wallet, threshold=50, purpose="alert", ref_id=8, credit_type=promo)
    with CaptureOnCommit():
        _give(funded_org, member, ct, 150)  # 0 -> 150 Org-allocated: total crosses above 100; promo untouched
    assert [(h["ref_id"], h["direction"]) for h in heard] == [(7, "above")]
    assert wallet_balance(member_wallet.pk) == 150
    assert wallet_balance(member_wallet.pk, promo.pk) == 0


def test_a_rolled_back_movement_sends_nothing(funded_org, ct, heard):
    member = MembershipFactory(org=funded_org)
    watch_balance(wallet=Wallet.objects.for_org(funded_org), threshold=9_999, purpose="alert", ref_id=1)
    with CaptureOnCommit():
        try:
            with transaction.atomic():
                _give(funded_org, member, ct, 10)
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    assert heard == []
    assert wallet_balance(Wallet.objects.for_org(funded_org).pk) == 10_000


def test_the_check_costs_no_query_whatever_the_number_of_wallets(funded_org, ct):
    bulk_members(funded_org, 40)
    org_wallet = Wallet.objects.for_org(funded_org)
    for ref in range(5):
        watch_balance(wallet=org_wallet, threshold=1_000 * ref, purpose="alert", ref_id=ref)

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            org_bulk_transfer(org=funded_org, credit_type=ct, amount_per_member=1)
        return len(ctx.captured_queries)

    queries()  # the first one creates the members' pockets
    with_watch = queries()
    transfer_posted.disconnect(dispatch_uid="wallets.watches")
    try:
        without = queries()
    finally:
        transfer_posted.connect(_on_transfer_posted, dispatch_uid="wallets.watches")
    assert with_watch == without


def test_watch_upsert_and_unwatch(funded_org):
    org_wallet = Wallet.objects.for_org(funded_org)
    watch_balance(wallet=org_wallet, threshold=10, purpose="auto_top_up", ref_id=3)
    watch_balance(wallet=org_wallet, threshold=20, purpose="auto_top_up", ref_id=3)
    assert list(BalanceWatch.objects.values_list("threshold", flat=True)) == [20]
    assert unwatch(purpose="auto_top_up", ref_id=3) == 1
    assert not BalanceWatch.objects.exists()


def _ledger_statements(ctx) -> list[str]:
    """The drawn ledger statements among the captured queries (wallets.ledger.execute_prepared logs them)."""
    return [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("/* prepared */") and "plan AS" in q["sql"]]


def _first_usage(org, ct):
    """The org's first usage charge (another member's), which creates the org's Usage pocket: a statement more."""
    other = MembershipFactory(org=org)
    _give(org, other, ct, 1)
    member_charge_usage(org=org, membership_id=other.pk, amount=1, idempotency_key="first")


def test_a_usage_charge_on_a_watched_member_wallet_is_heard(funded_org, ct, heard):
    """The drawn statement's unwatched form writes nothing for a watched wallet; the watched form charges it and
    returns its watches: the crossing is heard once, one transfer is written, and the next charge of that member
    in this process goes straight to the watched form."""
    _first_usage(funded_org, ct)
    member = MembershipFactory(org=funded_org)
    _give(funded_org, member, ct, 150)
    wallet = Wallet.objects.for_user(member.user)
    watch_balance(wallet=wallet, threshold=100, purpose="alert", ref_id=9)
    wallet.refresh_from_db()
    assert wallet.watched  # the watch's trigger marked it
    ledger._WATCHED_MEMBERSHIPS.discard(member.pk)  # this process has not charged the member yet
    transfers = Transfer.objects.count()
    with CaptureOnCommit(), CaptureQueriesContext(connection) as ctx:
        member_charge_usage(org=funded_org, membership_id=member.pk, amount=60, idempotency_key="w-1")
    statements = _ledger_statements(ctx)
    assert len(statements) == 2  # the unwatched form (nothing written), then the watched one
    assert "wallets_balancewatch" not in statements[0] and "wallets_balancewatch" in statements[1]
    assert Transfer.objects.count() == transfers + 1
    assert [(h["ref_id"], h["direction"], h["balance_before"], h["balance_after"]) for h in heard] == [
        (9, "below", 150, 90)
    ]
    with CaptureOnCommit(), CaptureQueriesContext(connection) as ctx:
        member_charge_usage(org=funded_org, membership_id=member.pk, amount=10, idempotency_key="w-2")
    statements = _ledger_statements(ctx)
    assert len(statements) == 1 and "wallets_balancewatch" in statements[0]
    assert wallet_balance(wallet.pk) == 80
    assert len(heard) == 1  # already below: no second crossing


def test_a_watch_made_after_a_charge_hears_the_next_one(funded_org, ct, heard):
    """An unwatched wallet's charge is one statement without the watch's subplans; a watch made afterwards (the
    process still takes the wallet for unwatched) is not missed: the unwatched form refuses the now-watched wallet."""
    _first_usage(funded_org, ct)
    member = MembershipFactory(org=funded_org)
    _give(funded_org, member, ct, 150)
    ledger._WATCHED_MEMBERSHIPS.discard(member.pk)
    with CaptureOnCommit(), CaptureQueriesContext(connection) as ctx:
        member_charge_usage(org=funded_org, membership_id=member.pk, amount=30, idempotency_key="u-1")
    statements = _ledger_statements(ctx)
    assert len(statements) == 1 and "wallets_balancewatch" not in statements[0]
    assert member.pk not in ledger._WATCHED_MEMBERSHIPS
    # A watch made through the ORM's bulk path (no watch_balance): the trigger marks the wallet all the same.
    BalanceWatch.objects.bulk_create(
        [BalanceWatch(wallet=Wallet.objects.for_user(member.user), threshold=100, purpose="alert", ref_id=11)]
    )
    with CaptureOnCommit():
        member_charge_usage(org=funded_org, membership_id=member.pk, amount=30, idempotency_key="u-2")
    assert [(h["ref_id"], h["balance_before"], h["balance_after"]) for h in heard] == [(11, 120, 90)]
    assert wallet_balance(Wallet.objects.for_user(member.user).pk) == 90
    assert member.pk in ledger._WATCHED_MEMBERSHIPS
