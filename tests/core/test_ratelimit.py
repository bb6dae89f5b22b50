"""Rate limits hold across processes: the counters live in a cache every process shares (the database cache
by default), and a per-process cache in production is warned about at start-up."""

import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config import settings as project_settings  # the module's own values, not this test run's overrides

ROOT = Path(__file__).resolve().parents[2]

# One process of the app: counts `hits` events for one identity against a limit of `count`, once the test
# says go (so both processes hit at the same time), and prints how many were admitted.
HITTER = """
import sys
import django

django.setup()
from core.ratelimit import hit

scope, count, hits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
admitted = sum(hit(scope, "user:1", count=count, seconds=86_400) is None for _ in range(hits))
print(admitted, flush=True)
"""


def _app_env(**extra) -> dict:
    """The environment of a production process on the test database: DEBUG off, a real key, no CACHE_URL
    (the default cache), no pytest."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="") + (":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else "")
    env = {k: v for k, v in os.environ.items() if k not in {"CACHE_URL", "PYTEST_VERSION", "PYTEST_CURRENT_TEST"}}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "LOG_LEVEL": "INFO",
    }
    return env | extra


@pytest.mark.django_db(transaction=True)
def test_two_processes_share_one_limit():
    """Two app processes (as two gunicorn workers are) hitting one user's limit at the same time admit the
    limit in total, not the limit each."""
    scope = f"test-shared-{uuid.uuid4().hex}"
    limit, hits = 30, 25
    procs = [
        subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-c", HITTER, scope, str(limit), str(hits)],
            cwd=ROOT,
            env=_app_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        for proc in procs:  # go: both count at once
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    admitted = [int(out.strip()) for out, _ in results]
    assert sum(admitted) == limit, (admitted, [err for _, err in results])


def _start_up(**extra) -> str:
    """What a process of the app logs while it starts (django.setup)."""
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=_app_env(**extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.django_db
def test_a_per_process_cache_in_production_is_warned_about_once_at_start_up():
    for cache_url in ("locmemcache://", "dummycache://"):
        log = _start_up(CACHE_URL=cache_url)
        assert log.count("WARNING") == 1, log
        assert "rate limits are counted per process" in log
    assert "rate limits" not in _start_up()  # the default: the database cache, shared
    assert "rate limits" not in _start_up(CACHE_URL="locmemcache://", DEBUG="true")  # make run: one process


@pytest.fixture
def database_cache(settings):
    """The production default (tests/conftest.py gives the other tests local memory): the database cache, in
    the table core's migration made."""
    from django.core.cache import cache

    assert project_settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    settings.CACHES = project_settings.CACHES
    cache.clear()
    return project_settings.CACHES["default"]["LOCATION"]


@pytest.mark.django_db
def test_the_default_cache_limits_a_view_and_keeps_the_count_in_its_table(rf, owner, settings, database_cache):
    from django.http import HttpResponse

    from core.ratelimit import rate_limited

    settings.RATE_LIMIT_MONEY = (2, 86_400)

    @rate_limited("RATE_LIMIT_MONEY")
    def view(request):
        return HttpResponse("moved")

    request = rf.post("/x")
    request.user = owner
    assert [view(request).status_code for _ in range(4)] == [200, 200, 429, 429]
    with connection.cursor() as cursor:
        cursor.execute("SELECT hits FROM core_ratelimit_counter WHERE key LIKE %s", ["rl:RATE_LIMIT_MONEY:%"])
        assert cursor.fetchall() == [(4,)]
        cursor.execute(f"SELECT count(*) FROM {database_cache} WHERE cache_key LIKE %s", ["%rl:%"])
        assert cursor.fetchone() == (0,)  # the counters have their own table, not the cache's


@pytest.mark.django_db(transaction=True)  # no test transaction around it: the count must commit on its own
def test_a_count_in_the_database_is_one_statement_outside_any_transaction(database_cache):
    """What a rate-limited request pays for a limit every process shares: one upsert in autocommit, so the
    counter's row lock is held for that statement only (not until a request's work commits), and its commit
    waits for no WAL flush (the table is UNLOGGED). A new statement here is a round trip on every limited
    request (every API call), so it must be a choice; CACHE_URL=redis://… makes it Redis round trips."""
    from core.ratelimit import hit

    hit("test-cost", "user:1", count=10, seconds=86_400)  # the counter's row exists: the common case
    with CaptureQueriesContext(connection) as ctx:
        assert hit("test-cost", "user:1", count=10, seconds=86_400) is None
    sql = [q["sql"] for q in ctx.captured_queries]
    assert len(sql) == 1 and "ON CONFLICT" in sql[0] and "core_ratelimit_counter" in sql[0], sql
    assert connection.get_autocommit()
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = 'core_ratelimit_counter'")
        assert cursor.fetchone() == ("u",)  # unlogged


@pytest.mark.django_db(transaction=True)
def test_a_new_window_starts_at_one_and_ended_windows_are_dropped(database_cache, monkeypatch):
    from core import ratelimit

    clock = [1_000_000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    assert [ratelimit.hit("test-window", "a", count=2, seconds=60) for _ in range(3)][-1] is not None
    ratelimit.hit("test-window", "b", count=2, seconds=60)
    clock[0] += 60  # the next window: a counts from 1 again, and b's ended counter is dropped
    assert ratelimit.hit("test-window", "a", count=2, seconds=60) is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, hits FROM core_ratelimit_counter WHERE key LIKE 'rl:test-window:%'")
        rows = cursor.fetchall()
    assert [hits for _key, hits in rows] == [1], rows
