"""The API charge path's rows stop locking rows every API charge shares: the idempotency record and the usage charge
lose their database foreign keys to the org and the API key (each was checked at COMMIT with a KEY SHARE lock on
that shared row, a multixact per request; the ORM still cascades and protects), and two indexes another index
covers go (idempotency record org: the unique (org, key) leads with it; usage charge membership:
billing_usage_member_recent does)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('apikeys', '0002_apikey_revoked_reason'),
        ('orgs', '0004_purchased_credits_expiry'),
    ]

    operations = [
        migrations.AlterField(
            model_name='idempotencyrecord',
            name='api_key',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='apikeys.apikey'),
        ),
        migrations.AlterField(
            model_name='idempotencyrecord',
            name='org',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='orgs.organization'),
        ),
        migrations.AlterField(
            model_name='usagecharge',
            name='api_key',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='apikeys.apikey'),
        ),
        # Only the index goes (billing_usage_member_recent leads with membership): AlterField would drop and re-add
        # the foreign key too, which re-validates every row of the table.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "billing_usagecharge_membership_id_a0f4b9a0"',
                    'CREATE INDEX IF NOT EXISTS "billing_usagecharge_membership_id_a0f4b9a0" '
                    'ON "billing_usagecharge" ("membership_id")',
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='usagecharge',
                    name='membership',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='usage_charges', to='orgs.membership'),
                ),
            ],
        ),
        migrations.AlterField(
            model_name='usagecharge',
            name='org',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='orgs.organization'),
        ),
    ]
