from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies = [("orgs", "0001_initial"), ("wallets", "0002_ledger_guards_and_seed")]
    operations = []
