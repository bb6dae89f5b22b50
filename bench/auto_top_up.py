"""Auto top-up: what one automatic top-up costs, next to a Buy Credits fulfilment measured in the same run.

Each of N orgs has a saved card (the stand-in's 4242 card, saved through a setup-mode session) and "below
1,000, reach 5,000". Measured per org, on PostgreSQL, with the app's SDK answered in-process by the stand-in
(as on a server whose STRIPE_API_BASE is its own stand-in):

- baseline: Buy Credits' fulfilment of a paid checkout (re-fetch the session from "Stripe", credit once);
- top-up: `run_check` on a wallet below the threshold: lock, re-read, cap, attempt row, then the off-session
  PaymentIntent (one Stripe call) and the same fulfilment;
- no-op: `run_check` again right after (the balance is back above the threshold: lock, read, done).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/credits_bench python bench/auto_top_up.py
    AUTO_TOP_UP_BENCH_ORGS=50 python bench/auto_top_up.py
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import percentile, reset_ledger, setup

N_ORGS = int(os.environ.get("AUTO_TOP_UP_BENCH_ORGS", "100"))


def main() -> None:
    setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from devtools.stripe_standin import core
    from devtools.stripe_standin.models import StandinObject
    from orgs.services import org_create, user_create
    from purchases import auto_top_up, stripe_client
    from purchases.models import Purchase, TopUpAttempt, TopUpStatus
    from purchases.services import purchase_sync_session
    from wallets.models import Transfer, TransferKind
    from wallets.services import org_credit_from_stripe

    reset_ledger()
    StandinObject.objects.all().delete()
    settings.STRIPE_STANDIN_AUTODELIVER = False
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}  # checks run by hand

    orgs = []
    print(f"setting up {N_ORGS} orgs with a saved card ...", flush=True)
    for i in range(N_ORGS):
        owner = user_create(email=f"bench-tu-{i}@example.com", password=None)
        org = org_create(name=f"Top-up Bench {i}", owner=owner)
        customer = stripe_client.create_customer(org_id=org.pk, org_name=org.name, email="", idempotency_key=None)
        auto_top_up.AutoTopUp.objects.create(org=org, stripe_customer_id=customer["id"])
        session = stripe_client.create_setup_session(
            customer=customer["id"],
            org_id=org.pk,
            success_url="http://x/s",
            cancel_url="http://x/c",
            idempotency_key=f"bench-setup-{org.pk}-{time.time_ns()}",
        )
        core.save_card(session["id"], "4242424242424242")
        auto_top_up.finish_card_setup(stripe_client.retrieve_setup_session(session["id"]))
        auto_top_up.save_settings(
            org=org, user=owner, enabled=True, threshold=1_000, target=5_000, monthly_cap_cents=10_000_000
        )
        org_credit_from_stripe(org=org, amount=500, memo="bench")  # below the threshold
        orgs.append((org, owner))

    # Baseline: Buy Credits' fulfilment (re-fetch the paid session, credit once), per org.
    sessions = []
    for org, owner in orgs:
        purchase = Purchase.objects.create(org=org, created_by=owner, amount_cents=4_500, credits=4_500)
        session = core.create_session(
            {
                "mode": "payment",
                "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 4_500}}],
                "client_reference_id": str(purchase.pk),
                "metadata": {"org_id": str(org.pk), "purchase_id": str(purchase.pk)},
                "success_url": "http://x/s",
                "cancel_url": "http://x/c",
            },
            idempotency_key=None,
            base_url="http://x/",
            webhook_url="",
        )
        Purchase.objects.filter(pk=purchase.pk).update(stripe_session_id=session["id"])
        core.pay(session["id"])
        sessions.append(session["id"])
    base_ms = []
    for sid in sessions:
        t = time.perf_counter()
        purchase_sync_session(stripe_client.retrieve_checkout_session(sid))
        base_ms.append((time.perf_counter() - t) * 1000)
    # Put the wallets back below the threshold (the purchases above lifted them to 5,000).
    from wallets.ledger import leg, post_transfer
    from wallets.models import CreditType, ExternalCode, Wallet

    ct = CreditType.objects.get(slug="org-allocated")
    for org, _ in orgs:
        post_transfer(
            kind=TransferKind.REFUND,
            org=org,
            memo="bench reset",
            legs=[
                leg(Wallet.objects.for_org(org), ct, -4_500),
                leg(Wallet.objects.external(ExternalCode.STRIPE), ct, 4_500, funding_org=org),
            ],
        )

    top_ms, noop_ms, top_queries, noop_queries = [], [], [], []
    for org, _ in orgs:
        with CaptureQueriesContext(connection) as q:
            t = time.perf_counter()
            outcome = auto_top_up.run_check(org.pk)
            top_ms.append((time.perf_counter() - t) * 1000)
        assert outcome == "charging", outcome
        top_queries.append(len(q.captured_queries))
        with CaptureQueriesContext(connection) as q:
            t = time.perf_counter()
            outcome = auto_top_up.run_check(org.pk)
            noop_ms.append((time.perf_counter() - t) * 1000)
        assert outcome == "above threshold", outcome
        noop_queries.append(len(q.captured_queries))

    paid = TopUpAttempt.objects.filter(status=TopUpStatus.SUCCEEDED).count()
    credited = Transfer.objects.filter(kind=TransferKind.AUTO_TOP_UP).count()
    assert paid == credited == N_ORGS, (paid, credited)
    b50, t50, n50 = percentile(base_ms, 50), percentile(top_ms, 50), percentile(noop_ms, 50)
    print(f"orgs: {N_ORGS}; load avg {os.getloadavg()[0]:.1f}")
    print(f"Buy Credits fulfilment (baseline): p50 {b50:.2f} ms, p99 {percentile(base_ms, 99):.2f} ms")
    print(
        f"auto top-up (check + PaymentIntent + fulfilment): p50 {t50:.2f} ms, p99 {percentile(top_ms, 99):.2f} ms"
        f" = {t50 / b50:.2f}x baseline; queries {min(top_queries)}-{max(top_queries)}"
    )
    print(
        f"check with nothing to do: p50 {n50:.2f} ms = {n50 / b50:.2f}x baseline;"
        f" queries {min(noop_queries)}-{max(noop_queries)}"
    )
    print(f"top-ups paid {paid}, Auto top-up transfers {credited} (one each)")


if __name__ == "__main__":
    main()
