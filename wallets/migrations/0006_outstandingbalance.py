"""State only: OutstandingBalance is ledger state and moved here from the `billing` app; its table already exists."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_purchases_stripe"),
        ("orgs", "0002_members_invitations_seats"),
        ("wallets", "0005_pocket_funded_lookup_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="OutstandingBalance",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("credits", models.BigIntegerField(default=0)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "org",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="outstanding_balance",
                                to="orgs.organization",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "billing_outstandingbalance",
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("credits__gte", 0)), name="billing_outstanding_not_negative"
                            )
                        ],
                    },
                ),
            ],
        ),
    ]
