"""Entries and transfers lose their last foreign-key constraints on the charge path; the entry statement trigger
checks in one query what they checked (sql/entry_guard.sql).

- entry.pocket, entry.transfer and transfer.org: each foreign key was checked at COMMIT by a lookup that took a
  KEY SHARE lock on the row, and every charge of an org shares two of those rows (the org's Usage pocket and the
  org itself): a multixact was written on each per charge. The trigger now refuses a new entry whose pocket or
  transfer does not exist; nothing deletes a pocket, a transfer or an organization (PROTECT in the ORM, the
  append-only trigger on transfers and, new here, a trigger that refuses to delete a pocket), and verify_ledger
  checks every row.
- the trigger checks the balance and the copies in one query over the statement's new rows (it ran two).
"""

from pathlib import Path

import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def install(apps, schema_editor):
    schema_editor.execute((SQL_DIR / "entry_guard.sql").read_text(), params=None)


def restore(apps, schema_editor):
    schema_editor.execute((SQL_DIR / "entry_guard_0007.sql").read_text(), params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("orgs", "0004_purchased_credits_expiry"),
        ("wallets", "0010_pocket_expiry"),
    ]

    operations = [
        migrations.AlterField(
            model_name="entry",
            name="pocket",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="wallets.pocket",
            ),
        ),
        migrations.AlterField(
            model_name="entry",
            name="transfer",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="wallets.transfer",
            ),
        ),
        migrations.AlterField(
            model_name="transfer",
            name="org",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="transfers",
                to="orgs.organization",
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="pocket",
            trigger=pgtrigger.compiler.Trigger(
                name="pocket_never_deleted",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="RAISE EXCEPTION 'pgtrigger: Cannot delete rows from % table', TG_TABLE_NAME;",
                    hash="930b3d9436c24c8c54fafd4d1c50af8277b90161",
                    operation="DELETE",
                    pgid="pgtrigger_pocket_never_deleted_4c13b",
                    table="wallets_pocket",
                    when="BEFORE",
                ),
            ),
        ),
        migrations.RunPython(install, restore),
    ]
