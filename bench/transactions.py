"""Bench: the Transactions page and its CSV export on one org with TX_BENCH_ROWS transfers (default
1,000,000, i.e. 1,000,000 org-wallet entries and 2,000,000+ entries in all).

Targets: first page and page 1,000 each < 100 ms server time with a constant query count;
CSV export of 1,000,000 rows >= 50,000 rows/s with peak RSS < 150 MB. Baselines printed next to them:
OFFSET pagination for page 1,000 (what keyset replaces) and the foundation's verify_ledger target
(< 10 s for 1,000,000 entries).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/credits_i8_bench TX_BENCH_ROWS=100000 \
        .venv/bin/python bench/transactions.py

The data is written with set-based SQL straight into wallets_transfer / wallets_entry (INSERTs are
allowed; the triggers forbid UPDATE/DELETE and unbalanced transfers), with running balance_after values
and matching pocket balances, so verify_ledger stays green. TX_BENCH_REUSE=1 keeps existing data.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, percentile, reset_ledger, setup

ROWS = int(os.environ.get("TX_BENCH_ROWS", 1_000_000))
MEMBERS = int(os.environ.get("TX_BENCH_MEMBERS", 1_000))
DAYS = 120  # spread over four months so the 90-day chart has history


def build(rows: int, members: int) -> None:
    from django.db import connection, transaction

    from orgs.models import Membership, User
    from orgs.services import org_create, user_create
    from wallets.models import CreditType, ExternalCode, Pocket, Wallet, WalletKind
    from wallets.services import org_bulk_transfer, org_credit_from_stripe

    reset_ledger()
    owner = user_create(email="owner@bench.example", password="bench", name="Bench Owner")
    org = org_create(name="Bench Org", owner=owner)
    users = User.objects.bulk_create([User(email=f"m{i}@bench.example", password="!") for i in range(members)])
    Wallet.objects.bulk_create([Wallet(kind=WalletKind.USER, user=u, name="Default wallet") for u in users])
    Membership.objects.bulk_create([Membership(org=org, user=u) for u in users])
    ct = CreditType.objects.get(slug="org-allocated")
    org_credit_from_stripe(org=org, amount=10**12, memo="opening balance")  # creates the org + Stripe pockets
    org_wallet = Wallet.objects.for_org(org)
    stripe = Wallet.objects.external(ExternalCode.STRIPE)
    member_wallets = list(Wallet.objects.filter(user__in=users).order_by("pk").values_list("pk", flat=True))
    Pocket.objects.bulk_create(
        [Pocket(wallet_id=w, credit_type=ct, funding_org=org) for w in member_wallets], ignore_conflicts=True
    )
    org_pocket = Pocket.objects.get(wallet=org_wallet, credit_type=ct, funding_org__isnull=True).pk
    stripe_pocket = Pocket.objects.get(wallet=stripe, credit_type=ct, funding_org=org).pk
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        # One transfer per g: every 10th a purchase (Stripe -> org), else a transfer org -> member g % M.
        cur.execute(
            """
            CREATE TEMP TABLE bench_t ON COMMIT DROP AS
            SELECT nextval(pg_get_serial_sequence('wallets_transfer', 'id')) AS id, g,
                   CASE WHEN g %% 10 = 0 THEN 'purchase' ELSE 'transfer' END AS kind,
                   CASE WHEN g %% 10 = 0 THEN 1000 ELSE 1 + g %% 7 END AS amount,
                   now() - make_interval(days => %(days)s) + (g * (%(days)s * 86400.0 / %(n)s)) * interval '1 second'
                       AS created_at
            FROM generate_series(1, %(n)s) g
            """,
            {"n": rows, "days": DAYS},
        )
        cur.execute(
            """
            INSERT INTO wallets_transfer (id, org_id, kind, actor_id, memo, idempotency_key, fingerprint, amount,
                                          created_at)
            SELECT id, %(org)s, kind, %(actor)s, 'bench ' || g, NULL, '', amount, created_at FROM bench_t
            """,
            {"org": org.pk, "actor": owner.pk},
        )
        cur.execute(
            "CREATE TEMP TABLE bench_mw ON COMMIT DROP AS "
            "SELECT (ord - 1) AS k, w AS wallet_id, p.id AS pocket_id "
            "FROM unnest(%s::bigint[]) WITH ORDINALITY u(w, ord) "
            "JOIN wallets_pocket p ON p.wallet_id = u.w AND p.funding_org_id = %s AND p.credit_type_id = %s",
            [member_wallets, org.pk, ct.pk],
        )
        cur.execute(
            """
            INSERT INTO wallets_entry (transfer_id, pocket_id, wallet_id, credit_type_id, org_id, amount,
                                       balance_after, created_at)
            SELECT l.transfer_id, l.pocket_id, l.wallet_id, %(ct)s, %(org)s, l.amount,
                   CASE WHEN NOT p.is_external  -- external pockets keep no running balance
                        THEN p.balance + SUM(l.amount) OVER (PARTITION BY l.pocket_id ORDER BY l.transfer_id) END,
                   l.created_at
            FROM (
                SELECT t.id AS transfer_id, t.created_at,
                       CASE WHEN t.kind = 'purchase' THEN %(sp)s ELSE %(op)s END AS pocket_id,
                       CASE WHEN t.kind = 'purchase' THEN %(sw)s ELSE %(ow)s END AS wallet_id,
                       -t.amount AS amount
                FROM bench_t t
                UNION ALL
                SELECT t.id, t.created_at,
                       CASE WHEN t.kind = 'purchase' THEN %(op)s ELSE mw.pocket_id END,
                       CASE WHEN t.kind = 'purchase' THEN %(ow)s ELSE mw.wallet_id END,
                       t.amount
                FROM bench_t t JOIN bench_mw mw ON mw.k = t.g %% %(m)s
            ) l JOIN wallets_pocket p ON p.id = l.pocket_id
            ORDER BY l.transfer_id, l.amount  -- entry ids follow time, as the primitive writes them
            """,
            {
                "ct": ct.pk,
                "org": org.pk,
                "sp": stripe_pocket,
                "op": org_pocket,
                "sw": stripe.pk,
                "ow": org_wallet.pk,
                "m": members,
            },
        )
        cur.execute(
            """
            UPDATE wallets_pocket p SET balance = p.balance + s.total
            FROM (SELECT e.pocket_id, SUM(e.amount) AS total FROM wallets_entry e JOIN bench_t t ON t.id = e.transfer_id
                  GROUP BY e.pocket_id) s
            WHERE p.id = s.pocket_id AND NOT p.is_external
            """
        )
    print(f"generated {rows:,} transfers ({2 * rows:,} entries) in {time.perf_counter() - start:.1f} s")
    # The newest row: a real bulk transfer to every member through the service (a 1,000-leg row on page 1).
    org_bulk_transfer(org=org, credit_type=ct, amount_per_member=5, actor=owner, memo="Monthly allocation")
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE wallets_transfer") if connection.get_autocommit() else None
        cur.execute("VACUUM ANALYZE wallets_entry") if connection.get_autocommit() else None


def measure_pages() -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from orgs.models import Organization, User
    from reporting.filters import TransactionFilter
    from reporting.queries import encode_cursor, transactions_page
    from wallets.models import Transfer

    org = Organization.objects.get(slug="bench-org")
    owner = User.objects.get(email="owner@bench.example")
    client = Client()
    client.force_login(owner)
    url = reverse("billing:transactions", args=[org.slug])

    def timed_get(path: str, runs: int = 7) -> tuple[float, int]:
        times, counts = [], set()
        for _ in range(runs):
            with CaptureQueriesContext(connection) as q:
                t0 = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.status_code
            counts.add(len(q))
        assert len(counts) == 1, counts
        return statistics.median(times), counts.pop()

    client.get(url)  # warm up
    first_ms, first_q = timed_get(url)
    # Follow the "Older" cursor 999 times to reach page 1,000 (the selector, as the view calls it).
    filt = TransactionFilter()
    cursor, step_times = None, []
    for _ in range(999):
        t0 = time.perf_counter()
        page = transactions_page(org, filt, cursor=cursor)
        step_times.append((time.perf_counter() - t0) * 1000)
        cursor = page.older_cursor
    deep_ms, deep_q = timed_get(f"{url}?cursor={cursor}")
    filtered_ms, filtered_q = timed_get(f"{url}?kind=transfer&member=m7@bench.example&min=2")
    # Baseline: OFFSET pagination to the same page.
    offset_times = []
    for _ in range(5):
        t0 = time.perf_counter()
        list(
            Transfer.objects.filter(org=org)
            .order_by("-created_at", "-id")
            .values_list("id", "created_at", "kind", "amount", "memo")[999 * 50 : 1000 * 50]
        )
        offset_times.append((time.perf_counter() - t0) * 1000)
    # The last page of the org (about 1,000,000 rows deep): OFFSET vs a keyset cursor that points there.
    deepest = Transfer.objects.filter(org=org).count() - 100
    t0 = time.perf_counter()
    offset_rows = list(
        Transfer.objects.filter(org=org)
        .order_by("-created_at", "-id")
        .values_list("created_at", "id")[deepest : deepest + 50]
    )
    anchor = offset_rows[0]
    offset_last_ms = (time.perf_counter() - t0) * 1000
    last_ms, last_q = timed_get(f"{url}?cursor={encode_cursor(anchor[0], anchor[1])}")
    billing_ms, billing_q = timed_get(reverse("billing:page", args=[org.slug]) + "?chart=90")
    return {
        "first_page_ms": first_ms,
        "first_page_queries": first_q,
        "page_1000_ms": deep_ms,
        "page_1000_queries": deep_q,
        "cursor_step_median_ms": statistics.median(step_times),
        "cursor_step_p95_ms": percentile(step_times, 95),
        "filtered_page_ms": filtered_ms,
        "filtered_page_queries": filtered_q,
        "offset_page_1000_query_ms": statistics.median(offset_times),
        "offset_last_page_query_ms": offset_last_ms,
        "keyset_last_page_ms": last_ms,
        "keyset_last_page_queries": last_q,
        "billing_page_90d_ms": billing_ms,
        "billing_page_queries": billing_q,
    }


def export_child() -> None:
    """Runs in its own process so ru_maxrss is the export's own peak memory."""
    from django.test import Client
    from django.urls import reverse

    from orgs.models import User

    client = Client()
    client.force_login(User.objects.get(email="owner@bench.example"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    response = client.get(reverse("billing:transactions_export", args=["bench-org"]))
    lines = size = 0
    first_byte = None
    for chunk in response.streaming_content:
        if first_byte is None:
            first_byte = time.perf_counter() - t0
        size += len(chunk)
        lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "rows": lines - 1,
                "seconds": elapsed,
                "first_byte_ms": (first_byte or 0) * 1000,
                "bytes": size,
                "rss_before_mb": rss_before / 1024,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main() -> None:
    url = setup("credits_i8_bench")
    if "--export-child" in sys.argv:
        export_child()
        return
    from wallets.models import Entry, Transfer

    if os.environ.get("TX_BENCH_REUSE") != "1" or not Transfer.objects.filter(org__slug="bench-org").exists():
        build(ROWS, MEMBERS)
    n_transfers = Transfer.objects.filter(org__slug="bench-org").count()
    n_entries = Entry.objects.count()
    print(f"data: {n_transfers:,} transfers in the org, {n_entries:,} entries in all")
    pages = measure_pages()
    print(
        f"first page:   {pages['first_page_ms']:.1f} ms, {pages['first_page_queries']} queries   (target < 100 ms)\n"
        f"page 1,000:   {pages['page_1000_ms']:.1f} ms, {pages['page_1000_queries']} queries   (target < 100 ms, "
        f"same count)\n"
        f"  cursor step (selector only): median {pages['cursor_step_median_ms']:.1f} ms, "
        f"p95 {pages['cursor_step_p95_ms']:.1f} ms\n"
        f"  baseline OFFSET 49,950 query alone: {pages['offset_page_1000_query_ms']:.1f} ms\n"
        f"deepest page (~{ROWS:,} rows in): keyset page {pages['keyset_last_page_ms']:.1f} ms, "
        f"{pages['keyset_last_page_queries']} queries; baseline OFFSET query alone "
        f"{pages['offset_last_page_query_ms']:.1f} ms\n"
        f"filtered page (kind+member+min): {pages['filtered_page_ms']:.1f} ms, "
        f"{pages['filtered_page_queries']} queries\n"
        f"Billing page with 90-day chart: {pages['billing_page_90d_ms']:.1f} ms, "
        f"{pages['billing_page_queries']} queries (budget 16: tests/web/test_billing_page.py)"
    )
    env = {**os.environ, "BENCH_DATABASE_URL": url}
    out = subprocess.run(
        [sys.executable, __file__, "--export-child"], env=env, capture_output=True, text=True, check=True
    ).stdout
    export = json.loads(out.strip().splitlines()[-1])
    rate = export["rows"] / export["seconds"]
    print(
        f"CSV export:   {export['rows']:,} rows in {export['seconds']:.1f} s = {rate:,.0f} rows/s "
        f"(target >= 50,000), first byte after {export['first_byte_ms']:.0f} ms, {export['bytes'] / 1e6:.0f} MB\n"
        f"  peak RSS {export['peak_rss_mb']:.0f} MB (target < 150 MB; the process held "
        f"{export['rss_before_mb']:.0f} MB with Django loaded before the export)"
    )
    t0 = time.perf_counter()
    verify = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "verify_ledger"],
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
    )
    print(
        f"verify_ledger: {time.perf_counter() - t0:.1f} s on {n_entries:,} entries, exit {verify.returncode} "
        f"(foundation target < 10 s for 1,000,000 entries): {verify.stdout.strip()[-200:]}"
    )


if __name__ == "__main__":
    main()
