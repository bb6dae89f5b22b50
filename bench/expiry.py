"""The daily expiry over 100,000 expiring pockets: `expiry.services.run_expiry` vs hand-written set-based SQL.

Target (issue 19): the app's run takes <= 2x the baseline. The data: 50 orgs x 2,000 members; every member holds
100 Promo credits from their org expiring today and 100 Org-allocated credits that never expire, and every org
wallet 1,000 expiring Promo credits (100,050 expiring pockets among 200,100). It is written with set-based SQL
(one seed transfer per org from the external accounts, balancing the pockets), so the ledger verifies.

The app's run: the orgs with due pockets, then per org one locking read of its due pockets (ascending id) and one
post_transfer of kind Expiry (2,001 legs), its own transaction each. The baseline is the least work PostgreSQL
can do for the same result, in one transaction: lock every due pocket (ascending id), create the Expired
account's pockets, then one statement inserting a transfer per org and all the entries and setting the
balances to zero (no idempotency check, no fingerprint, no per-org transaction).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/credits_expiry_bench python bench/expiry.py
    BENCH_ORGS=10 BENCH_MEMBERS=500 BENCH_ROUNDS=1 ...   # smaller and quicker

Each round rebuilds the same data from scratch (TRUNCATE, then the set-up) before each side, so both start
from an identical fresh copy; the sides alternate which goes first. Medians are compared.
"""

import os
import statistics
import time

from _common import reset_ledger, setup

setup("credits_expiry_bench")

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from expiry.services import run_expiry  # noqa: E402
from wallets.models import ExternalCode, Pocket, Transfer, TransferKind, Wallet  # noqa: E402
from wallets.selectors import ledger_problems  # noqa: E402

