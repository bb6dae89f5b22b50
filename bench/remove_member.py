"""Target: removing a member with 1,000 pockets/entries takes < 200 ms.

Two shapes, each removed REPEAT times (default 5; BENCH_REMOVE_REPEAT shrinks it):
  A. a member whose Default wallet has SIZE entries (default 1,000; BENCH_REMOVE_SIZE) from this org, in both
     credit types, plus credits from another org that must stay;
  B. a member with SIZE pockets funded by this org (SIZE credit types), returned as one RETURN transfer.
Baseline: returning shape B's pockets one transfer per pocket (what a naive loop over pockets would do).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/credits_i7_bench python bench/remove_member.py
"""

import os
import statistics
import time

from _common import percentile, reset_ledger, setup

setup("credits_remove_bench")

from members import services as svc  # noqa: E402
from orgs.services import membership_add, org_create, user_create  # noqa: E402
from wallets.ledger import Leg, post_transfer  # noqa: E402
from wallets.models import CreditType, ExternalCode, Pocket, TransferKind, Wallet  # noqa: E402
from wallets.services import org_credit_from_stripe, org_transfer_to_member  # noqa: E402

SIZE = int(os.environ.get("BENCH_REMOVE_SIZE", "1000"))
REPEAT = int(os.environ.get("BENCH_REMOVE_REPEAT", "5"))


def member_with_entries(org, other, owner, n, i):
    user = user_create(email=f"entries{i}@example.com", password=None)
    m = membership_add(org=org, user=user)
    m_other = membership_add(org=other, user=user)
    types = list(CreditType.objects.filter(slug__in=["org-allocated", "promo"]))
    org_allocated = types[0] if types[0].slug == "org-allocated" else types[1]
    for k in range(n):
        ct = org_allocated
        org_transfer_to_member(org=org, membership_id=m.pk, credit_type=ct, amount=1 + k % 7)
    org_transfer_to_member(org=other, membership_id=m_other.pk, credit_type=org_allocated, amount=5)
    return m


def member_with_pockets(org, types, n, i):
    """One transfer gives the member one credit in each of n credit types: n pockets funded by org."""
    user = user_create(email=f"pockets{i}@example.com", password=None)
    m = membership_add(org=org, user=user)
    org_wallet, member_wallet = Wallet.objects.for_org(org), Wallet.objects.for_user(user)
    legs = [Leg(org_wallet.pk, ct.pk, -1, None) for ct in types[:n]]
    legs += [Leg(member_wallet.pk, ct.pk, 1, org.pk) for ct in types[:n]]
    post_transfer(kind=TransferKind.TRANSFER, org=org, legs=legs, memo="setup")
    return m


def timed_remove(org, owner, m):
    start = time.perf_counter()
    removal = svc.member_remove(org=org, membership_id=m.pk, actor=owner)
    elapsed = (time.perf_counter() - start) * 1000
    return elapsed, removal.returned


def main():
    reset_ledger()
    owner = user_create(email="owner@example.com", password=None)
    org = org_create(name="Bench Org", owner=owner)
    other = org_create(name="Other Org", owner=user_create(email="other@example.com", password=None))
    org_credit_from_stripe(org=org, amount=10**12, memo="bench")
    org_credit_from_stripe(org=other, amount=10**9, memo="bench")

    print(f"Shape A: member with {SIZE:,} entries from this org (+ credits from another org)")
    times_a = []
    for i in range(REPEAT):
        m = member_with_entries(org, other, owner, SIZE, i)
        ms, returned = timed_remove(org, owner, m)
        left = Pocket.objects.filter(wallet__user=m.user, funding_org=org, balance__gt=0).count()
        assert left == 0, "credits left behind"
        times_a.append(ms)
        print(f"  remove #{i + 1}: {ms:.1f} ms, returned {returned:,} credits")

    # Shape B: SIZE credit types, funded into the org wallet by one purchase-like transfer.
    existing = CreditType.objects.count()
    CreditType.objects.bulk_create(
        [CreditType(slug=f"bench-{k}", name=f"Bench type {k}", sort_order=10 + k) for k in range(SIZE)]
    )
    types = list(CreditType.objects.filter(slug__startswith="bench-").order_by("pk"))
    stripe = Wallet.objects.external(ExternalCode.STRIPE)
    org_wallet = Wallet.objects.for_org(org)
    amount = REPEAT * 2 + 5
    post_transfer(
        kind=TransferKind.PURCHASE,
        org=org,
        legs=[Leg(stripe.pk, ct.pk, -amount, org.pk, True) for ct in types]
        + [Leg(org_wallet.pk, ct.pk, amount, None) for ct in types],
        memo="bench types",
    )
    print(f"Shape B: member with {SIZE:,} pockets funded by this org ({SIZE:,} credit types, {existing} seeded)")
    times_b = []
    for i in range(REPEAT):
        m = member_with_pockets(org, types, SIZE, i)
        ms, returned = timed_remove(org, owner, m)
        times_b.append(ms)
        print(f"  remove #{i + 1}: {ms:.1f} ms, returned {returned:,} credits from {SIZE:,} pockets")

    # Baseline: the same return done one transfer per pocket.
    m = member_with_pockets(org, types, SIZE, REPEAT + 1)
    member_wallet = Wallet.objects.for_user(m.user)
    start = time.perf_counter()
    for ct in types:
        post_transfer(
            kind=TransferKind.RETURN,
            org=org,
            legs=[Leg(member_wallet.pk, ct.pk, -1, org.pk), Leg(org_wallet.pk, ct.pk, 1, None)],
        )
    baseline = (time.perf_counter() - start) * 1000

    print()
    print(f"TARGET   remove a member with {SIZE:,} pockets/entries: < 200 ms")
    print(
        f"RESULT A {SIZE:,} entries:  median {statistics.median(times_a):.1f} ms, "
        f"p95 {percentile(times_a, 95):.1f} ms, max {max(times_a):.1f} ms"
    )
    print(
        f"RESULT B {SIZE:,} pockets:  median {statistics.median(times_b):.1f} ms, "
        f"p95 {percentile(times_b, 95):.1f} ms, max {max(times_b):.1f} ms"
    )
    print(f"BASELINE B one transfer per pocket: {baseline:.1f} ms")
    ok = max(times_a) < 200 and max(times_b) < 200
    print("MET" if ok else "MISSED")


if __name__ == "__main__":
    main()
