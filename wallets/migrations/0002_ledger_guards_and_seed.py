from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def install_balanced_trigger(apps, schema_editor):
    schema_editor.execute((SQL_DIR / "entry_balanced.sql").read_text(), params=None)


def remove_balanced_trigger(apps, schema_editor):
    schema_editor.execute((SQL_DIR / "entry_balanced_reverse.sql").read_text(), params=None)


def seed_credit_types_and_external_wallets(apps, schema_editor):
    CreditType = apps.get_model("wallets", "CreditType")
    Wallet = apps.get_model("wallets", "Wallet")
    CreditType.objects.get_or_create(slug="org-allocated", defaults={"name": "Org-allocated", "sort_order": 1, "draw_order": 20})
    CreditType.objects.get_or_create(slug="promo", defaults={"name": "Promo", "sort_order": 2, "draw_order": 10})
    for code, name in [("stripe", "Stripe"), ("promotions", "Promotions"), ("usage", "Usage")]:
        Wallet.objects.get_or_create(kind="external", code=code, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("wallets", "0001_initial")]

    operations = [
        migrations.RunPython(install_balanced_trigger, remove_balanced_trigger),
        migrations.RunPython(seed_credit_types_and_external_wallets, migrations.RunPython.noop),
    ]
