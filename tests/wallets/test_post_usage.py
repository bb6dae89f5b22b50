"""The ledger's drawn form (wallets.ledger.post_usage, sql/post_usage.sql): a usage charge or a hold in ONE statement
that locks the membership and the member's pockets, plans the draw and writes the transfer."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.api.helpers import give
from tests.concurrency import race, split
from tests.expiry.helpers import grant
from tests.factories import MembershipFactory, fund, ledger_snapshot
from wallets.errors import IdempotencyConflict, InsufficientCredits, MemberNotActive
from wallets.ledger import Then, post_usage
from wallets.models import NEVER, CreditType, Entry, ExternalCode, Pocket, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems
from wallets.services import member_charge_usage, org_transfer_to_member

pytestmark = pytest.mark.postgres


def _pockets(member) -> dict:
    """{(credit type slug, expiry day): balance} of the member's pockets funded by the org, empty ones included."""
    wallet = Wallet.objects.for_user(member.user)
    return {
        (p.credit_type.slug, p.expires_on): p.balance
        for p in Pocket.objects.filter(wallet=wallet, funding_org=member.org).select_related("credit_type")
    }


@pytest.fixture
def member(org):
    """30 credits from the org: 10 Promo expiring in 5 days, 10 Promo that never expire, 10 Org-allocated."""
    fund(org, 100)
    grant(org, 10, days=5)
    fund(org, 10, "promo")
    member = MembershipFactory(org=org)
    give(org, member, 10, "promo")  # the soonest-expiring Promo first
    give(org, member, 10, "promo")
    give(org, member, 10)
    return member


@pytest.mark.django_db
def test_a_charge_is_one_statement_in_draw_order_and_writes_the_entries_post_transfer_would(org, member):
    soon = next(day for (slug, day) in _pockets(member) if day != NEVER)
    member_charge_usage(org=org, membership_id=member.pk, amount=1, idempotency_key="warm")  # Usage pocket made
    with CaptureQueriesContext(connection) as ctx:
        charged = member_charge_usage(org=org, membership_id=member.pk, amount=15, idempotency_key="c-1")
    assert len(ctx.captured_queries) == 1, [q["sql"][:60] for q in ctx.captured_queries]  # no BEGIN, no COMMIT
    # Earliest expiry first (9 left of the expiring Promo), then Promo before Org-allocated.
    assert charged.drawn == (("promo", 15),)
    assert [(slug, credits, day) for _ct, slug, credits, day in charged.taken] == [
        ("promo", 9, soon),
        ("promo", 6, NEVER),
    ]
    assert charged.member_balance == {"org-allocated": 10, "promo": 4}
    assert _pockets(member) == {("promo", soon): 0, ("promo", NEVER): 4, ("org-allocated", NEVER): 10}
    entries = Entry.objects.filter(transfer=charged.transfer).order_by("amount")
    usage = Wallet.objects.external(ExternalCode.USAGE)
    assert [(e.wallet_id, e.amount, e.balance_after) for e in entries] == [
        (charged.wallet_id, -9, 0),
        (charged.wallet_id, -6, 4),
        (usage.pk, 15, None),
    ]
    assert all(e.org_id == org.pk for e in entries)
    stored = Transfer.objects.get(pk=charged.transfer.pk)
    assert stored.kind == TransferKind.USAGE
    # The returned transfer is the row as stored, field for field, and known to be saved.
    fields = [f.attname for f in Transfer._meta.concrete_fields]
    assert [getattr(charged.transfer, f) for f in fields] == [getattr(stored, f) for f in fields]
    assert not charged.transfer._state.adding
    assert ledger_problems() == []


@pytest.mark.django_db
def test_the_orgs_first_charge_creates_its_usage_pockets(org, member):
    usage = Wallet.objects.external(ExternalCode.USAGE)
    assert not Pocket.objects.filter(wallet=usage, funding_org=org).exists()
    charged = member_charge_usage(org=org, membership_id=member.pk, amount=25)  # both credit types
    assert set(Pocket.objects.filter(wallet=usage, funding_org=org).values_list("credit_type__slug", flat=True)) == {
        "promo",
        "org-allocated",
    }
    assert charged.drawn == (("promo", 20), ("org-allocated", 5))
    assert ledger_problems() == []


