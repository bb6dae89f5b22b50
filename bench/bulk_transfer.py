"""Bulk transfer to every member of a 10,000-member org: the app's path vs hand-written set-based SQL.

Target: `org_bulk_transfer` takes <= 2x the baseline, and its query count does not grow with
the member count. The baseline is the least work PostgreSQL can do for the same result: one INSERT of
the transfer row, one debit UPDATE, one INSERT ... SELECT of the entries and one UPDATE ... FROM of the
member balances (no idempotency check, no fingerprint, no per-leg overdraft check).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/credits_i4_bench python bench/bulk_transfer.py
    BENCH_MEMBERS=1000 BENCH_ROUNDS=3 ...   # smaller and quicker

Both sides run in alternation, each round in its own transaction, after one warm-up each (the first
transfer also creates the 10,000 member pockets, reported separately). The median is compared.
"""

import os
import statistics
import time

from _common import reset_ledger, setup

setup("credits_i4_bench")

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from orgs.services import org_create, user_create  # noqa: E402
from tests.factories import bulk_members, fund  # noqa: E402
from wallets.models import CreditType, Pocket, Wallet  # noqa: E402
from wallets.selectors import ledger_problems  # noqa: E402
from wallets.services import org_bulk_transfer  # noqa: E402

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "10000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
AMOUNT = 3

BASELINE_SQL = [
    # the transfer row the entries point to
    """INSERT INTO wallets_transfer (org_id, kind, actor_id, memo, idempotency_key, fingerprint, amount, created_at)
       SELECT %(org)s, 'bulk_transfer', NULL, 'baseline', NULL, 'baseline', %(amount)s * count(*), now()
       FROM orgs_membership WHERE org_id = %(org)s AND status = 'active'
       RETURNING id, amount""",
    # one debit UPDATE (refuses to overdraw)
    """UPDATE wallets_pocket SET balance = balance - %(total)s
       WHERE id = %(org_pocket)s AND balance >= %(total)s RETURNING balance""",
    # one INSERT ... SELECT of the entries (the debit and one credit per member)
    """INSERT INTO wallets_entry
           (transfer_id, pocket_id, wallet_id, credit_type_id, org_id, amount, balance_after, created_at)
       SELECT %(transfer)s, p.id, p.wallet_id, p.credit_type_id, %(org)s, %(amount)s, p.balance + %(amount)s, now()
       FROM orgs_membership m
       JOIN wallets_wallet w ON w.user_id = m.user_id AND w.kind = 'user'
       JOIN wallets_pocket p ON p.wallet_id = w.id AND p.credit_type_id = %(ct)s AND p.funding_org_id = %(org)s
       WHERE m.org_id = %(org)s AND m.status = 'active'
       UNION ALL
       SELECT %(transfer)s, %(org_pocket)s, %(org_wallet)s, %(ct)s, %(org)s, -%(total)s, %(after)s, now()""",
    # one UPDATE ... FROM of the member balances
    """UPDATE wallets_pocket p SET balance = p.balance + %(amount)s
       FROM orgs_membership m JOIN wallets_wallet w ON w.user_id = m.user_id AND w.kind = 'user'
       WHERE p.wallet_id = w.id AND p.credit_type_id = %(ct)s AND p.funding_org_id = %(org)s
         AND m.org_id = %(org)s AND m.status = 'active'""",
]


def baseline(org, org_wallet, org_pocket_id, ct) -> None:
    params = {"org": org.pk, "amount": AMOUNT, "ct": ct.pk, "org_pocket": org_pocket_id, "org_wallet": org_wallet.pk}
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(BASELINE_SQL[0], params)
        params["transfer"], params["total"] = cur.fetchone()
        cur.execute(BASELINE_SQL[1], params)
        (params["after"],) = cur.fetchone()
        cur.execute(BASELINE_SQL[2], params)
        cur.execute(BASELINE_SQL[3], params)


def app(org, ct, key) -> None:
    org_bulk_transfer(org=org, credit_type=ct, amount_per_member=AMOUNT, memo="bench", idempotency_key=key)


def analyze() -> None:
    """Fresh planner statistics, as autovacuum keeps them on a live database (bulk inserts just ran)."""
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def make_org(name: str, members: int):
    owner = user_create(email=f"owner-{name}@bench.example", password=None)
    org = org_create(name=name, owner=owner)
    bulk_members(org, members - 1, prefix=name)
    fund(org, members * AMOUNT * (2 * ROUNDS + 4))
    return org


def main() -> None:
    reset_ledger()
    ct = CreditType.objects.get(slug="org-allocated")
    print(f"Bulk transfer of {AMOUNT} credits to each of {MEMBERS:,} members, {ROUNDS} rounds, PostgreSQL")

    # Query count: the same at 100 members and at MEMBERS.
    counts = {}
    for size in (100, MEMBERS):
        org = make_org(f"q{size}", size)
        app(org, ct, "warm")
        with CaptureQueriesContext(connection) as ctx:
            app(org, ct, "counted")
        counts[size] = len(ctx.captured_queries)
    print(f"queries per bulk transfer: {counts[100]} at 100 members, {counts[MEMBERS]} at {MEMBERS:,} members")

    org = make_org("timed", MEMBERS)
    analyze()
    org_wallet = Wallet.objects.for_org(org)
    org_pocket_id = Pocket.objects.get(wallet=org_wallet, credit_type=ct, funding_org__isnull=True).pk
    start = time.perf_counter()
    app(org, ct, "first")  # creates the member pockets
    print(f"first bulk transfer (creates {MEMBERS:,} pockets): {(time.perf_counter() - start) * 1000:.1f} ms")
    baseline(org, org_wallet, org_pocket_id, ct)  # warm-up

    app_times, base_times = [], []
    for i in range(ROUNDS):
        start = time.perf_counter()
        app(org, ct, f"round-{i}")
        app_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        baseline(org, org_wallet, org_pocket_id, ct)
        base_times.append(time.perf_counter() - start)

    app_ms, base_ms = statistics.median(app_times) * 1000, statistics.median(base_times) * 1000
    print(f"org_bulk_transfer (app):  median {app_ms:.1f} ms  (min {min(app_times) * 1000:.1f})")
    print(f"hand-written SQL baseline: median {base_ms:.1f} ms  (min {min(base_times) * 1000:.1f})")
    ratio = app_ms / base_ms
    print(f"ratio app/baseline: {ratio:.2f}x  (target <= 2x: {'met' if ratio <= 2 else 'MISSED'})")
    problems = ledger_problems()
    print(f"verify_ledger: {'clean' if not problems else problems[:3]}")


if __name__ == "__main__":
    main()
