"""The soak through PgBouncer and a streaming replica, short: bench/soak_replica.py on the set-up of
bench/replica_stack.py (a primary and a replica of the machine's PostgreSQL 15, PgBouncer in transaction
mode in front of both, two gunicorn servers), with the replica killed midway.

It runs the script as a separate process (its own Django settings and databases, not the test database)
and reads the figures it writes. Nothing here is skipped: without PgBouncer or PostgreSQL 15's binaries the
script fails, and so does the test (`make test` installs PgBouncer).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.stack


def test_soak_through_pgbouncer_and_replica_loses_nothing_when_the_replica_dies(tmp_path):
    report = tmp_path / "soak.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "DATABASE_REPLICA_URL", "BENCH_DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SOAK_SECONDS="18",
        SOAK_PORT="8670",  # not the benches' own ports: a bench run by hand does not collide
        STACK_PORT="25450",
        SOAK_REPORT=str(report),
    )
    proc = subprocess.run(
        [sys.executable, "bench/soak_replica.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, output
    result = json.loads(report.read_text())

    assert result["ledger_verified"], output
    assert result["problems"] == [], output  # exactly once, against what the clients were told
    assert result["server_500s"] == {}, output
    # Every kind of money movement was acknowledged at least once, and so checked.
    for kind in ("transfer", "bulk", "decision", "purchase"):
        assert result["acked"].get(kind, 0) > 0, (kind, output)
    # No report page failed, before or after the kill.
    assert result["pages_failed"] == 0, output
    assert result["replica_killed"], output
    assert result["pages_before_kill"] > 0, output
    assert result["pages_after_kill"] > 0, output
    assert result["pages_ok_after_kill"] == result["pages_after_kill"], output
    # Reports read the replica before the kill, and the primary after it.
    assert result["replica_xacts_before_kill"] >= max(10, result["pages_before_kill"] // 4), output
    assert result["primary_xacts_after_kill"] > 0, output
