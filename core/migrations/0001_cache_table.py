"""The database cache's table (settings.CACHES, `credits_cache` by default): rate-limit counters that every
process shares. Made by migrate, so `make run`, `make serve`, the tests and CI all have it; createcachetable
skips a table that exists, and makes nothing for a cache that is not in the database (Redis)."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = []

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop, elidable=False)]
