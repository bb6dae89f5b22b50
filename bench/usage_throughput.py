"""Usage charges of ONE org's members at once: the service vs hand-written SQL, and vs the old path.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/credits_bench python bench/usage_throughput.py

8 worker processes (BENCH_WORKERS), each charging ITS OWN member of one org 1 credit at a time with a fresh
idempotency key, for BENCH_SECONDS (default 8) per run; BENCH_ROUNDS (default 3) rounds, the runs of a round
in alternation so that the machine's load swings hit every run alike, after a warm-up round of BENCH_WARMUP
seconds (default 2) per run that is not counted; medians are reported.

Runs, in each round:
- service: `wallets.services.member_charge_usage` as the app calls it: ONE statement (`wallets.ledger.post_usage`:
  membership lock, the member's pockets, the plan and the write), its own transaction; the external Usage pocket
  is neither locked nor updated;
- two-statement service: the charge as it was before that (bench/legacy/charge.py): BEGIN, a read that locks the
  membership and pockets, `post_transfer` with legs planned in Python, COMMIT;
- old service: the two-statement service with the ledger statement as it was before issue 20 (bench/legacy/
  post.py): it locked and updated the org's Usage pocket, the one row every charge of the org shared until COMMIT;
- SQL designs, hand-written, on tables of their own (bench_*), each one transaction per charge:
  - baseline: only the member-side work (lock the member pocket, update it, insert the two entries) — which
    is also the "no cached balance on the external account" design at its floor;
  - one hot row: the baseline plus locking and updating ONE shared usage row (the old design);
  - 16 buckets: the baseline plus locking and updating one of 16 usage rows picked by hashing the
    idempotency key (the other design the issue names).
With BENCH_DIAG=1, two more runs show where the service's time goes (docs/benchmarks.md):
- drawn statement, bare: the app's statement (wallets/sql/post_usage.sql) sent with bare psycopg in autocommit,
  without Django and the code around it;
- one-statement floor: a hand-written single statement on the app's tables for a single known pocket (lock the
  membership and the pocket, insert the transfer, update the pocket, insert the two entries): no plan over pockets.
Targets (issue 20): service >= 60% of the baseline, and >= 2x the old service. The ledger is verified after.
"""

import datetime
import multiprocessing as mp
import os
import statistics
import time
import uuid
import zlib

import psycopg
from _common import before_fork, reset_ledger, setup

SECONDS = float(os.environ.get("BENCH_SECONDS", 8))
WORKERS = int(os.environ.get("BENCH_WORKERS", 8))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
WARMUP = float(os.environ.get("BENCH_WARMUP", 2))
BUCKETS = 16

_NEW_CHECK = "wallets_pocket_external_not_cached"


def service_worker(args):
    org_id, membership_id, deadline, legacy = args
    from django.db import connection

    from orgs.models import Organization
    from wallets import ledger
    from wallets.services import member_charge_usage

    if legacy:
        # Imported here: bench/legacy imports wallets, which needs django.setup() (done by main) first.
        from legacy.charge import member_charge_usage
        from legacy.post import _post as legacy_post

        if legacy == "old":
            ledger._post = legacy_post
    connection.close()
    org = Organization.objects.get(pk=org_id)
    n = 0
    while time.time() < deadline:
        member_charge_usage(org=org, membership_id=membership_id, amount=1, idempotency_key=uuid.uuid4().hex)
        n += 1
    connection.close()
    return n


def sql_worker(args):
    dsn, member_pocket, usage_rows, external_row, deadline = args

    n = 0
    with psycopg.connect(dsn) as conn:
        while time.time() < deadline:
            key = uuid.uuid4().hex
            with conn.transaction(), conn.cursor() as cur:
                if usage_rows:
                    # Lock order as in the ledger: ascending id (usage rows are created after member pockets,
                    # so their ids are higher).
                    usage = usage_rows[zlib.crc32(key.encode()) % len(usage_rows)]
                    cur.execute(
                        "SELECT id FROM bench_upocket WHERE id IN (%s, %s) ORDER BY id FOR UPDATE",
                        [member_pocket, usage],
                    )
                    cur.execute("UPDATE bench_upocket SET balance = balance + 1 WHERE id = %s", [usage])
                else:
                    # No cached balance on the usage row: its entry references it (a KEY SHARE lock, which
                    # does not conflict with another charge's), nothing locks or updates it.
                    usage = external_row
                    cur.execute("SELECT id FROM bench_upocket WHERE id = %s FOR UPDATE", [member_pocket])
                cur.execute("UPDATE bench_upocket SET balance = balance - 1 WHERE id = %s", [member_pocket])
                cur.execute(
                    "INSERT INTO bench_uentry (pocket_id, amount, created_at) VALUES (%s, -1, now()), (%s, 1, now())",
                    [member_pocket, usage],
                )
            n += 1
    return n


