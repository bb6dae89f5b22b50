"""Wallet.watched: set by a trigger on balance watches, so that the ledger's drawn statement reads watches only
of watched wallets (wallets/sql/post_usage.sql)."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0011_entry_guard_without_foreign_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="wallet",
            name="watched",
            field=models.BooleanField(default=False, editable=False),
        ),
        # Wallets watched before this migration: the trigger below marks those watched from now on.
        migrations.RunSQL(
            "UPDATE wallets_wallet SET watched = true WHERE id IN (SELECT wallet_id FROM wallets_balancewatch)",
            migrations.RunSQL.noop,
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="balancewatch",
            trigger=pgtrigger.compiler.Trigger(
                name="watch_marks_wallet",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="UPDATE wallets_wallet SET watched = true WHERE id = NEW.wallet_id AND NOT watched; RETURN NULL;",
                    hash="e1d0a0a6d5789d0f4c4a26a7df2e9aab6445d12f",
                    operation='INSERT OR UPDATE OF "wallet_id"',
                    pgid="pgtrigger_watch_marks_wallet_1836a",
                    table="wallets_balancewatch",
                    when="AFTER",
                ),
            ),
        ),
    ]
