"""Server time and query count of the Transfer dialog for an org with 10,000 members.

Target: constant queries (same count at 10 and at 10,000 members) and < 100 ms server time.
Requests go through Django's full stack in-process (middleware, session, view, template), so the time is
the server's, without network. The baseline printed next to it is the same dialog for a 10-member org.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/credits_i4_bench python bench/transfer_dialog.py
    BENCH_MEMBERS=2000 BENCH_REQUESTS=10 ...   # smaller and quicker
"""

import os
import time

from _common import percentile, reset_ledger, setup

setup("credits_i4_bench")

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

from orgs.services import org_create, user_create  # noqa: E402
from tests.factories import bulk_members, fund  # noqa: E402

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "10000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "30"))
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "transfer-dialog"}


def analyze() -> None:
    """Fresh planner statistics, as autovacuum keeps them on a live database (bulk inserts just ran)."""
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def make_org(name: str, members: int):
    owner = user_create(email=f"owner-{name}@bench.example", password=None)
    org = org_create(name=name, owner=owner)
    bulk_members(org, members - 1, prefix=name)
    fund(org, 1_000_000)
    return org, owner


def cases(org):
    base = reverse("billing:transfer", args=[org.slug])
    return [
        ("dialog: One member", base, {"mode": "one"}),
        ("dialog: Selected", base, {"mode": "selected"}),
        ("dialog: All", base, {"mode": "all"}),
        ("type-ahead search", reverse("billing:transfer_members", args=[org.slug]), {"mode": "selected", "q": "7"}),
        (
            "preview (All)",
            reverse("billing:transfer_preview", args=[org.slug]),
            {"mode": "all", "credit_type": "org-allocated", "amount": "25"},
        ),
    ]


def measure(client, url, params) -> tuple[int, list[float]]:
    client.get(url, params, **HTMX)  # warm-up
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, params, **HTMX).status_code == 200
    queries = len(ctx.captured_queries)  # read now: later requests clear the connection's query log
    times = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        client.get(url, params, **HTMX)
        times.append((time.perf_counter() - start) * 1000)
    return queries, times


def main() -> None:
    reset_ledger()
    results = {}
    for size in (10, MEMBERS):
        org, owner = make_org(f"d{size}", size)
        analyze()
        client = Client()
        client.force_login(owner)
        results[size] = {label: measure(client, url, params) for label, url, params in cases(org)}
    print(f"Transfer dialog server time, {REQUESTS} requests each (htmx partial), PostgreSQL")
    print(f"{'':20} {'queries@10':>10} {f'queries@{MEMBERS:,}':>16} {'p50@10':>9} {f'p50@{MEMBERS:,}':>12} {'p95':>8}")
    worst = 0.0
    for label in results[10]:
        q_small, t_small = results[10][label]
        q_large, t_large = results[MEMBERS][label]
        p95 = percentile(t_large, 95)
        worst = max(worst, p95)
        flag = "" if q_small == q_large else "  <- query count grows!"
        print(
            f"{label:20} {q_small:>10} {q_large:>16} {percentile(t_small, 50):>8.1f}ms "
            f"{percentile(t_large, 50):>10.1f}ms {p95:>6.1f}ms{flag}"
        )
    print(f"worst p95 at {MEMBERS:,} members: {worst:.1f} ms (target < 100 ms: {'met' if worst < 100 else 'MISSED'})")


if __name__ == "__main__":
    main()