# The app's drawn statement as it sends it for a wallet without balance watches (its unwatched form): set by main()
# once Django is set up, read by the forked bare workers.
DRAWN: dict[str, str] = {}

FLOOR = """
WITH m AS MATERIALIZED (SELECT m.id FROM orgs_membership m WHERE m.id = %(membership)s AND m.org_id = %(org)s
                        AND m.status = 'active' FOR UPDATE),
p AS MATERIALIZED (SELECT p.id, p.balance, p.wallet_id, p.credit_type_id FROM m, wallets_pocket p
                   WHERE p.id = %(pocket)s FOR UPDATE OF p),
t AS (INSERT INTO wallets_transfer (org_id, kind, actor_id, memo, idempotency_key, fingerprint, amount, created_at)
      SELECT %(org)s, 'usage', NULL, '', %(key)s, %(key)s, 1, now() FROM p WHERE p.balance >= 1
      ON CONFLICT DO NOTHING RETURNING id, created_at),
u AS (UPDATE wallets_pocket x SET balance = x.balance - 1 FROM t WHERE x.id = %(pocket)s RETURNING x.balance),
i AS (INSERT INTO wallets_entry (transfer_id, pocket_id, wallet_id, credit_type_id, org_id, amount, balance_after,
                                 created_at)
      SELECT t.id, p.id, p.wallet_id, p.credit_type_id, %(org)s, -1, u.balance, t.created_at FROM t, p, u
      UNION ALL
      SELECT t.id, %(upocket)s, %(uwallet)s, p.credit_type_id, %(org)s, 1, NULL, t.created_at FROM t, p
      RETURNING 1)
SELECT (SELECT id FROM t), (SELECT count(*) FROM i)
"""


def bare_worker(args):
    """BENCH_DIAG runs: one statement per charge with bare psycopg in autocommit (the app's, or the floor)."""
    dsn, which, org_id, membership_id, pocket_id, upocket_id, uwallet_id, deadline = args
    sql = FLOOR if which == "floor" else DRAWN["sql"]
    n = 0
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=0) as conn, conn.cursor() as cur:
        while time.time() < deadline:
            key = uuid.uuid4().hex
            params = {
                "membership": membership_id,
                "org": org_id,
                "pocket": pocket_id,
                "upocket": upocket_id,
                "uwallet": uwallet_id,
                "key": key,
                "today": datetime.date.today(),
                "amount": 1,
                "to_code": "usage",
                "never": datetime.date(9999, 12, 31),
                "kind": "usage",
                "actor": None,
                "memo": "",
                "fingerprint": key,
                "now": datetime.datetime.now(datetime.UTC),
            }
            cur.execute(sql, params)
            row = cur.fetchone()
            assert row[0 if which == "floor" else 2] is not None, row
            n += 1
    return n


def run(worker, make_args, seconds):
    before_fork()
    deadline = time.time() + seconds
    ctx = mp.get_context("fork")
    with ctx.Pool(WORKERS) as pool:
        counts = pool.map(worker, [make_args(i, deadline) for i in range(WORKERS)])
    return sum(counts) / seconds


def _set_old_schema(old: bool) -> None:
    """The old statement writes a cached balance on external pockets, which the new CHECK refuses: drop the
    CHECK for the old runs, then zero those balances and put it back (this bench's database only)."""
    from django.db import connection

    with connection.cursor() as cur:
        if old:
            cur.execute(f"ALTER TABLE wallets_pocket DROP CONSTRAINT IF EXISTS {_NEW_CHECK}")
        else:
            cur.execute("UPDATE wallets_pocket SET balance = 0 WHERE is_external AND balance <> 0")
            cur.execute(
                f"ALTER TABLE wallets_pocket DROP CONSTRAINT IF EXISTS {_NEW_CHECK}, "
                f"ADD CONSTRAINT {_NEW_CHECK} CHECK (balance = 0 OR NOT is_external)"
            )
    connection.close()


