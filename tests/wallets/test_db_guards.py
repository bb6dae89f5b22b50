"""PostgreSQL is the last line of defence: triggers and CHECKs hold even against hand-written SQL."""

import pgtrigger
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from orgs.models import Organization
from wallets.models import CreditType, Entry, Pocket, Transfer, Wallet
from wallets.selectors import ledger_problems

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _sql(sql, params=None):
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)


def test_entries_cannot_be_updated_or_deleted(funded_org):
    entry = Entry.objects.first()
    with pytest.raises(DatabaseError, match="Cannot"):
        _sql("UPDATE wallets_entry SET amount = amount + 1 WHERE id = %s", [entry.pk])
    with pytest.raises(DatabaseError, match="Cannot"):
        _sql("DELETE FROM wallets_entry WHERE id = %s", [entry.pk])
    assert Entry.objects.get(pk=entry.pk).amount == entry.amount


def test_transfers_cannot_be_updated_or_deleted(funded_org):
    transfer = Transfer.objects.first()
    with pytest.raises(DatabaseError, match="Cannot"):
        _sql("UPDATE wallets_transfer SET memo = 'edited' WHERE id = %s", [transfer.pk])
    with pytest.raises(DatabaseError, match="Cannot"):
        Transfer.objects.filter(pk=transfer.pk).delete()


def test_org_pocket_balance_cannot_go_negative(funded_org):
    pocket = Pocket.objects.get(wallet__org=funded_org)
    with pytest.raises(IntegrityError):
        _sql("UPDATE wallets_pocket SET balance = -1 WHERE id = %s", [pocket.pk])


def test_unbalanced_entries_are_rejected_by_the_trigger(funded_org, owner):
    ct = CreditType.objects.get(slug="org-allocated")
    pocket = Pocket.objects.create(wallet=Wallet.objects.for_user(owner), credit_type=ct)
    transfer = Transfer.objects.first()
    with pytest.raises(DatabaseError, match="does not balance"):
        _sql(
            "INSERT INTO wallets_entry (transfer_id, pocket_id, wallet_id, credit_type_id, amount, balance_after, created_at)"
            " VALUES (%s, %s, %s, %s, 5, 5, now())",
            [transfer.pk, pocket.pk, pocket.wallet_id, ct.pk],
        )


def test_verify_ledger_reports_a_tampered_cache(funded_org):
    pocket = Pocket.objects.get(wallet__org=funded_org)
    Pocket.objects.filter(pk=pocket.pk).update(balance=pocket.balance + 3)
    with pytest.raises(CommandError, match=f"pocket {pocket.pk}: cached balance"):
        call_command("verify_ledger")


def _balanced_pair_sql():
    return (
        "INSERT INTO wallets_entry (transfer_id, pocket_id, wallet_id, credit_type_id, org_id, amount, created_at)"
        " VALUES (%s, %s, %s, %s, %s, 5, now()), (%s, %s, %s, %s, %s, -5, now())"
    )


@pytest.mark.parametrize("wrong", ["wallet", "credit_type", "org"])
def test_entry_copies_must_match_pocket_and_transfer(funded_org, wrong):
    """Entry wallet, credit type and org carry no foreign key (a lock per entry on rows every charge shares);
    the statement trigger refuses a copy that differs from the pocket's or the transfer's."""
    a, b = Entry.objects.filter(transfer__org=funded_org).select_related("pocket").order_by("id")[:2]
    transfer = Transfer.objects.create(org=funded_org, kind="transfer", amount=5, fingerprint="test")
    rows = []
    for e in (a, b):
        rows.append([transfer.pk, e.pocket_id, e.pocket.wallet_id, e.pocket.credit_type_id, transfer.org_id])
    other_ct = CreditType.objects.exclude(pk=a.pocket.credit_type_id).first()
    index = {"wallet": 2, "credit_type": 3, "org": 4}[wrong]
    rows[0][index] = {"wallet": b.pocket.wallet_id, "credit_type": other_ct.pk, "org": None}[wrong]
    if wrong == "credit_type":
        rows[1][index] = other_ct.pk  # keep the credit type sums balanced: only the copy check can refuse
    before = Entry.objects.count()
    with pytest.raises(DatabaseError, match="does not match its pocket"):
        _sql(_balanced_pair_sql(), rows[0] + rows[1])
    assert Entry.objects.count() == before