ORGS = int(os.environ.get("BENCH_ORGS", "50"))
MEMBERS = int(os.environ.get("BENCH_MEMBERS", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
AMOUNT, ORG_AMOUNT = 100, 1_000

SETUP_SQL = [
    """INSERT INTO orgs_organization (name, slug, created_at, seats)
       SELECT 'Expiry org ' || g, 'expiry-org-' || g, now(), 0 FROM generate_series(1, %(orgs)s) g""",
    """INSERT INTO wallets_wallet (kind, org_id, user_id, code, name, created_at)
       SELECT 'org', id, NULL, '', name || ' org wallet', now() FROM orgs_organization""",
    """INSERT INTO orgs_user (password, is_superuser, email, name, is_staff, is_active, date_joined)
       SELECT '!', false, 'expiry' || g || '@bench.example', '', false, true, now()
       FROM generate_series(1, %(orgs)s * %(members)s) g""",
    """INSERT INTO wallets_wallet (kind, org_id, user_id, code, name, created_at)
       SELECT 'user', NULL, id, '', 'Default wallet', now() FROM orgs_user""",
    # Each user is a member of one org (users in id order, MEMBERS per org).
    """INSERT INTO orgs_membership (org_id, user_id, role, status, joined_at, has_seat, seat_assignments, removals,
                                   notice)
       SELECT o.id, u.id, 'member', 'active', now(), false, 0, 0, ''
       FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / %(members)s AS k FROM orgs_user) u
       JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM orgs_organization) o ON o.k = u.k""",
    # Pockets: per member the org's Promo expiring today and Org-allocated that never expires; per org wallet
    # Promo expiring today; the external Promotions and Stripe pockets the seed transfers draw from.
    """INSERT INTO wallets_pocket
           (wallet_id, credit_type_id, funding_org_id, org_id, is_external, expires_on, balance, created_at)
       SELECT w.id, ct.id, m.org_id, m.org_id, false,
              CASE WHEN ct.slug = 'promo' THEN %(day)s ELSE DATE '9999-12-31' END, %(amount)s, now()
       FROM orgs_membership m JOIN wallets_wallet w ON w.user_id = m.user_id AND w.kind = 'user'
       CROSS JOIN wallets_credittype ct WHERE ct.slug IN ('promo', 'org-allocated')
       UNION ALL
       SELECT w.id, ct.id, NULL, w.org_id, false, %(day)s, %(org_amount)s, now()
       FROM wallets_wallet w CROSS JOIN wallets_credittype ct WHERE w.kind = 'org' AND ct.slug = 'promo'
       UNION ALL
       SELECT x.id, ct.id, o.id, o.id, true, DATE '9999-12-31', 0, now()
       FROM orgs_organization o
       CROSS JOIN wallets_credittype ct
       JOIN wallets_wallet x ON x.kind = 'external'
            AND x.code = CASE WHEN ct.slug = 'promo' THEN 'promotions' ELSE 'stripe' END
       WHERE ct.slug IN ('promo', 'org-allocated')""",
    # One seed transfer per org and all the entries, in one statement (the entry trigger sees whole transfers).
    """WITH t AS (
           INSERT INTO wallets_transfer (org_id, kind, actor_id, memo, idempotency_key, fingerprint, amount, created_at)
           SELECT p.org_id, 'promo_grant', NULL, 'bench seed', NULL, 'bench', SUM(p.balance), now()
           FROM wallets_pocket p WHERE NOT p.is_external GROUP BY p.org_id
           RETURNING id, org_id
       )
       INSERT INTO wallets_entry (transfer_id, pocket_id, wallet_id, credit_type_id, org_id, amount, balance_after,
                                  created_at)
       SELECT t.id, p.id, p.wallet_id, p.credit_type_id, p.org_id, p.balance, p.balance, now()
       FROM wallets_pocket p JOIN t ON t.org_id = p.org_id WHERE NOT p.is_external
       UNION ALL
       SELECT t.id, x.id, x.wallet_id, x.credit_type_id, x.org_id, -s.total, NULL, now()
       FROM (SELECT org_id, credit_type_id, SUM(balance) AS total FROM wallets_pocket WHERE NOT is_external
             GROUP BY org_id, credit_type_id) s
       JOIN t ON t.org_id = s.org_id
       JOIN wallets_pocket x ON x.is_external AND x.org_id = s.org_id AND x.credit_type_id = s.credit_type_id""",
]

DUE = "expires_on <= %(day)s AND balance > 0 AND NOT is_external AND org_id IS NOT NULL"
BASELINE_SQL = [
    # lock every due pocket, in ascending id
    f"WITH l AS (SELECT id FROM wallets_pocket WHERE {DUE} ORDER BY id FOR UPDATE) SELECT count(*) FROM l",
    # the Expired account's pockets, one per org and credit type
    f"""INSERT INTO wallets_pocket
            (wallet_id, credit_type_id, funding_org_id, org_id, is_external, expires_on, balance, created_at)
        SELECT DISTINCT %(expired)s::bigint, credit_type_id, org_id, org_id, true, DATE '9999-12-31', 0, now()
        FROM wallets_pocket WHERE {DUE}
        ON CONFLICT DO NOTHING""",
    # a transfer per org, every entry, every balance to zero: one statement
    f"""WITH due AS (SELECT id, wallet_id, credit_type_id, org_id, balance FROM wallets_pocket WHERE {DUE}),
        t AS (
            INSERT INTO wallets_transfer
                (org_id, kind, actor_id, memo, idempotency_key, fingerprint, amount, created_at)
            SELECT org_id, 'expiry', NULL, 'baseline', 'expiry-baseline:' || org_id, 'baseline', SUM(balance), now()
            FROM due GROUP BY org_id
            RETURNING id, org_id
        ),
        e AS (
            INSERT INTO wallets_entry
                (transfer_id, pocket_id, wallet_id, credit_type_id, org_id, amount, balance_after, created_at)
            SELECT t.id, d.id, d.wallet_id, d.credit_type_id, d.org_id, -d.balance, 0, now()
            FROM due d JOIN t ON t.org_id = d.org_id
            UNION ALL
            SELECT t.id, x.id, x.wallet_id, x.credit_type_id, t.org_id, s.total, NULL, now()
            FROM (SELECT org_id, credit_type_id, SUM(balance) AS total FROM due GROUP BY org_id, credit_type_id) s
            JOIN t ON t.org_id = s.org_id
            JOIN wallets_pocket x ON x.wallet_id = %(expired)s AND x.credit_type_id = s.credit_type_id
                                 AND x.funding_org_id = s.org_id AND x.expires_on = DATE '9999-12-31'
        )
        UPDATE wallets_pocket p SET balance = 0 FROM due d WHERE p.id = d.id""",
]


def build(day) -> None:
    reset_ledger()
    params = {"orgs": ORGS, "members": MEMBERS, "day": day, "amount": AMOUNT, "org_amount": ORG_AMOUNT}
    with transaction.atomic(), connection.cursor() as cur:
        for sql in SETUP_SQL:
            cur.execute(sql, params)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")


def baseline(day) -> None:
    expired = Wallet.objects.external(ExternalCode.EXPIRED).pk
    with transaction.atomic(), connection.cursor() as cur:
        for sql in BASELINE_SQL:
            cur.execute(sql, {"day": day, "expired": expired})


def check(label: str, day) -> float:
    """Nothing due is left, one Expiry transfer per org, and verify_ledger is clean; returns verify's time."""
    due = Pocket.objects.filter(expires_on__lte=day, balance__gt=0, is_external=False).count()
    transfers = Transfer.objects.filter(kind=TransferKind.EXPIRY).count()
    start = time.perf_counter()
    problems = ledger_problems()
    elapsed = time.perf_counter() - start
    assert due == 0 and transfers == ORGS and not problems, (label, due, transfers, problems[:3])
    return elapsed


def main() -> None:
    day = timezone.localdate()
    expiring = ORGS * MEMBERS + ORGS
    print(f"Daily expiry of {expiring:,} pockets ({ORGS} orgs x {MEMBERS:,} members + org wallets), PostgreSQL")
    start = time.perf_counter()
    build(day)
    print(f"set-up (set-based SQL, {Pocket.objects.count():,} pockets): {time.perf_counter() - start:.1f} s")
    assert Pocket.objects.filter(expires_on__lte=day, balance__gt=0, is_external=False).count() == expiring

    app_times, base_times = [], []
    fresh = True  # the data just built; every later side rebuilds it
    for i in range(ROUNDS):
        sides = [("app", app_times), ("baseline", base_times)]
        for label, times in sides if i % 2 == 0 else sides[::-1]:
            if not fresh:
                build(day)
            fresh = False
            Wallet.objects.external(ExternalCode.EXPIRED)  # exists before timing, as in production
            start = time.perf_counter()
            if label == "app":
                run = run_expiry(day)
                assert (run.orgs, run.pockets, run.transfers) == (ORGS, expiring, ORGS), run
            else:
                baseline(day)
            times.append(time.perf_counter() - start)
            verify = check(label, day)
            print(f"  round {i + 1} {label}: {times[-1] * 1000:.0f} ms (then verify_ledger: clean, {verify:.1f} s)")

    again = time.perf_counter()
    repeat = run_expiry(day)
    again = (time.perf_counter() - again) * 1000
    assert repeat.pockets == 0
    app_ms, base_ms = statistics.median(app_times) * 1000, statistics.median(base_times) * 1000
    print(f"run_expiry (app):          median {app_ms:.0f} ms  (min {min(app_times) * 1000:.0f})")
    print(f"hand-written SQL baseline: median {base_ms:.0f} ms  (min {min(base_times) * 1000:.0f})")
    ratio = app_ms / base_ms
    print(f"ratio app/baseline: {ratio:.2f}x  (target <= 2x: {'met' if ratio <= 2 else 'MISSED'})")
    print(f"a second run the same day (nothing due): {again:.0f} ms")


if __name__ == "__main__":
    main()
