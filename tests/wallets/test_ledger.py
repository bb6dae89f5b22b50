"""The one primitive: it moves credits exactly, refuses bad input, and replays idempotent retries."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from orgs.models import MembershipStatus
from tests.factories import MembershipFactory, fund, ledger_snapshot
from wallets.errors import IdempotencyConflict, InsufficientCredits, InvalidAmount, MemberNotActive
from wallets.ledger import leg, post_transfer
from wallets.models import CreditType, Entry, Pocket, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems, pocket_balance, wallet_balance
from wallets.services import org_transfer_to_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def ct():
    return CreditType.objects.get(slug="org-allocated")


def test_transfer_to_member_moves_credits_and_balances_books(funded_org, member_membership, owner, ct):
    posted = org_transfer_to_member(
        org=funded_org, membership_id=member_membership.pk, credit_type=ct, amount=250, actor=owner, memo="Kickoff"
    )
    assert posted.replayed is False
    transfer = posted.transfer
    org_wallet = Wallet.objects.for_org(funded_org)
    member_wallet = Wallet.objects.for_user(member_membership.user)
    assert wallet_balance(org_wallet).total == 9_750
    assert wallet_balance(member_wallet).total == 250
    member_pocket = Pocket.objects.get(wallet=member_wallet)
    assert member_pocket.funding_org_id == funded_org.pk
    entries = list(Entry.objects.filter(transfer_id=transfer.pk).order_by("amount"))
    assert [(e.amount, e.balance_after) for e in entries] == [(-250, 9_750), (250, 250)]
    stored = Transfer.objects.get(pk=transfer.pk)
    assert (stored.kind, stored.actor, stored.memo, stored.amount) == (TransferKind.TRANSFER, owner, "Kickoff", 250)
    assert ledger_problems() == []


@pytest.mark.parametrize("amount", [0, -1, -500, 1.5, Decimal("2"), "100", True, None, 10**15 + 1])
def test_transfer_with_bad_amount_raises_and_moves_nothing(funded_org, member_membership, ct, amount):
    before = ledger_snapshot()
    with pytest.raises(InvalidAmount):
        org_transfer_to_member(org=funded_org, membership_id=member_membership.pk, credit_type=ct, amount=amount)
    assert ledger_snapshot() == before


def test_transfer_over_balance_raises_with_shortfall_and_moves_nothing(funded_org, member_membership, ct):
    before = ledger_snapshot()
    with pytest.raises(InsufficientCredits) as exc:
        org_transfer_to_member(org=funded_org, membership_id=member_membership.pk, credit_type=ct, amount=10_001)
    assert exc.value.shortfall == 1
    assert "1 missing" in exc.value.message
    assert ledger_snapshot() == before


def test_transfer_of_a_type_the_org_does_not_hold_is_refused(funded_org, member_membership):
    promo = CreditType.objects.get(slug="promo")
    before = ledger_snapshot()
    with pytest.raises(InsufficientCredits):
        org_transfer_to_member(org=funded_org, membership_id=member_membership.pk, credit_type=promo, amount=1)
    assert ledger_snapshot()[:2] == before[:2]


def test_transfer_to_removed_member_or_other_org_member_is_refused(funded_org, other_org, member_membership, ct):
    outsider = MembershipFactory(org=other_org)
    member_membership.status = MembershipStatus.REMOVED
    member_membership.save()
    before = ledger_snapshot()
    for membership_id in (member_membership.pk, outsider.pk, 999_999):
        with pytest.raises(MemberNotActive):
            org_transfer_to_member(org=funded_org, membership_id=membership_id, credit_type=ct, amount=5)
    assert ledger_snapshot() == before


def test_same_idempotency_key_replays_the_first_transfer(funded_org, member_membership, ct):
    kwargs = dict(org=funded_org, membership_id=member_membership.pk, credit_type=ct, amount=40, idempotency_key="k1")
    first = org_transfer_to_member(**kwargs)
    before = ledger_snapshot()
    second = org_transfer_to_member(**kwargs)
    assert second.replayed is True and first.replayed is False
    assert second.transfer.pk == first.transfer.pk
    assert ledger_snapshot() == before


def test_same_idempotency_key_with_different_body_is_a_conflict(funded_org, member_membership, ct):
    org_transfer_to_member(
        org=funded_org, membership_id=member_membership.pk, credit_type=ct, amount=40, idempotency_key="k2"
    )
    before = ledger_snapshot()
    with pytest.raises(IdempotencyConflict):
        org_transfer_to_member(
            org=funded_org, membership_id=member_membership.pk, credit_type=ct, amount=41, idempotency_key="k2"
        )
    assert ledger_snapshot() == before


def test_idempotency_keys_are_scoped_per_org(funded_org, other_org, member_membership, ct):
    fund(other_org, 100)
    other_member = MembershipFactory(org=other_org)
    a = org_transfer_to_member(
        org=funded_org, membership_id=member_membership.pk, credit_type=ct, amount=1, idempotency_key="same"
    )
    b = org_transfer_to_member(
        org=other_org, membership_id=other_member.pk, credit_type=ct, amount=1, idempotency_key="same"
    )
    assert a.transfer.pk != b.transfer.pk
    assert not b.replayed


def test_legs_that_do_not_balance_are_rejected(funded_org, ct):
    org_wallet = Wallet.objects.for_org(funded_org)
    before = ledger_snapshot()
    with pytest.raises(ValueError, match="sum to zero"):
        post_transfer(kind=TransferKind.TRANSFER, org=funded_org, legs=[leg(org_wallet, ct, -5)])
    assert ledger_snapshot() == before


def test_external_wallet_may_go_negative_but_org_wallet_may_not(org, ct):
    stripe = Wallet.objects.external("stripe")
    org_wallet = Wallet.objects.for_org(org)
    post_transfer(kind=TransferKind.PURCHASE, org=org, legs=[leg(stripe, ct, -7, org), leg(org_wallet, ct, 7)])
    pocket = Pocket.objects.get(wallet=stripe, funding_org=org)
    # External pockets keep no cached balance (nothing locks their row): it is the sum of their entries.
    assert pocket.balance == 0
    assert pocket_balance(pocket) == -7
    assert pocket.org_id == org.pk
    entry = Entry.objects.get(pocket=pocket)
    assert (entry.amount, entry.balance_after, entry.org_id) == (-7, None, org.pk)
    with pytest.raises(InsufficientCredits):
        post_transfer(kind=TransferKind.REFUND, org=org, legs=[leg(org_wallet, ct, -8), leg(stripe, ct, 8, org)])
    assert pocket_balance(pocket) == -7


def test_external_pocket_cannot_cache_a_balance(org, ct):
    """The database refuses a cached balance on an external pocket (the hot-row design, docs/ledger.md)."""
    stripe = Wallet.objects.external("stripe")
    post_transfer(
        kind=TransferKind.PURCHASE, org=org, legs=[leg(stripe, ct, -7, org), leg(Wallet.objects.for_org(org), ct, 7)]
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Pocket.objects.filter(wallet=stripe).update(balance=-7)


def test_entries_and_pockets_carry_the_org(org, ct):
    org_wallet = Wallet.objects.for_org(org)
    promotions = Wallet.objects.external("promotions")
    posted = post_transfer(
        kind=TransferKind.PROMO_GRANT, org=org, legs=[leg(promotions, ct, -5, org), leg(org_wallet, ct, 5)]
    )
    assert set(Entry.objects.filter(transfer=posted.transfer).values_list("org_id", flat=True)) == {org.pk}
    assert Pocket.objects.get(wallet=org_wallet, credit_type=ct).org_id == org.pk


def test_verify_ledger_command_passes_on_clean_books(funded_org, capsys):
    call_command("verify_ledger")
    assert "Ledger OK" in capsys.readouterr().out


def test_refused_move_inside_a_callers_transaction_leaves_it_usable(funded_org, member_membership, ct):
    """The primitive runs without a savepoint when nested; a refusal must not spoil the caller's transaction."""
    from django.db import transaction

    from orgs.models import Membership

    with transaction.atomic():
        with pytest.raises(InsufficientCredits):
            org_transfer_to_member(org=funded_org, membership_id=member_membership.pk, credit_type=ct, amount=99_999)
        assert Membership.objects.filter(pk=member_membership.pk).exists()  # the transaction still works
        org_transfer_to_member(org=funded_org, membership_id=member_membership.pk, credit_type=ct, amount=5)
    assert wallet_balance(Wallet.objects.for_user(member_membership.user)).total == 5
    assert ledger_problems() == []