def test_external_pocket_keeps_no_cached_balance(funded_org):
    pocket = Pocket.objects.filter(is_external=True, funding_org=funded_org).first()
    assert pocket is not None and pocket.balance == 0
    with pytest.raises(IntegrityError):
        _sql("UPDATE wallets_pocket SET balance = 5 WHERE id = %s", [pocket.pk])


def test_verify_ledger_reports_a_wrong_entry_copy(funded_org):
    entry = Entry.objects.filter(org=funded_org).first()
    with pgtrigger.ignore("wallets.Entry:entry_append_only"):
        _sql("UPDATE wallets_entry SET org_id = NULL WHERE id = %s", [entry.pk])
    with pytest.raises(CommandError, match=f"entry {entry.pk}: wallet"):
        call_command("verify_ledger")


@pytest.mark.parametrize("missing", ["pocket", "transfer"])
def test_an_entry_whose_pocket_or_transfer_does_not_exist_is_refused(funded_org, missing):
    """Entries carry no foreign-key constraint (its check at COMMIT locked the org's shared Usage pocket on every
    charge): the statement trigger refuses an entry whose pocket or transfer is not there, and nothing is written."""
    a, b = Entry.objects.filter(transfer__org=funded_org).select_related("pocket").order_by("id")[:2]
    transfer = Transfer.objects.create(org=funded_org, kind="transfer", amount=5, fingerprint="test")
    rows = [[transfer.pk, e.pocket_id, e.pocket.wallet_id, e.pocket.credit_type_id, transfer.org_id] for e in (a, b)]
    ghost = 10**12
    rows[0][0 if missing == "transfer" else 1] = ghost
    rows[1][0 if missing == "transfer" else 1] = ghost if missing == "transfer" else rows[1][1]
    before = Entry.objects.count()
    with pytest.raises(DatabaseError, match="has no pocket or transfer"):
        _sql(_balanced_pair_sql(), rows[0] + rows[1])
    assert Entry.objects.count() == before


def test_verify_ledger_reports_an_entry_whose_pocket_is_gone_and_a_transfer_whose_org_is_gone(funded_org):

    entry = Entry.objects.filter(org=funded_org, pocket__is_external=False).first()
    transfer = entry.transfer
    with connection.cursor() as cur:
        # Hand-written SQL can still do what the ORM's PROTECT refuses; verify_ledger is there to tell.
        with pytest.raises(DatabaseError, match="Cannot delete"), transaction.atomic():
            cur.execute("DELETE FROM wallets_pocket WHERE id = %s", [entry.pocket_id])
        with pgtrigger.ignore("wallets.Pocket:pocket_never_deleted"):
            cur.execute("DELETE FROM wallets_pocket WHERE id = %s", [entry.pocket_id])
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("ALTER TABLE orgs_organization DISABLE TRIGGER ALL")  # the foreign keys of other tables
        try:
            cur.execute("UPDATE orgs_organization SET id = id + 1000000 WHERE id = %s", [funded_org.pk])
        finally:
            cur.execute("ALTER TABLE orgs_organization ENABLE TRIGGER ALL")
    details = [p.detail for p in ledger_problems()]
    assert f"entry {entry.pk}: its pocket does not exist" in details
    assert f"transfer {transfer.pk}: its org {funded_org.pk} does not exist" in details
    with pytest.raises(CommandError, match="its pocket does not exist"):
        call_command("verify_ledger")
    assert not Organization.objects.filter(pk=funded_org.pk).exists()