@pytest.mark.django_db
def test_refusals_write_nothing_and_leave_the_callers_transaction_usable(org, member):
    other = MembershipFactory(org=org)  # no credits
    member_charge_usage(org=org, membership_id=member.pk, amount=1, idempotency_key="k")
    before = ledger_snapshot()
    with transaction.atomic():
        with pytest.raises(InsufficientCredits) as short:
            member_charge_usage(org=org, membership_id=member.pk, amount=30)
        assert (short.value.available, short.value.requested) == (29, 30)
        with pytest.raises(InsufficientCredits):
            member_charge_usage(org=org, membership_id=other.pk, amount=1)
        with pytest.raises(MemberNotActive):
            member_charge_usage(org=org, membership_id=424242, amount=1)
        with pytest.raises(IdempotencyConflict):
            member_charge_usage(org=org, membership_id=member.pk, amount=2, idempotency_key="k")
        assert Transfer.objects.count() > 0  # the transaction still answers
    assert ledger_snapshot() == before
    member.status = "removed"
    member.save(update_fields=["status"])
    with pytest.raises(MemberNotActive):
        member_charge_usage(org=org, membership_id=member.pk, amount=1)
    assert ledger_snapshot() == before


@pytest.mark.django_db
def test_a_used_key_replays_the_first_charge_whatever_the_balance_is_now(org, member):
    first = member_charge_usage(org=org, membership_id=member.pk, amount=30, idempotency_key="all")
    again = member_charge_usage(org=org, membership_id=member.pk, amount=30, idempotency_key="all")
    assert again.replayed and again.transfer.pk == first.transfer.pk
    assert Transfer.objects.filter(kind=TransferKind.USAGE).count() == 1


@pytest.mark.django_db(transaction=True)
def test_40_concurrent_charges_against_30_credits_in_three_pockets_succeed_exactly_30_times(org, member):
    results = race(40, lambda i: member_charge_usage(org=org, membership_id=member.pk, amount=1))
    charged, errors = split(results)
    assert len(charged) == 30, errors
    assert len(errors) == 10 and all(isinstance(e, InsufficientCredits) for e in errors), errors
    assert set(_pockets(member).values()) == {0}
    assert Transfer.objects.filter(kind=TransferKind.USAGE).count() == 30
    assert ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_charges_and_transfers_to_the_same_member_never_lose_a_credit(org, member):
    """Charges (membership, then pockets) race transfers into the same pockets (org wallet, then pockets): the one
    lock order keeps them deadlock-free, and every credit is either still there or in Usage."""
    ct = CreditType.objects.get(slug="org-allocated")

    def job(i):
        if i % 2:
            return org_transfer_to_member(org=org, membership_id=member.pk, credit_type=ct, amount=1)
        return member_charge_usage(org=org, membership_id=member.pk, amount=1)

    _values, errors = split(race(30, job))
    assert all(isinstance(e, InsufficientCredits) for e in errors), errors
    usage = Wallet.objects.external(ExternalCode.USAGE)
    used = sum(Entry.objects.filter(wallet=usage, org=org).values_list("amount", flat=True))
    assert sum(_pockets(member).values()) + used == 30 + 15  # what it had, plus the 15 transfers
    assert ledger_problems() == []


@pytest.mark.django_db
def test_a_callers_write_cannot_replace_the_ledgers_parameters(org, member):
    """A `Then` rides in the ledger's statement with parameters of its own; one named like the ledger's (here the
    amount) would silently change what the ledger writes, so it is refused before anything is sent."""
    before = ledger_snapshot()
    then = Then("SELECT t.id FROM t", {"amount": 1})
    with pytest.raises(ValueError, match="amount"):
        post_usage(
            kind=TransferKind.USAGE,
            org=org,
            membership_id=member.pk,
            to_code=ExternalCode.USAGE.value,
            amount=5,
            fingerprint="f",
            idempotency_key="clash",
            then=then,
        )
    assert ledger_snapshot() == before