def test_non_numeric_membership_id_is_not_a_member(funded_org, ct):
    with pytest.raises(MemberNotActive):
        org_transfer_to_member(org=funded_org, membership_id="1 OR 1=1", credit_type=ct, amount=5)


# ---------------------------------------------------------------- verify_ledger catches what the primitive never writes


@pytest.fixture
def tamper(funded_org, member_membership):
    """Write entries behind the primitive's back, as a bad migration or hand-written SQL would.

    SQLite has no ledger triggers, so raw rows go straight in. On PostgreSQL the statement trigger
    `wallets_entry_balanced` refuses exactly these rows, so it is disabled for this test only:
    `ALTER TABLE … DISABLE TRIGGER` is transactional DDL, and pytest-django's per-test transaction rolls it
    back with the rows (no other connection ever sees it disabled). We disable that one trigger rather than
    set session_replication_role=replica, which would also switch off foreign keys and every other guard.
    """
    from django.db import connection

    with connection.cursor() as cur:
        # ALTER TABLE refuses while deferred foreign-key checks of this transaction are pending: run them now.
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("ALTER TABLE wallets_entry DISABLE TRIGGER wallets_entry_balanced")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")

    def write(legs):
        """legs: [(wallet, credit type, signed amount)] -> a Transfer with exactly those entries, each pocket's
        cached balance kept equal to its entries (so only the imbalance itself is wrong)."""
        transfer = Transfer.objects.create(
            kind=TransferKind.TRANSFER, org=funded_org, memo="tampered", amount=sum(a for *_, a in legs if a > 0)
        )
        for wallet, credit_type, amount in legs:
            pocket, _ = Pocket.objects.get_or_create(
                wallet=wallet,
                credit_type=credit_type,
                funding_org=None if wallet.kind == "org" else funded_org,
                defaults={"is_external": wallet.kind == "external"},
            )
            Pocket.objects.filter(pk=pocket.pk).update(balance=pocket.balance + amount)
            Entry.objects.create(
                transfer=transfer,
                pocket=pocket,
                wallet=wallet,
                credit_type=credit_type,
                amount=amount,
                balance_after=pocket.balance + amount,
            )
        return transfer

    return write


