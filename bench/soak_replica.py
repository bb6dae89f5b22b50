"""Soak through PgBouncer and a streaming replica: bench/soak.py's clients and checks, on the set-up of
bench/replica_stack.py (a primary, a hot-standby replica, PgBouncer 1.18 in transaction mode in front of
both), with the app's reports (the Transactions page, the balance chart, the CSV export) reading the
replica (DATABASE_REPLICA_URL) and the ledger's prepared statements off (LEDGER_PREPARED_STATEMENTS=false).

Midway the replica is killed (pg_ctl stop -m immediate). Beside soak.py's checks (verify_ledger, every
acknowledged operation exactly once, nothing unacknowledged applied twice, no partial bulk transfer) it
asserts that no report page failed (every one answered 200 at the first try), that reports were read on
the replica before the kill (its xact_commit rose) and that they kept answering from the primary after it.
Any 500 is a problem here: killing the replica must not break a page.

SOAK_SECONDS (60), SOAK_CLIENTS (16), SOAK_READS (0.25), SOAK_PORT (8660), STACK_PORT (25440);
SOAK_REPORT=<file> also writes the figures as JSON (the CI test reads them).
"""

import json
import os
import time

from _common import setup
from replica_stack import stack
from soak import CLIENTS, SECONDS, report, run

PORT = int(os.environ.get("SOAK_PORT", 8660))
READS = float(os.environ.get("SOAK_READS", 0.25))


def main():
    os.environ["PGAPPNAME"] = "soak-checker"
    with stack() as s:
        os.environ["BENCH_DATABASE_URL"] = s.primary_url  # migrations, seeding and the checks: the primary itself
        url = setup("credits")
        evidence: dict = {}

        def kill_replica(_procs, rec):
            started = time.time()  # run() starts this thread with the clients
            evidence["replica_commits_start"] = s.replica_commits()
            time.sleep(max(0.0, started + SECONDS / 2 - time.time()))
            evidence["replica_commits_before_kill"] = s.replica_commits()
            evidence["bouncer_before_kill"] = s.bouncer_stats()
            rec.marks["replica_killed"] = time.time()
            s.stop_replica()
            time.sleep(max(0.0, started + SECONDS - 1 - time.time()))
            evidence["bouncer_after_kill"] = s.bouncer_stats()

        result = run(
            url,
            app_env=s.app_env(),
            chaos_fn=kill_replica,
            reads=READS,
            port=PORT,
            chaos_causes=(),
            pages_must_answer=True,
        )
    killed = result["marks"].get("replica_killed")
    before = [ok for t, ok in result["page_times"] if killed is None or t < killed]
    after = [ok for t, ok in result["page_times"] if killed is not None and t >= killed]
    replica_reads = evidence.get("replica_commits_before_kill", 0) - evidence.get("replica_commits_start", 0)
    b0, b1 = evidence.get("bouncer_before_kill", {}), evidence.get("bouncer_after_kill", {})
    result.update(
        evidence,
        replica_killed=killed is not None,
        replica_xacts_before_kill=replica_reads,
        pages_before_kill=len(before),
        pages_after_kill=len(after),
        pages_ok_after_kill=sum(after),
        primary_xacts_after_kill=b1.get("credits", 0) - b0.get("credits", 0),
    )
    problems = result["problems"]
    if killed is None:
        problems.append("the replica was not killed")
    # A few of its own (the health checks) would be there without report reads: ask for more than pages read.
    if replica_reads < max(10, len(before) // 4):
        problems.append(f"reports did not read the replica before the kill: its xact_commit rose by {replica_reads}")
    if not after or sum(after) != len(after):
        problems.append(f"after the kill {sum(after)} of {len(after)} report pages answered")
    result.pop("page_times")
    if os.environ.get("SOAK_REPORT"):
        with open(os.environ["SOAK_REPORT"], "w") as f:
            json.dump(result, f, indent=1)
    print(
        f"replica: xact_commit +{replica_reads} before the kill ({len(before)} report pages); "
        f"after the kill {sum(after)}/{len(after)} report pages answered, from the primary "
        f"(PgBouncer: +{result['primary_xacts_after_kill']} transactions on the primary)"
    )
    report(
        result,
        f"soak through PgBouncer + replica: {CLIENTS} clients x {SECONDS:.0f}s, 2 gunicorn instances (2 workers "
        f"each), {READS:.0%} report reads, replica killed midway",
    )


if __name__ == "__main__":
    main()
