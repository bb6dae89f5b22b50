"""Compare Stripe with the ledger: paid Checkout Sessions without credits, and credits without a paid session;
likewise auto top-up's off-session charges (each TopUpAttempt's PaymentIntent, re-fetched), and tries left
unsettled.

Prints nothing (exit 0) when they agree; otherwise one line per problem (exit 1), so a cron job can alert.
An operator command: it needs shell access to the server and the Stripe secret key.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from purchases import stripe_client
from purchases.auto_top_up import STALE_PENDING
from purchases.models import Purchase, TopUpAttempt, TopUpStatus
from purchases.services import fmt_dollars
from wallets.models import Transfer, TransferKind


def _is_paid(session: dict) -> bool:
    return session.get("status") == "complete" and session.get("payment_status") in ("paid", "no_payment_required")


# A try still pending this long after it started should have been settled by its answer, its webhook or the sweep
# (which asks Stripe again after STALE_PENDING): worth a look.
UNSETTLED_AFTER = 30 * STALE_PENDING


def top_up_problems(since) -> list[str]:
    """Auto top-up's off-session charges. Stripe's side is each try's PaymentIntent, re-fetched (one call per try
    that has one): succeeded without credits, or credits without a succeeded PaymentIntent. A try with no
    PaymentIntent id never got Stripe's answer: listed when it stays pending past UNSETTLED_AFTER (the sweep asks
    again with the same idempotency key, which this read-only command never does). Plus Auto top-up transfers
    that no try links to."""
    problems = []
    attempts = TopUpAttempt.objects.filter(created_at__gte=since).select_related("org").order_by("created_at", "id")
    stale_before = timezone.now() - UNSETTLED_AFTER
    for attempt in attempts:
        who = f"auto top-up #{attempt.pk} ({attempt.org.name})"
        if not attempt.payment_intent_id:
            if attempt.status == TopUpStatus.PENDING and attempt.created_at < stale_before:
                problems.append(f"TOP-UP NOT SETTLED  {who}  {attempt.dollars}  no answer from Stripe")
            continue
        try:
            pi = stripe_client.retrieve_payment_intent(attempt.payment_intent_id)
        except stripe_client.StripeError as exc:
            if not stripe_client.is_not_found(exc):
                raise CommandError(f"Could not read {attempt.payment_intent_id} from Stripe: {exc}") from exc
            pi = {}
        paid = pi.get("status") == "succeeded"
        if paid and attempt.transfer_id is None:
            problems.append(f"PAID WITHOUT CREDITS  {attempt.payment_intent_id}  {attempt.dollars}  {who}")
        elif attempt.transfer_id is not None and not paid:
            problems.append(
                f"CREDITS WITHOUT PAID CHARGE  {who}  {attempt.credits:,} credits  payment intent "
                f"{attempt.payment_intent_id} is {pi.get('status', 'missing')}"
            )
        elif attempt.status == TopUpStatus.PENDING and attempt.created_at < stale_before:
            problems.append(
                f"TOP-UP NOT SETTLED  {who}  {attempt.dollars}  payment intent {attempt.payment_intent_id} "
                f"is {pi.get('status', 'missing')}"
            )
    linked = TopUpAttempt.objects.filter(transfer__isnull=False).values("transfer_id")
    orphans = Transfer.objects.filter(
        kind=TransferKind.AUTO_TOP_UP, created_at__gte=since, idempotency_key__startswith="stripe:"
    ).exclude(pk__in=linked)
    problems += [
        f"CREDITS WITHOUT PAID CHARGE  transfer #{t.pk}  {t.amount:,} credits  key {t.idempotency_key}" for t in orphans
    ]
    return problems


class Command(BaseCommand):
    help = (
        "List paid Stripe Checkout Sessions and auto top-up charges without credits, credits without a paid "
        "session or charge, and auto top-ups left unsettled (last N days)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="How far back to look (default 30).")

    def handle(self, *args, days: int, **options):
        if days <= 0:
            raise CommandError("--days must be a positive number of days.")
        since = timezone.now() - timedelta(days=days)
        try:
            sessions = {s["id"]: s for s in stripe_client.list_checkout_sessions(created_gte=int(since.timestamp()))}
        except stripe_client.StripeError as exc:
            raise CommandError(f"Could not list Checkout Sessions from Stripe: {exc}") from exc
        purchases = {
            p.stripe_session_id: p
            for p in Purchase.objects.filter(stripe_session_id__in=list(sessions)).select_related("org")
        }
        problems = []
        for sid, session in sessions.items():
            purchase = purchases.get(sid)
            ours = purchase is not None or (session.get("metadata") or {}).get("purchase_id")
            if ours and _is_paid(session) and (purchase is None or purchase.transfer_id is None):
                who = f"purchase #{purchase.pk} ({purchase.org.name})" if purchase else "no purchase row"
                problems.append(f"PAID WITHOUT CREDITS  {sid}  {fmt_dollars(session.get('amount_total') or 0)}  {who}")
        # Only checked-out purchases: a credited row without a session is a demo-seeded one (seed_demo), never
        # sent to Stripe; purchase_start always attaches the session before anything can credit it.
        credited = Purchase.objects.filter(
            transfer__isnull=False, stripe_session_id__isnull=False, created_at__gte=since
        ).select_related("org")
        for purchase in credited:
            session = sessions.get(purchase.stripe_session_id)
            if session is None:
                try:
                    session = stripe_client.retrieve_checkout_session(purchase.stripe_session_id)
                except stripe_client.StripeError:
                    session = {}
            if not _is_paid(session):
                problems.append(
                    f"CREDITS WITHOUT PAID SESSION  purchase #{purchase.pk} ({purchase.org.name})  "
                    f"{purchase.credits:,} credits  session {purchase.stripe_session_id} "
                    f"is {session.get('status', 'missing')}/{session.get('payment_status', '-')}"
                )
        linked = Purchase.objects.filter(transfer__isnull=False).values("transfer_id")
        orphans = Transfer.objects.filter(
            kind=TransferKind.PURCHASE, created_at__gte=since, idempotency_key__startswith="stripe:"
        ).exclude(pk__in=linked)
        problems += [
            f"CREDITS WITHOUT PAID SESSION  transfer #{t.pk}  {t.amount:,} credits  key {t.idempotency_key}"
            for t in orphans
        ]
        problems += top_up_problems(since)
        for line in problems:
            self.stdout.write(line)
        if problems:
            raise SystemExit(1)
