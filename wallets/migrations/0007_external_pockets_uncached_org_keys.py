"""External pockets stop caching a balance; pockets and entries carry their org's id; entries' copied columns
lose their foreign keys to a trigger check; the entry index on (pocket, id) goes (pocket_time serves it).

- External pockets (Stripe, Usage, Promotions) have no floor, so nothing needs their row locked; caching
  their balance made every charge of an org wait on that org's Usage pocket until COMMIT. From here on
  their `balance` stays 0 (CHECK) and their entries' `balance_after` is null; their balance is the sum of
  their entries (docs/ledger.md).
- `org` on pockets and entries: the key a sharded ledger distributes them by (docs/scaling.md). Back-filled
  here: a pocket's org is its funding org, else its org wallet's org; an entry's is its transfer's org.
- An entry's wallet, credit type and org are copies of its pocket's and transfer's. Their foreign keys cost a
  lookup and a KEY SHARE lock per entry on rows every charge shares (the Usage wallet, a credit type, the
  org); the entry statement trigger now checks the copies once per statement instead (sql/entry_guard_0007.sql; replaced by sql/entry_guard.sql in 0011).
"""

from pathlib import Path

import django.db.models.deletion
import pgtrigger
from django.db import migrations, models

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
BACKFILL_POCKETS = """
UPDATE wallets_pocket p SET org_id = COALESCE(p.funding_org_id, w.org_id)
FROM wallets_wallet w WHERE w.id = p.wallet_id AND p.org_id IS NULL
"""
ZERO_EXTERNAL = "UPDATE wallets_pocket SET balance = 0 WHERE is_external AND balance <> 0"
BACKFILL_ENTRIES = """
UPDATE wallets_entry e SET org_id = t.org_id
FROM wallets_transfer t WHERE t.id = e.transfer_id AND t.org_id IS NOT NULL AND e.org_id IS NULL
"""


def backfill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        # Check the (deferred) foreign keys of these updates now: ALTER TABLE refuses to run on a table with
        # pending trigger events later in this migration.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(BACKFILL_POCKETS)
        cursor.execute(ZERO_EXTERNAL)
        # Entries are append-only (a trigger refuses UPDATE); this one-off copy into a new column is the only
        # exception, made with that trigger told to look away for this transaction only.
        with pgtrigger.ignore("wallets.Entry:entry_append_only"):
            cursor.execute(BACKFILL_ENTRIES)
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def install_entry_guard(apps, schema_editor):
    schema_editor.execute((SQL_DIR / "entry_guard_0007.sql").read_text(), params=None)


def restore_balanced_trigger(apps, schema_editor):
    schema_editor.execute((SQL_DIR / "entry_balanced.sql").read_text(), params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("orgs", "0003_membership_last_used_at"),
        ("wallets", "0006_outstandingbalance"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="entry",
            name="wallets_entry_pocket",
        ),
        migrations.AddField(
            model_name="entry",
            name="org",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="orgs.organization",
            ),
        ),
        migrations.AddField(
            model_name="pocket",
            name="org",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="orgs.organization",
            ),
        ),
        migrations.AlterField(
            model_name="entry",
            name="balance_after",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="entry",
            name="credit_type",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="wallets.credittype",
            ),
        ),
        migrations.AlterField(
            model_name="entry",
            name="wallet",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="wallets.wallet",
            ),
        ),
        migrations.AddIndex(
            model_name="pocket",
            index=models.Index(fields=["org"], name="wallets_pocket_org"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RunPython(install_entry_guard, restore_balanced_trigger),
        migrations.AddConstraint(
            model_name="pocket",
            constraint=models.CheckConstraint(
                condition=models.Q(("balance", 0), ("is_external", False), _connector="OR"),
                name="wallets_pocket_external_not_cached",
            ),
        ),
    ]