def main():
    url = setup()
    reset_ledger()
    from django.db import connection

    from orgs.services import org_create, user_create
    from tests.factories import bulk_members
    from wallets.ledger import _usage_statement
    from wallets.models import CreditType
    from wallets.services import org_bulk_transfer, org_credit_from_stripe

    DRAWN["sql"] = _usage_statement(watched=False)
    org = org_create(name="Bench Usage", owner=user_create(email="bench-owner@example.com", password=None))
    members = bulk_members(org, WORKERS)
    per_member = 10**9
    org_credit_from_stripe(org=org, amount=per_member * WORKERS, memo="bench funding")
    org_bulk_transfer(
        org=org,
        credit_type=CreditType.objects.get(slug="org-allocated"),
        amount_per_member=per_member,
        membership_ids=[m.pk for m in members],
    )
    membership_ids = [m.pk for m in members]
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_uentry, bench_upocket")
        cur.execute("CREATE TABLE bench_upocket (id bigserial PRIMARY KEY, balance bigint NOT NULL)")
        cur.execute(
            "CREATE TABLE bench_uentry (id bigserial PRIMARY KEY, pocket_id bigint NOT NULL REFERENCES bench_upocket,"
            " amount bigint NOT NULL, created_at timestamptz NOT NULL)"
        )
        # Member pockets 1..WORKERS, then the usage rows.
        cur.execute("INSERT INTO bench_upocket (balance) SELECT 1000000000000 FROM generate_series(1, %s)", [WORKERS])
        cur.execute("INSERT INTO bench_upocket (balance) SELECT 0 FROM generate_series(1, %s)", [BUCKETS])
    connection.close()
    dsn = url.replace("postgres://", "postgresql://", 1)
    usage_ids = list(range(WORKERS + 1, WORKERS + BUCKETS + 1))
    from wallets.models import ExternalCode, Pocket, Wallet
    from wallets.services import member_charge_usage

    member_charge_usage(org=org, membership_id=membership_ids[0], amount=1)  # the org's Usage pocket exists
    usage_wallet = Wallet.objects.external(ExternalCode.USAGE)
    usage_pocket = Pocket.objects.get(wallet=usage_wallet, funding_org=org).pk
    pockets = [Pocket.objects.get(wallet__user_id=m.user_id, funding_org=org).pk for m in members]
    connection.close()
    runs = {
        "service": lambda i, d: (org.pk, membership_ids[i], d, ""),
        "two-statement service": lambda i, d: (org.pk, membership_ids[i], d, "two"),
        "old service": lambda i, d: (org.pk, membership_ids[i], d, "old"),
        "SQL baseline (member side only; no cached external balance)": lambda i, d: (
            dsn,
            i + 1,
            [],
            usage_ids[0],
            d,
        ),
        "SQL one hot usage row": lambda i, d: (dsn, i + 1, usage_ids[:1], None, d),
        f"SQL {BUCKETS} usage buckets": lambda i, d: (dsn, i + 1, usage_ids, None, d),
    }
    if os.environ.get("BENCH_DIAG"):
        for which, name in (("drawn", "drawn statement, bare"), ("floor", "one-statement floor")):
            runs[name] = lambda i, d, w=which: (
                dsn,
                w,
                org.pk,
                membership_ids[i],
                pockets[i],
                usage_pocket,
                usage_wallet.pk,
                d,
            )
    rates: dict[str, list[float]] = {name: [] for name in runs}
    print(f"usage_throughput: {WORKERS} workers on {WORKERS} members of one org, {SECONDS:.0f}s x {ROUNDS} rounds")
    # Round 0 warms every run up for WARMUP seconds and is not counted: the first run of a fresh database (the
    # service's, which comes first) measured 20-50% below its later rounds.
    for r in range(-1 if WARMUP else 0, ROUNDS):
        for name, make_args in runs.items():
            legacy = name == "old service"
            if legacy:
                _set_old_schema(True)
            if name.endswith("service"):
                worker = service_worker
            elif name.startswith(("drawn", "one-statement")):
                worker = bare_worker
            else:
                worker = sql_worker
            rate = run(worker, make_args, WARMUP if r < 0 else SECONDS)
            if legacy:
                _set_old_schema(False)
            if r < 0:
                continue
            rates[name].append(rate)
            print(f"  round {r + 1}: {name}: {rate:,.0f} charges/s", flush=True)
    med = {name: statistics.median(v) for name, v in rates.items()}
    base = med["SQL baseline (member side only; no cached external balance)"]
    print("medians:")
    for name, rate in med.items():
        print(f"  {name}: {rate:,.0f} charges/s ({rate / base:.0%} of the SQL baseline)")
    service_ratio = med["service"] / base
    speedup = med["service"] / med["old service"]
    print(
        f"service / SQL baseline: {service_ratio:.0%} (target >= 60%) -> {'OK' if service_ratio >= 0.6 else 'MISSED'}"
    )
    print(f"service / old service: {speedup:.2f}x (target >= 2x) -> {'OK' if speedup >= 2 else 'MISSED'}")
    print(f"service / two-statement service: {med['service'] / med['two-statement service']:.2f}x")

    from django.core.management import call_command

    call_command("verify_ledger")
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_uentry, bench_upocket")


if __name__ == "__main__":
    main()
