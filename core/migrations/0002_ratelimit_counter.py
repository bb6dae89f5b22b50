"""Rate-limit counters on PostgreSQL (core.ratelimit): one row per counted identity, bumped by one upsert.

UNLOGGED: a count writes no WAL, so its commit waits for no disk flush; after a crash PostgreSQL empties the
table, which only restarts the current windows."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("core", "0001_cache_table")]

    operations = [
        migrations.RunSQL(
            """
            CREATE UNLOGGED TABLE core_ratelimit_counter (
                key varchar(200) PRIMARY KEY,
                window_end bigint NOT NULL,
                hits integer NOT NULL CHECK (hits > 0)
            );
            CREATE INDEX core_ratelimit_counter_window_end ON core_ratelimit_counter (window_end);
            """,
            "DROP TABLE core_ratelimit_counter",
            elidable=False,
        )
    ]
