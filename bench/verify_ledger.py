"""verify_ledger over 1,000,000 entries on PostgreSQL (target < 10 s).

Builds the data set with set-based SQL (500,000 two-leg transfers from one org wallet to 200 members,
BENCH_ENTRIES to change the size), fixes the cached balances to match, then times the command. The
baseline printed next to it is a bare `SELECT count(*), sum(amount)` scan of the entry table: the
least any full recomputation has to read.
"""

import io
import os
import time

from _common import reset_ledger, setup

ENTRIES = int(os.environ.get("BENCH_ENTRIES", 1_000_000))


def build(n_entries: int) -> None:
    from django.db import connection

    from orgs.services import org_create, user_create
    from tests.factories import bulk_members
    from wallets.models import CreditType, Wallet
    from wallets.services import org_credit_from_stripe, org_transfer_to_member

    org = org_create(name="Verify Org", owner=user_create(email="verify-owner@example.com", password=None))
    members = bulk_members(org, 200)
    ct = CreditType.objects.get(slug="org-allocated")
    org_credit_from_stripe(org=org, amount=10**12, memo="bench funding")
    for m in members:  # creates each member's pocket through the primitive
        org_transfer_to_member(org=org, membership_id=m.pk, credit_type=ct, amount=1)
    org_pocket = Wallet.objects.for_org(org).pockets.get()
    transfers = n_entries // 2
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE member_pockets AS SELECT row_number() OVER (ORDER BY id) - 1 AS i, id, wallet_id"
            " FROM wallets_pocket WHERE funding_org_id = %s AND NOT is_external",
            [org.pk],
        )
        cur.execute(
            """
            WITH t AS (
                INSERT INTO wallets_transfer (org_id, kind, memo, fingerprint, amount, created_at)
                SELECT %s, 'transfer', 'bench', 'bench', 1, now() - make_interval(secs => g)
                FROM generate_series(1, %s) g
                RETURNING id
            )
            INSERT INTO wallets_entry
                (transfer_id, pocket_id, wallet_id, credit_type_id, org_id, amount, balance_after, created_at)
            SELECT t.id, x.pocket_id, x.wallet_id, %s, %s, x.amount, 0, now()
            FROM t
            JOIN member_pockets mp ON mp.i = t.id %% 200
            CROSS JOIN LATERAL (VALUES (%s::bigint, %s::bigint, -1::bigint), (mp.id, mp.wallet_id, 1::bigint))
                AS x(pocket_id, wallet_id, amount)
            """,
            [org.pk, transfers, ct.pk, org.pk, org_pocket.pk, org_pocket.wallet_id],
        )
        cur.execute(
            """
            UPDATE wallets_pocket p SET balance = s.total
            FROM (SELECT pocket_id, SUM(amount) AS total FROM wallets_entry GROUP BY pocket_id) s
            WHERE p.id = s.pocket_id AND p.balance <> s.total AND NOT p.is_external
            """
        )
        cur.execute("ANALYZE wallets_entry; ANALYZE wallets_transfer; ANALYZE wallets_pocket")


def main():
    setup()
    reset_ledger()
    from django.core.management import call_command
    from django.db import connection

    t = time.perf_counter()
    build(ENTRIES)
    print(f"built {ENTRIES:,} entries in {time.perf_counter() - t:.1f}s")
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM wallets_entry")
        print(f"entries in the ledger: {cur.fetchone()[0]:,}")
        t = time.perf_counter()
        cur.execute("SELECT count(*), sum(amount) FROM wallets_entry")
        cur.fetchone()
        scan = time.perf_counter() - t
    out = io.StringIO()
    t = time.perf_counter()
    call_command("verify_ledger", stdout=out)
    elapsed = time.perf_counter() - t
    print(out.getvalue().strip())
    print(f"verify_ledger: {elapsed:.2f} s (target < 10 s) -> {'OK' if elapsed < 10 else 'MISSED'}")
    print(f"baseline, one bare scan of the entry table: {scan:.2f} s")


if __name__ == "__main__":
    main()
