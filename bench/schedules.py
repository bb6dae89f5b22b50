"""One scheduled allocation run to every member of a 10,000-member org vs the bulk transfer bench's SQL baseline.

Target: one scheduled run (`schedules.services.run_schedule`: lock the schedule, lock the members, one
SCHEDULED_ALLOCATION transfer through post_transfer, the run row) takes <= 2x the hand-written set-based SQL
baseline of bench/bulk_transfer.py (imported from there: the same four statements), measured in this
script; its query count does not grow with the member count; and 20 schedulers running at once for one
period apply it once.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/credits_i4_bench python bench/schedules.py
    BENCH_MEMBERS=1000 BENCH_ROUNDS=3 ...   # smaller and quicker

Both sides run in alternation, after one warm-up each (the first run also creates the member pockets,
reported separately); each app round is the next weekly period of the same schedule. Medians are compared.
"""

import statistics
import time
from datetime import date, timedelta

import bulk_transfer as bt  # sets Django up on the bulk-transfer bench's database; its baseline is the reference
from _common import reset_ledger
from django.db import connection
from django.test.utils import CaptureQueriesContext

from schedules.models import Schedule, ScheduleRun
from schedules.services import run_due, run_schedule, schedule_save
from tests.concurrency import race
from tests.factories import fund
from wallets.models import CreditType, Pocket, Transfer, TransferKind, Wallet
from wallets.selectors import ledger_problems

MEMBERS, ROUNDS, AMOUNT = bt.MEMBERS, bt.ROUNDS, bt.AMOUNT
START = date(2026, 1, 5)


def weekly(org, ct, name: str, *, mode: str = "add", amount: int = AMOUNT) -> Schedule:
    schedule = Schedule(
        org=org,
        name=name,
        recipients="all",
        credit_type=ct,
        amount=amount,
        mode=mode,
        cadence="weekly",
        start_date=START,
    )
    return schedule_save(schedule, today=START)


def period(k: int) -> date:
    return START + timedelta(weeks=k)


def main() -> None:
    reset_ledger()
    ct = CreditType.objects.get(slug="org-allocated")
    print(f"Scheduled run of {AMOUNT} credits to each of {MEMBERS:,} members, {ROUNDS} rounds, PostgreSQL")

    counts = {}
    for size in (100, MEMBERS):
        org = bt.make_org(f"sq{size}", size)
        schedule = weekly(org, ct, "counted")
        run_schedule(schedule.pk, today=period(0))  # warm: creates the pockets
        with CaptureQueriesContext(connection) as ctx:
            run_schedule(schedule.pk, today=period(1))
        counts[size] = len(ctx.captured_queries)
    print(f"queries per scheduled run: {counts[100]} at 100 members, {counts[MEMBERS]} at {MEMBERS:,} members")

    org = bt.make_org("stimed", MEMBERS)
    fund(org, MEMBERS * AMOUNT * (ROUNDS + 2))  # the schedule's rounds on top of the baseline's
    bt.analyze()
    org_wallet = Wallet.objects.for_org(org)
    org_pocket_id = Pocket.objects.get(wallet=org_wallet, credit_type=ct, funding_org__isnull=True).pk
    schedule = weekly(org, ct, "timed")
    start = time.perf_counter()
    run_schedule(schedule.pk, today=period(0))  # creates the member pockets
    print(f"first scheduled run (creates {MEMBERS:,} pockets): {(time.perf_counter() - start) * 1000:.1f} ms")
    bt.baseline(org, org_wallet, org_pocket_id, ct)  # warm-up

    app_times, base_times = [], []
    for i in range(1, ROUNDS + 1):
        start = time.perf_counter()
        report = run_schedule(schedule.pk, today=period(i))
        app_times.append(time.perf_counter() - start)
        assert report.applied == 1, report
        start = time.perf_counter()
        bt.baseline(org, org_wallet, org_pocket_id, ct)
        base_times.append(time.perf_counter() - start)

    app_ms, base_ms = statistics.median(app_times) * 1000, statistics.median(base_times) * 1000
    print(f"scheduled run (app):       median {app_ms:.1f} ms  (min {min(app_times) * 1000:.1f})")
    print(f"hand-written SQL baseline: median {base_ms:.1f} ms  (min {min(base_times) * 1000:.1f})")
    ratio = app_ms / base_ms
    print(f"ratio app/baseline: {ratio:.2f}x  (target <= 2x: {'met' if ratio <= 2 else 'MISSED'})")

    # Top-up mode: one more read (the members' balances, under the membership locks); reported, not targeted.
    topup = weekly(org, ct, "top-up", mode="top_up", amount=10**6)
    fund(org, MEMBERS * 10**6)
    start = time.perf_counter()
    run_schedule(topup.pk, today=period(0))
    print(f"top-up run (to 1,000,000 each): {(time.perf_counter() - start) * 1000:.1f} ms")

    # 20 schedulers at once for one period of a fresh schedule on the 10,000-member org: applied once.
    fresh = weekly(org, ct, "raced")
    before = Transfer.objects.filter(kind=TransferKind.SCHEDULED_ALLOCATION).count()
    start = time.perf_counter()
    results = race(20, lambda _i: run_due(today=period(0)))
    elapsed = (time.perf_counter() - start) * 1000
    errors = [r for r in results if isinstance(r, Exception)]
    made = Transfer.objects.filter(kind=TransferKind.SCHEDULED_ALLOCATION).count() - before
    runs = ScheduleRun.objects.filter(schedule=fresh).count()
    assert not errors and made == 1 and runs == 1, (errors, made, runs)
    print(f"20 concurrent schedulers, one period: {made} transfer, {runs} run row, {elapsed:.0f} ms")
    problems = ledger_problems()
    print(f"verify_ledger: {'clean' if not problems else problems[:3]}")


if __name__ == "__main__":
    main()
