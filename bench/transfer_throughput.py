"""Single transfers from one org wallet to random members: the ledger primitive vs minimal hand-written SQL.

8 worker processes (BENCH_WORKERS), BENCH_SECONDS (default 15) each, on PostgreSQL. All workers hit the
same org wallet pocket, so this measures how long each transfer holds that hot row lock.
Baseline: lock both rows in id order, two UPDATEs, a two-row INSERT — on tables of its own.
Target: primitive >= 50% of the baseline.
"""

import multiprocessing as mp
import os
import random
import time

from _common import before_fork, reset_ledger, setup

SECONDS = float(os.environ.get("BENCH_SECONDS", 15))
WORKERS = int(os.environ.get("BENCH_WORKERS", 8))
MEMBERS = 200


def primitive_worker(args):
    org_id, membership_ids, deadline = args
    from django.db import connection

    from orgs.models import Organization
    from wallets.models import CreditType
    from wallets.services import org_transfer_to_member

    connection.close()
    org = Organization.objects.get(pk=org_id)
    ct = CreditType.objects.get(slug="org-allocated")
    n = 0
    while time.time() < deadline:
        org_transfer_to_member(org=org, membership_id=random.choice(membership_ids), credit_type=ct, amount=1)
        n += 1
    connection.close()
    return n


def baseline_worker(args):
    dsn, source_id, target_ids, deadline = args
    import psycopg

    n = 0
    with psycopg.connect(dsn) as conn:
        while time.time() < deadline:
            target = random.choice(target_ids)
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    "SELECT id FROM bench_pocket WHERE id IN (%s, %s) ORDER BY id FOR UPDATE", [source_id, target]
                )
                cur.execute("UPDATE bench_pocket SET balance = balance - 1 WHERE id = %s", [source_id])
                cur.execute("UPDATE bench_pocket SET balance = balance + 1 WHERE id = %s", [target])
                cur.execute(
                    "INSERT INTO bench_entry (pocket_id, amount, created_at) VALUES (%s, -1, now()), (%s, 1, now())",
                    [source_id, target],
                )
            n += 1
    return n


def run(worker, make_args):
    before_fork()
    deadline = time.time() + SECONDS
    ctx = mp.get_context("fork")
    with ctx.Pool(WORKERS) as pool:
        counts = pool.map(worker, [make_args(deadline) for _ in range(WORKERS)])
    return sum(counts) / SECONDS


def main():
    url = setup()
    reset_ledger()
    from django.db import connection

    from orgs.services import org_create, user_create
    from tests.factories import bulk_members
    from wallets.services import org_credit_from_stripe

    org = org_create(name="Bench Org", owner=user_create(email="bench-owner@example.com", password=None))
    members = bulk_members(org, MEMBERS)
    org_credit_from_stripe(org=org, amount=10**12, memo="bench funding")
    membership_ids = [m.pk for m in members]
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_entry, bench_pocket")
        cur.execute(
            "CREATE TABLE bench_pocket (id bigserial PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))"
        )
        cur.execute(
            "CREATE TABLE bench_entry (id bigserial PRIMARY KEY, pocket_id bigint NOT NULL REFERENCES bench_pocket,"
            " amount bigint NOT NULL, created_at timestamptz NOT NULL)"
        )
        cur.execute("INSERT INTO bench_pocket (balance) SELECT 0 FROM generate_series(1, %s)", [MEMBERS + 1])
        cur.execute("UPDATE bench_pocket SET balance = 1000000000000 WHERE id = 1")
    connection.close()

    print(f"transfer_throughput: {WORKERS} workers x {SECONDS:.0f}s on {url.rsplit('@', 1)[-1]}")
    primitive = run(primitive_worker, lambda d: (org.pk, membership_ids, d))
    dsn = url.replace("postgres://", "postgresql://", 1)
    baseline = run(baseline_worker, lambda d: (dsn, 1, list(range(2, MEMBERS + 2)), d))
    print(f"primitive (post_transfer via org_transfer_to_member): {primitive:,.0f} transfers/s")
    print(f"baseline (hand-written SQL: lock 2 rows, 2 UPDATEs, 2-row INSERT): {baseline:,.0f} transfers/s")
    ratio = primitive / baseline if baseline else 0
    print(f"ratio: {ratio:.0%} of baseline (target >= 50%) -> {'OK' if ratio >= 0.5 else 'MISSED'}")

    from django.core.management import call_command

    call_command("verify_ledger")
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_entry, bench_pocket")


if __name__ == "__main__":
    main()
