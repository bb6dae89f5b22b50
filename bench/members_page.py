"""Target: the Members page runs a constant number of queries for 10 and 10,000 members.

Baseline: the same page with 10 members. Prints queries and time (median of REPEAT loads) for each size,
for the first page, a middle page, a name filter and the Pending invite filter.
BENCH_MEMBERS_SIZE shrinks the large org (default 10,000).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/credits_i7_bench python bench/members_page.py
"""

import os
import statistics
import time

from _common import reset_ledger, setup

os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")

setup("credits_members_bench")

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

from members import services as svc  # noqa: E402
from orgs.services import org_create, user_create  # noqa: E402
from tests.factories import bulk_members  # noqa: E402

LARGE = int(os.environ.get("BENCH_MEMBERS_SIZE", "10000"))
REPEAT = int(os.environ.get("BENCH_MEMBERS_REPEAT", "7"))


def measure(client, url, params):
    client.get(url, params)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    queries = len(ctx)  # read now: the next request resets the connection's query log
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        client.get(url, params)
        times.append((time.perf_counter() - start) * 1000)
    return queries, statistics.median(times)


def main():
    reset_ledger()
    owner = user_create(email="owner@example.com", password="pw")
    org = org_create(name="Bench Org", owner=owner)
    for i in range(20):
        svc.invitation_create(org=org, email=f"invitee{i}@example.com", role="member", actor=owner)
    client = Client()
    client.force_login(owner)
    url = reverse("members:page", args=[org.slug])
    views = [
        ("first page", {}),
        ("page 2", {"page": 2}),
        ("name filter", {"q": "bulk"}),
        ("pending", {"status": "pending"}),
    ]

    bulk_members(org, 9)
    small = {label: measure(client, url, params) for label, params in views}
    bulk_members(org, LARGE - 10)
    large = {label: measure(client, url, params) for label, params in views}

    print(f"Members page, baseline 10 members vs {LARGE:,} members (median of {REPEAT} loads)")
    flat = True
    for label, _ in views:
        (q10, t10), (qn, tn) = small[label], large[label]
        flat &= q10 == qn
        print(f"  {label:12s}  10: {q10} queries {t10:6.1f} ms   {LARGE:,}: {qn} queries {tn:6.1f} ms")
    print("TARGET constant query count: " + ("MET" if flat else "MISSED"))


if __name__ == "__main__":
    main()
