"""Credit Requests tab: server time and query count at 10 and 10,000 pending requests.

Target: the same number of queries for 10 and 10,000 pending, and < 100 ms server time at
10,000. Baseline: the same page at 10 pending, and a naive page that renders every pending request
(no pagination) for contrast.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/credits_i6_bench python bench/credit_requests_tab.py
    CREDIT_REQUESTS_BENCH_N=2000 ...   # a smaller run
"""

import os
import statistics
import time

from _common import percentile, reset_ledger, setup

N = int(os.environ.get("CREDIT_REQUESTS_BENCH_N", "10000"))
RUNS = int(os.environ.get("CREDIT_REQUESTS_BENCH_RUNS", "30"))
TARGET_MS = 100


def main() -> None:
    setup("credits_i6_bench")
    from django.db import connection
    from django.template.loader import render_to_string
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from credit_requests.models import CreditRequest
    from tests.factories import OrgFactory, UserFactory, bulk_members, fund

    reset_ledger()
    owner = UserFactory(email="bench-owner@example.com")
    org = OrgFactory(name="Bench Org", owner=owner)
    fund(org, 1_000_000)
    members = bulk_members(org, 2_000)

    def add_pending(n: int) -> None:
        CreditRequest.objects.bulk_create(
            [
                CreditRequest(
                    org=org, membership=m, requester_id=m.user_id, amount=100 + i % 900, reason=f"Experiment {i}"
                )
                for i, m in ((i, members[i % len(members)]) for i in range(n))
            ],
            batch_size=5_000,
        )
        with connection.cursor() as cur:
            cur.execute("ANALYZE billing_creditrequest")

    client = Client()
    client.force_login(owner)
    url = reverse("billing:requests", args=[org.slug])

    def measure(label: str, path: str) -> tuple[float, int]:
        client.get(path)  # warm
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        p50, p95 = statistics.median(times), percentile(times, 95)
        print(f"{label:<44} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  queries {len(queries)}")
        return p95, len(queries)

    add_pending(10)
    print(f"Credit Requests tab, {RUNS} requests each (server time through the full Django stack):")
    _, q_small = measure("baseline: 10 pending", url)
    add_pending(N - 10)
    p95_first, q_large = measure(f"{N:,} pending, first page", url)
    last = -(-N // 25)
    p95_last, q_last = measure(f"{N:,} pending, last page (page={last})", f"{url}?page={last}")
    p95_hx, _ = measure(f"{N:,} pending, htmx list refresh", reverse("billing:requests_list", args=[org.slug]))

    # Contrast: what an unpaginated tab would cost (render every pending row).
    rows = list(
        CreditRequest.objects.filter(org=org, status="pending").select_related("requester").order_by("created_at")
    )

    class AllRows(list):
        object_list = property(lambda self: self)

    start = time.perf_counter()
    html = render_to_string("billing/_requests_list.html", {"org": org, "pending": AllRows(rows), "can_manage": True})
    assert html.count(">Approve</a>") == N
    naive = (time.perf_counter() - start) * 1000
    print(f"{'naive: all ' + format(N, ',') + ' rows in one page (render only)':<44} {naive:7.1f} ms")

    worst = max(p95_first, p95_last, p95_hx)
    print()
    print(
        f"queries: {q_small} at 10 pending, {q_large} at {N:,} (first page), {q_last} (last page) -> "
        f"{'constant' if q_small == q_large == q_last else 'NOT constant'}"
    )
    print(
        f"p95 at {N:,} pending: {worst:.1f} ms (target < {TARGET_MS} ms) -> {'met' if worst < TARGET_MS else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