def _verify_ledger_exit(monkeypatch, capsys) -> tuple[int, str]:
    """Run `manage.py verify_ledger` the way a shell does: its exit status and what it printed."""
    from django.core.management import ManagementUtility
    from django.db import connections

    # run_from_argv closes every connection when it ends; that would drop this test's transaction.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    try:
        ManagementUtility(["manage.py", "verify_ledger"]).execute()
        code = 0
    except SystemExit as exc:  # a CommandError becomes `sys.exit(1)` after the report goes to stderr
        code = exc.code
    out = capsys.readouterr()
    return code, out.out + out.err


def test_verify_ledger_reports_an_unbalanced_transfer(tamper, member_membership, ct, monkeypatch, capsys):
    bad = tamper([(Wallet.objects.for_user(member_membership.user), ct, 5)])  # credits out of thin air
    code, report = _verify_ledger_exit(monkeypatch, capsys)
    assert code != 0
    assert "The ledger does NOT balance" in report
    assert f"[transfer] transfer {bad.pk}: credit type {ct.pk} entries sum to 5, not 0" in report
    assert f"[books] credit type {ct.pk}: the books sum to 5, not 0" in report
    assert "cached balance" not in report  # the pockets agree with their entries: only the imbalance is reported


def test_verify_ledger_reports_a_per_credit_type_imbalance(
    tamper, funded_org, member_membership, ct, monkeypatch, capsys
):
    """5 Org-allocated out of the org wallet, 5 Promo into a member's: the entries sum to zero overall, so only
    a check per credit type sees that Org-allocated credits turned into Promo."""
    promo = CreditType.objects.get(slug="promo")
    bad = tamper(
        [(Wallet.objects.for_org(funded_org), ct, -5), (Wallet.objects.for_user(member_membership.user), promo, 5)]
    )
    assert sum(Entry.objects.filter(transfer=bad).values_list("amount", flat=True)) == 0
    code, report = _verify_ledger_exit(monkeypatch, capsys)
    assert code != 0
    assert f"[transfer] transfer {bad.pk}: credit type {ct.pk} entries sum to -5, not 0" in report
    assert f"[transfer] transfer {bad.pk}: credit type {promo.pk} entries sum to 5, not 0" in report
    assert f"[books] credit type {ct.pk}: the books sum to -5, not 0" in report
    assert f"[books] credit type {promo.pk}: the books sum to 5, not 0" in report
    assert "cached balance" not in report


def test_verify_ledger_exits_zero_on_clean_books(funded_org, member_membership, ct, monkeypatch, capsys):
    org_transfer_to_member(org=funded_org, membership_id=member_membership.pk, credit_type=ct, amount=5)
    code, report = _verify_ledger_exit(monkeypatch, capsys)
    assert code == 0 and "Ledger OK" in report
