"""Low-balance alerts on the money path: single transfers from an org wallet with alert rules on it (and on every
member's wallet) against the same transfers without them, in the same run.

Target: with rules that the transfers do not cross, a transfer costs the same queries and at most 1.10x the time
of the same transfers with those rules' watches removed (an A/B on one org, alternating, so nothing but the
rules differs; the watches are read by the ledger statement itself). An org without rules is reported too.

A transfer that crosses a threshold also costs the alert task's INSERT after its commit (database queue, as in
production): one more autocommitted statement, so one more WAL flush, once per crossing (not per movement).
Reported beside it, without a target.

    python bench/alerts_transfer.py
    BENCH_MEMBERS=20 BENCH_ROUNDS=5 BENCH_PER_ROUND=200 ...

The runs alternate within each round; each figure is the median over rounds of the mean time per transfer.
"""

import os
import statistics
import time

from _common import reset_ledger, setup

setup("credits_alerts_bench")

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django_tasks_db.models import DBTaskResult  # noqa: E402

from alerts.models import AlertRule  # noqa: E402
from alerts.services import save_member_rule, save_org_rules  # noqa: E402
from orgs.services import org_create, user_create  # noqa: E402
from tests.factories import bulk_members, fund  # noqa: E402
from wallets.models import BalanceWatch, CreditType, Wallet  # noqa: E402
from wallets.selectors import ledger_problems  # noqa: E402
from wallets.services import org_credit_from_stripe, org_transfer_to_member  # noqa: E402

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "20"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PER_ROUND = int(os.environ.get("BENCH_PER_ROUND", "200"))
settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}  # the alert task is queued


def make_org(name: str):
    owner = user_create(email=f"owner-{name}@bench.example", password=None)
    org = org_create(name=name, owner=owner)
    members = bulk_members(org, MEMBERS, prefix=name)
    fund(org, 10_000_000)
    return org, owner, members


def run(org, members, ct, n: int, crossing: bool = False) -> float:
    """Mean seconds per transfer over n transfers. Crossing: each transfer takes the org's Org-allocated balance
    below its threshold, then a top-up (not timed) brings it back above."""
    total = 0.0
    for i in range(n):
        m = members[i % len(members)]
        start = time.perf_counter()
        org_transfer_to_member(org=org, membership_id=m.pk, credit_type=ct, amount=1)
        total += time.perf_counter() - start
        if crossing:
            org_credit_from_stripe(org=org, amount=1, memo="bench top-up")
    return total / n


def watched_wallets(org, members) -> list[int]:
    return [Wallet.objects.for_org(org).pk] + [Wallet.objects.for_user(m.user).pk for m in members]


def queries(org, members, ct) -> int:
    with CaptureQueriesContext(connection) as ctx:
        org_transfer_to_member(org=org, membership_id=members[0].pk, credit_type=ct, amount=1)
    return len(ctx)


def main() -> None:
    reset_ledger()
    ct = CreditType.objects.get(slug="org-allocated")
    plain, _, plain_members = make_org("plain")
    watched, owner, watched_members = make_org("watched")
    save_org_rules(org=watched, thresholds={None: 1_000, ct: 500}, actor=owner)
    for m in watched_members:
        save_member_rule(user=m.user, threshold=10**9)
    crossing, c_owner, crossing_members = make_org("crossing")
    # The balance sits exactly at the threshold: each 1-credit transfer crosses below, each top-up back above.
    save_org_rules(org=crossing, thresholds={ct: 10_000_000}, actor=c_owner)
    print(
        f"Single transfers of 1 credit, {MEMBERS} members per org, {ROUNDS} rounds x {PER_ROUND} transfers, "
        f"PostgreSQL; {AlertRule.objects.count()} alert rules"
    )
    DBTaskResult.objects.all().delete()  # the evaluations queued by the saves above, and earlier runs'
    for org, members in ((plain, plain_members), (watched, watched_members), (crossing, crossing_members)):
        run(org, members, ct, 50, crossing=org is crossing)  # warm-up, pockets
    q_plain, q_watched = queries(plain, plain_members, ct), queries(watched, watched_members, ct)
    print(f"queries per transfer: {q_plain} without rules, {q_watched} with rules (not crossed)")

    times = {"plain": [], "watched": [], "crossing": []}
    for _ in range(ROUNDS):
        times["plain"].append(run(plain, plain_members, ct, PER_ROUND))
        times["watched"].append(run(watched, watched_members, ct, PER_ROUND))
        times["crossing"].append(run(crossing, crossing_members, ct, PER_ROUND, crossing=True))
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"baseline (no rules): {med['plain']:.2f} ms per transfer")
    ratio = {k: v / med["plain"] for k, v in med.items()}
    print(f"rules, not crossed:  {med['watched']:.2f} ms = {ratio['watched']:.2f}x (other org)")
    print(f"crossing every time: {med['crossing']:.2f} ms = {ratio['crossing']:.2f}x (+1 INSERT and its commit)")
    queued = DBTaskResult.objects.filter(task_path="alerts.tasks.evaluate_alert").count()
    # The same org with its watches present and then removed, alternating: nothing differs but the rules.
    watches = BalanceWatch.objects.filter(wallet__in=watched_wallets(watched, watched_members))
    saved = list(watches.values("wallet_id", "credit_type_id", "threshold", "purpose", "ref_id"))
    ab = {"with": [], "without": []}
    for _ in range(ROUNDS):
        ab["with"].append(run(watched, watched_members, ct, PER_ROUND))
        watches.delete()
        ab["without"].append(run(watched, watched_members, ct, PER_ROUND))
        BalanceWatch.objects.bulk_create([BalanceWatch(**w) for w in saved])
    ab_med = {k: statistics.median(v) * 1000 for k, v in ab.items()}
    print(
        f"same org, {len(saved)} watches present vs removed: {ab_med['with']:.2f} vs {ab_med['without']:.2f} ms "
        f"= {ab_med['with'] / ab_med['without']:.2f}x (target <= 1.10x)"
    )
    expected = 2 * (50 + ROUNDS * PER_ROUND)  # below and back above, warm-up included
    print(f"alert tasks queued: {queued:,} of {expected:,} crossings (one per crossing, below and back above)")
    assert queued == expected, "every crossing must queue its alert task"
    assert q_watched == q_plain, "a transfer with alert rules must cost no extra query"
    assert not ledger_problems()


if __name__ == "__main__":
    main()
