"""Shared set-up for bench scripts: a PostgreSQL database of their own, migrated, and Django ready.

BENCH_DATABASE_URL picks the database (default postgres://postgres@127.0.0.1:5432/credits_bench);
it is created if missing. Scripts print their figure next to the baseline they are compared with.
"""

import os
import secrets
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(default_db: str = "credits_bench") -> str:
    url = os.environ.get("BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{default_db}")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("STRIPE_STANDIN", "true")  # benches pay through the stand-in, like the tests
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_urlsafe(40))  # none is refused with DEBUG off
    parsed = urlparse(url)
    import psycopg

    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        name = parsed.path.lstrip("/")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from wallets.models import ensure_reference_data

    ensure_reference_data()
    return url


def reset_ledger(attempts: int = 3) -> None:
    """Empty every app table (TRUNCATE is not UPDATE/DELETE, so the append-only triggers allow it). A TRUNCATE can
    deadlock with a session of the previous run that is still closing (its locks go in another order); it is tried
    again after a second, up to `attempts` times."""
    from django.db import OperationalError, connection

    for attempt in range(1, attempts + 1):
        try:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables WHERE schemaname = 'public' "
                    "AND (tablename LIKE 'orgs_%' OR tablename LIKE 'wallets_%' OR tablename LIKE 'billing_%')"
                )
                tables = cur.fetchone()[0]
                cur.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
            break
        except OperationalError as exc:
            if "deadlock" not in str(exc) or attempt == attempts:
                raise
            print(f"reset_ledger: {exc.__class__.__name__} ({str(exc).splitlines()[0]}); again in 1 s")
            time.sleep(1)
    from wallets.models import ensure_reference_data

    ensure_reference_data()


@contextmanager
def timed(label: str, results: dict | None = None):
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    if results is not None:
        results[label] = elapsed
    print(f"{label}: {elapsed * 1000:.1f} ms")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def before_fork() -> None:
    """Close this process's database connections and its connection pool before forking workers: a forked
    child must never share the parent's sockets (each child opens its own)."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close()
        if hasattr(conn, "close_pool"):
            conn.close_pool()
