"""Hold + capture pairs against plain usage charges, in the same run.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/credits_bench python bench/holds.py

8 worker processes (BENCH_WORKERS), each on ITS OWN member of one org, for BENCH_SECONDS (default 8) per run;
BENCH_ROUNDS (default 3) rounds, the two runs of a round in alternation so that the machine's load swings hit
both alike, after a warm-up round of BENCH_WARMUP seconds (default 2) per run that is not counted (as
bench/usage_throughput.py: the usage charges of a fresh database's first round ran at half their later rate, which
put that round's ratio at 52-61% against 28-44% for the others); medians are reported.

Runs, in each round:
- usage (baseline): `wallets.services.member_charge_usage`, 1 credit, a fresh idempotency key each time;
- hold + capture: `holds.services.create_hold` (5 credits) then `holds.services.capture_hold` (3 of them: the
  rest goes back), each in its own transaction, as the API calls them: three ledger transfers per pair (the
  HOLD; then, in the capture's transaction, a HOLD_RELEASE of all 5 and a HOLD_CAPTURE of 3);
- with BENCH_SPLIT=1, also holds alone (`create_hold`, never captured), to show what the capture costs, and a hold
  followed by a plain usage charge of 3 instead of its capture: the ceiling any capture design could reach (a
  capture writes at least what a usage charge writes).
Target (issue 19): hold + capture pairs/s >= 50% of usage charges/s. The ledger is verified after, and the
Holds wallet is checked against the open holds.
"""

import multiprocessing as mp
import os
import statistics
import time
import uuid

from _common import before_fork, reset_ledger, setup

SECONDS = float(os.environ.get("BENCH_SECONDS", 8))
WORKERS = int(os.environ.get("BENCH_WORKERS", 8))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
WARMUP = float(os.environ.get("BENCH_WARMUP", 2))
SPLIT = os.environ.get("BENCH_SPLIT", "") not in ("", "0")


def _loop(args, make_step):
    """One worker process: `make_step()` (which imports what it calls, Django being set up by then) gives the step,
    run as `step(org, membership_id)` until the deadline; returns how many times it ran."""
    org_id, membership_id, deadline = args
    from django.db import connection

    from orgs.models import Organization

    connection.close()
    org = Organization.objects.get(pk=org_id)
    step = make_step()
    n = 0
    while time.time() < deadline:
        step(org, membership_id)
        n += 1
    connection.close()
    return n


def _key() -> str:
    return uuid.uuid4().hex


def _usage_step():
    from wallets.services import member_charge_usage

    return lambda org, mid: member_charge_usage(org=org, membership_id=mid, amount=1, idempotency_key=_key())


def _hold_capture_step():
    from holds.services import capture_hold, create_hold

    def step(org, mid):
        held = create_hold(org=org, membership_id=mid, amount=5, idempotency_key=_key())
        capture_hold(org=org, hold_id=held.hold.pk, amount=3)

    return step


def _hold_charge_step():
    """A hold, then a usage charge of 3 in place of its capture: the cheapest a capture could ever be (it must write at
    least a transfer like a usage charge, and find the hold besides). The ceiling of the pairs' ratio."""
    from holds.services import create_hold
    from wallets.services import member_charge_usage

    def step(org, mid):
        create_hold(org=org, membership_id=mid, amount=5, idempotency_key=_key())
        member_charge_usage(org=org, membership_id=mid, amount=3, idempotency_key=_key())

    return step


def _hold_only_step():
    from holds.services import create_hold

    return lambda org, mid: create_hold(org=org, membership_id=mid, amount=5, idempotency_key=_key())


def usage_worker(args):
    return _loop(args, _usage_step)


def hold_worker(args):
    return _loop(args, _hold_capture_step)


def hold_charge_worker(args):
    return _loop(args, _hold_charge_step)


def hold_only_worker(args):
    return _loop(args, _hold_only_step)


def run(worker, make_args, seconds=SECONDS):
    before_fork()
    deadline = time.time() + seconds
    ctx = mp.get_context("fork")
    with ctx.Pool(WORKERS) as pool:
        counts = pool.map(worker, [make_args(i, deadline) for i in range(WORKERS)])
    return sum(counts) / seconds


def main():
    setup()
    reset_ledger()
    from django.db import connection

    from orgs.services import org_create, user_create
    from tests.factories import bulk_members
    from wallets.models import CreditType
    from wallets.services import org_bulk_transfer, org_credit_from_stripe

    with connection.cursor() as cur:
        cur.execute("TRUNCATE holds_hold")
    org = org_create(name="Bench Holds", owner=user_create(email="bench-owner@example.com", password=None))
    members = bulk_members(org, WORKERS)
    per_member = 10**9
    org_credit_from_stripe(org=org, amount=per_member * WORKERS, memo="bench funding")
    org_bulk_transfer(
        org=org,
        credit_type=CreditType.objects.get(slug="org-allocated"),
        amount_per_member=per_member,
        membership_ids=[m.pk for m in members],
    )
    ids = [m.pk for m in members]
    runs = {"usage charge": usage_worker, "hold + capture": hold_worker}
    if SPLIT:
        runs["hold alone"] = hold_only_worker
        runs["hold + usage charge"] = hold_charge_worker
    rates: dict[str, list[float]] = {name: [] for name in runs}
    print(f"holds: {WORKERS} workers on {WORKERS} members of one org, {SECONDS:.0f}s x {ROUNDS} rounds")
    for r in range(-1 if WARMUP else 0, ROUNDS):
        for name, worker in runs.items():
            rate = run(worker, lambda i, d: (org.pk, ids[i], d), WARMUP if r < 0 else SECONDS)
            if r < 0:
                continue  # the warm-up round: not counted
            rates[name].append(rate)
            print(f"  round {r + 1}: {name}: {rate:,.0f}/s", flush=True)
    med = {name: statistics.median(v) for name, v in rates.items()}
    ratio = med["hold + capture"] / med["usage charge"]
    print("medians:")
    print(f"  usage charges: {med['usage charge']:,.0f}/s")
    print(f"  hold + capture pairs: {med['hold + capture']:,.0f}/s ({ratio:.0%} of usage charges)")
    # The same ratio round by round (each round's two runs side by side): less swayed by load swings between rounds.
    per_round = [h / u for h, u in zip(rates["hold + capture"], rates["usage charge"], strict=True)]
    print("  per round: " + ", ".join(f"{r:.0%}" for r in per_round) + f" (median {statistics.median(per_round):.0%})")
    if SPLIT:
        # Time per operation on the whole machine: what one capture costs next to one usage charge.
        capture = 1 / med["hold + capture"] - 1 / med["hold alone"]
        alone = med["hold alone"]
        print(f"  holds alone: {alone:,.0f}/s ({alone / med['usage charge']:.0%} of usage charges)")
        print(f"  one capture costs {capture * med['usage charge']:.1f} usage charges' time")
        ceiling = med["hold + usage charge"]
        reach = med["hold + capture"] / ceiling
        print(
            f"  hold + usage charge (the ceiling: a capture no dearer than a usage charge): {ceiling:,.0f}/s"
            f" ({ceiling / med['usage charge']:.0%} of usage charges); pairs reach {reach:.0%} of it"
        )
    print(f"hold + capture / usage: {ratio:.0%} (target >= 50%) -> {'OK' if ratio >= 0.5 else 'MISSED'}")

    from django.core.management import call_command

    from holds.selectors import holds_problems

    call_command("verify_ledger")
    problems = holds_problems()
    print("holds vs Holds wallet:", problems if problems else "OK")


if __name__ == "__main__":
    main()
