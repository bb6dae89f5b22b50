"""PostgreSQL is the last line of defence: triggers and CHECKs hold even against hand-written SQL."""

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from wallets.models import CreditType, Entry, Pocket, Transfer

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
    from wallets.models import Wallet

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
    from django.core.management import CommandError, call_command

    pocket = Pocket.objects.get(wallet__org=funded_org)
    Pocket.objects.filter(pk=pocket.pk).update(balance=pocket.balance + 3)
    with pytest.raises(CommandError, match=f"pocket {pocket.pk}: cached balance"):
        call_command("verify_ledger")
