"""Auto top-up: when the org wallet falls below X credits, charge the saved card once for enough to reach Y.

Exactly once (docs/auto-top-up.md): every decision is taken under a lock on the org's AutoTopUp row, which
numbers the crossings below X (`generation`). A crossing starts at most one charge at a time: its tries are
TopUpAttempt rows, UNIQUE (org, generation, try), and each try's PaymentIntent carries the idempotency key
`auto-top-up:<org>:<generation>:<try>:…`, so a repeated call to Stripe returns the same PaymentIntent. Credits
land through the same fulfilment as Buy Credits (`services.credit_paid`, key `stripe:<PaymentIntent id>`),
from whichever comes first, the charge's answer or the `payment_intent.succeeded` webhook; the other is a
no-op. The monthly cap is checked under the same row lock, so concurrent triggers cannot exceed it.

Lock order, shared by every path: the AutoTopUp row, then the TopUpAttempt row, then (in the fulfilment) the
org's OutstandingBalance row and the pockets.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.tasks import task
from django.urls import reverse
from django.utils import timezone

from core.money import credits_and_dollars
from core.siteurl import absolute_url
from core.tasks import send_email
from orgs.models import Membership, MembershipStatus, Organization, Role
from purchases import stripe_client
from purchases.models import AutoTopUp, TopUpAttempt, TopUpStatus
from purchases.services import (
    LOST_DISPUTE,
    OPEN_DISPUTE,
    credit_paid,
    fmt_dollars,
    purchased_credits_expire_on,
    refund_is_new,
    sync_claims_dispute,
    sync_claims_refunds,
)
from wallets.models import Pocket, TransferKind, Wallet
from wallets.outstanding import lock_outstanding
from wallets.watches import unwatch, watch_balance

log = logging.getLogger("credits.auto_top_up")

PURPOSE = "auto_top_up"
# A declined card is tried again after these delays; the first try plus len(RETRY_DELAYS) retries, then stop.
RETRY_DELAYS = (timedelta(hours=1), timedelta(hours=6), timedelta(hours=24))
MAX_TRIES = len(RETRY_DELAYS) + 1
# Stripe's smallest card charge.
MIN_CHARGE_CENTS = 50
# A try whose Stripe call got no answer is asked again (same idempotency key) after this long.
STALE_PENDING = timedelta(minutes=2)
# Upper bounds of the settings (whole credits; the cap in cents): the purchase limit.
MAX_CREDITS = 100_000_000


# ---------------------------------------------------------------- amounts


def cents_for_credits(credits: int) -> int:
    """What `credits` cost, rounded up to a whole cent (never less than Stripe's minimum charge)."""
    per_usd = settings.CREDITS_PER_USD
    return max(-(-credits * 100 // per_usd), MIN_CHARGE_CENTS)


def credits_for_cents(cents: int) -> int:
    return cents * settings.CREDITS_PER_USD // 100


def month_start(now: datetime | None = None) -> datetime:
    """The first instant of the current calendar month (UTC): the monthly cap's window."""
    now = now or timezone.now()
    return now.astimezone(timezone.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def spent_this_month(org_id: int, now: datetime | None = None) -> int:
    """Cents of this month's tries that are paid or still in flight (what counts against the cap)."""
    return (
        TopUpAttempt.objects.filter(
            org_id=org_id,
            created_at__gte=month_start(now),
            status__in=[TopUpStatus.PENDING, TopUpStatus.SUCCEEDED],
        ).aggregate(total=Sum("amount_cents"))["total"]
        or 0
    )


# ---------------------------------------------------------------- reads


def auto_top_up_for(org: Organization) -> AutoTopUp | None:
    return AutoTopUp.objects.filter(org=org).first()


def recent_attempts(org: Organization, limit: int = 20) -> list[TopUpAttempt]:
    return list(TopUpAttempt.objects.filter(org=org).order_by("-created_at", "-id")[:limit])


def _org_wallet_id(org_id: int) -> int:
    wallet_id = Wallet.objects.filter(kind="org", org_id=org_id).values_list("id", flat=True).first()
    if wallet_id is None:
        wallet_id = Wallet.objects.for_org(Organization.objects.get(pk=org_id)).pk
    return wallet_id


def org_balance(org_id: int) -> int:
    """The org wallet's total (every credit type): what the threshold is compared with."""
    return (
        Pocket.objects.filter(wallet_id=_org_wallet_id(org_id), is_external=False).aggregate(t=Sum("balance"))["t"] or 0
    )


# ---------------------------------------------------------------- settings


def _lock_or_create(org: Organization) -> AutoTopUp:
    AutoTopUp.objects.get_or_create(org=org)
    return AutoTopUp.objects.select_for_update().get(org=org)


def save_settings(
    *, org: Organization, user, enabled: bool, threshold: int, target: int, monthly_cap_cents: int
) -> AutoTopUp:
    """Store validated settings (the form checked them; the table's CHECKs refuse anything else), watch the org
    wallet's total at the threshold, and look at the balance at once: a wallet already below X tops up now."""
    with transaction.atomic():
        row = _lock_or_create(org)
        row.threshold_credits, row.target_credits, row.monthly_cap_cents = threshold, target, monthly_cap_cents
        row.enabled = enabled and row.has_card
        row.updated_by = user if getattr(user, "pk", None) else None
        row.save()
        if row.enabled:
            # credit_type=None: the wallet's total over all its pockets (the Billing page's balance).
            watch_balance(wallet=Wallet.objects.for_org(org), threshold=threshold, purpose=PURPOSE, ref_id=row.pk)
            org_id = org.pk
            transaction.on_commit(lambda: check_auto_top_up.enqueue(org_id=org_id))
        else:
            unwatch(purpose=PURPOSE, ref_id=row.pk)
    log.info(
        "auto_top_up_settings org=%s enabled=%s x=%s y=%s cap=%s",
        org.pk,
        row.enabled,
        threshold,
        target,
        monthly_cap_cents,
    )
    return row


# ---------------------------------------------------------------- saving a card


def start_card_setup(*, org: Organization, user, success_url: str, cancel_url: str) -> str:
    """A Stripe customer for the org (once), then a Checkout Session in setup mode; returns its URL."""
    with transaction.atomic():
        row = _lock_or_create(org)
        if not row.stripe_customer_id:
            stamp = int(row.created_at.timestamp() * 1_000_000)
            customer = stripe_client.create_customer(
                org_id=org.pk,
                org_name=org.name,
                email=getattr(user, "email", ""),
                idempotency_key=f"auto-top-up-customer:{org.pk}:{stamp}",
            )
            row.stripe_customer_id = customer["id"]
            row.save(update_fields=["stripe_customer_id", "updated_at"])
    session = stripe_client.create_setup_session(
        customer=row.stripe_customer_id,
        org_id=org.pk,
        success_url=success_url,
        cancel_url=cancel_url,
        idempotency_key=f"auto-top-up-setup:{org.pk}:{uuid.uuid4().hex}",
    )
    AutoTopUp.objects.filter(pk=row.pk).update(setup_session_id=session["id"], updated_at=timezone.now())
    return session["url"]


def _id_of(value) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def finish_card_setup(session: dict, *, org: Organization | None = None) -> AutoTopUp | None:
    """Save the card of a completed setup-mode session (re-fetched from Stripe, expanded). Returns None when the
    session is not one of `org`'s (or of any org's): another org's session saves nothing. Idempotent."""
    if session.get("mode") != "setup":
        return None
    customer = _id_of(session.get("customer"))
    found = AutoTopUp.objects.filter(stripe_customer_id=customer).first() if customer else None
    if found is None or (org is not None and found.org_id != org.pk):
        return None
    if str((session.get("metadata") or {}).get("org_id")) != str(found.org_id):
        return None
    si = session.get("setup_intent")
    if session.get("status") != "complete" or not isinstance(si, dict) or si.get("status") != "succeeded":
        return found
    pm = si.get("payment_method")
    if isinstance(pm, str):
        pm = stripe_client.retrieve_payment_method(pm)
    if not isinstance(pm, dict) or _id_of(pm.get("customer")) != customer:
        return found
    card = pm.get("card") or {}
    with transaction.atomic():
        row = AutoTopUp.objects.select_for_update().get(pk=found.pk)
        if row.payment_method_id == pm["id"]:
            return row
        row.payment_method_id = pm["id"]
        row.card_brand = str(card.get("brand") or "card")[:32]
        row.card_last4 = str(card.get("last4") or "")[:4]
        row.card_exp_month = card.get("exp_month")
        row.card_exp_year = card.get("exp_year")
        # A new card starts a new crossing: a declined or unauthenticated try is not held against it.
        row.generation += 1
        row.save()
        if row.enabled:
            org_id = row.org_id
            transaction.on_commit(lambda: check_auto_top_up.enqueue(org_id=org_id))
    log.info("auto_top_up_card_saved org=%s pm=%s", row.org_id, row.payment_method_id)
    return row


# ---------------------------------------------------------------- deciding (the task)


def _start_try(row: AutoTopUp, try_number: int, balance: int, now: datetime) -> tuple[TopUpAttempt, bool]:
    """Create try `try_number` of the current crossing (under the row lock): a pending charge, or a skip when the
    monthly cap would be exceeded. Returns (attempt, charge it)."""
    shortfall = row.target_credits - balance
    cents = cents_for_credits(shortfall)
    credits = max(shortfall, credits_for_cents(cents))
    over_cap = spent_this_month(row.org_id, now) + cents > row.monthly_cap_cents
    attempt = TopUpAttempt.objects.create(
        org_id=row.org_id,
        auto_top_up=row,
        generation=row.generation,
        try_number=try_number,
        credits=credits,
        amount_cents=cents,
        balance_before=balance,
        status=TopUpStatus.SKIPPED_CAP if over_cap else TopUpStatus.PENDING,
        created_at=now,
    )
    return attempt, not over_cap


def run_check(org_id: int, now: datetime | None = None) -> str:
    """Look at the org's balance under the AutoTopUp row lock and start (at most) one try. Safe to run any
    number of times, late, and concurrently: what it does depends only on the locked state."""
    now = now or timezone.now()
    with transaction.atomic():
        row = AutoTopUp.objects.select_for_update().filter(org_id=org_id).first()
        if row is None or not row.enabled or not row.has_card or not row.has_settings:
            return "off"
        balance = org_balance(org_id)
        latest = TopUpAttempt.objects.filter(org_id=org_id, generation=row.generation).order_by("-try_number").first()
        if balance >= row.threshold_credits:
            if latest is not None and latest.status != TopUpStatus.PENDING:
                row.generation += 1  # the crossing is over; the next one starts afresh
                row.save(update_fields=["generation", "updated_at"])
            return "above threshold"
        next_try = 1
        if latest is not None:
            if latest.status == TopUpStatus.PENDING:
                return "in flight"
            if latest.status == TopUpStatus.NEEDS_AUTHENTICATION:
                return "needs authentication"
            if latest.status == TopUpStatus.DECLINED:
                if latest.try_number >= MAX_TRIES:
                    return "gave up"
                if latest.next_retry_at and latest.next_retry_at > now:
                    return "retry not due"
                next_try = latest.try_number + 1
            elif latest.status == TopUpStatus.SKIPPED_CAP and latest.created_at >= month_start(now):
                return "monthly cap"
            else:  # paid (and spent again), a skip of an earlier month, an error: a new crossing
                row.generation += 1
                row.save(update_fields=["generation", "updated_at"])
        attempt, charge = _start_try(row, next_try, balance, now)
        attempt_id = attempt.pk
        if charge:
            transaction.on_commit(lambda: charge_attempt(attempt_id))
            outcome = "charging"
        else:
            outcome = "monthly cap"
            month = month_start(now).strftime("%Y-%m")
            if row.cap_notified_month != month:
                row.cap_notified_month = month
                row.save(update_fields=["cap_notified_month", "updated_at"])
                _email_admins(row, attempt, "cap")
    log.info("auto_top_up_check org=%s balance=%s -> %s", org_id, balance, outcome)
    return outcome


def charge_attempt(attempt_id: int) -> TopUpAttempt | None:
    """Ask Stripe for the try's off-session charge (after the try's row committed, never under a lock), then
    settle the try from the PaymentIntent Stripe returned. Stripe unreachable: the try stays pending and the
    sweep asks again with the same idempotency key (one charge whatever happens)."""
    attempt = TopUpAttempt.objects.select_related("auto_top_up").filter(pk=attempt_id).first()
    if attempt is None or attempt.status != TopUpStatus.PENDING:
        return attempt
    row = attempt.auto_top_up
    try:
        pi = stripe_client.charge_saved_card(
            customer=row.stripe_customer_id,
            payment_method=row.payment_method_id,
            amount_cents=attempt.amount_cents,
            currency="usd",
            metadata={
                "purpose": PURPOSE,
                "org_id": str(attempt.org_id),
                "top_up_attempt": str(attempt.pk),
                "credits": str(attempt.credits),
            },
            idempotency_key=attempt.idempotency_key,
        )
    except stripe_client.StripeError as exc:
        if not stripe_client.is_refused(exc):
            log.warning("auto top-up %s: Stripe failed (%s); the sweep asks again", attempt.pk, exc)
            return attempt
        # Stripe refused the request itself (e.g. the saved card no longer exists): a failed try, like a decline
        # (email, back-off retries, which a newly saved card can pass).
        log.warning("auto top-up %s: Stripe refused the charge: %s", attempt.pk, exc)
        message = getattr(exc, "user_message", None) or str(exc)
        error = {"code": exc.code or "invalid_request", "message": message}
        failed = {"status": "canceled", "last_payment_error": error}
        return settle_payment_intent(failed, attempt_id=attempt.pk)
    return settle_payment_intent(pi, attempt_id=attempt.pk)


# ---------------------------------------------------------------- settling (the charge's answer and webhooks)


def attempt_for_payment_intent(pi: dict) -> TopUpAttempt | None:
    """The try a PaymentIntent pays: by its metadata (org + attempt id), else by its id."""
    meta = pi.get("metadata") or {}
    ref = str(meta.get("top_up_attempt", ""))
    if ref.isascii() and ref.isdigit():
        found = TopUpAttempt.objects.filter(pk=int(ref), org_id=meta.get("org_id") or 0).first()
        if found is not None:
            return found
    return TopUpAttempt.objects.filter(payment_intent_id=pi.get("id") or "-").first() if pi.get("id") else None


def _is_authentication(pi: dict) -> bool:
    err = pi.get("last_payment_error") or {}
    codes = {err.get("code"), err.get("decline_code")}
    return pi.get("status") == "requires_action" or "authentication_required" in codes


def settle_payment_intent(pi: dict, *, attempt_id: int | None = None) -> TopUpAttempt | None:
    """Move the try toward what the (re-fetched) PaymentIntent says. Only a pending try changes, once: paid ->
    credits through the Buy Credits fulfilment (key `stripe:<pi>`, so a replay credits nothing); declined ->
    email + the next retry; needs authentication -> email, no retry."""
    found = TopUpAttempt.objects.filter(pk=attempt_id).first() if attempt_id else attempt_for_payment_intent(pi)
    if found is None:
        return None
    with transaction.atomic():
        row = AutoTopUp.objects.select_for_update(of=("self",)).select_related("org").get(pk=found.auto_top_up_id)
        attempt = TopUpAttempt.objects.select_for_update().get(pk=found.pk)
        if attempt.status != TopUpStatus.PENDING:
            return attempt
        if pi.get("amount") is not None and pi["amount"] != attempt.amount_cents:
            log.error("payment intent %s amount %s != top-up %s", pi.get("id"), pi.get("amount"), attempt.pk)
            return attempt
        status = pi.get("status")
        known_pi = attempt.payment_intent_id
        attempt.payment_intent_id = pi.get("id") or attempt.payment_intent_id
        if status == "succeeded":
            # The day the credits expire is fixed now, once, under the try's row lock (docs/expiry.md).
            attempt.credits_expire_on = purchased_credits_expire_on(row.org)
            transfer = credit_paid(
                org=row.org,
                credits=attempt.credits,
                actor=None,
                memo=f"Auto top-up: {attempt.credits:,} credits for {attempt.dollars} (top-up #{attempt.pk})",
                key=f"stripe:{pi['id']}",
                label=f"auto top-up #{attempt.pk}",
                kind=TransferKind.AUTO_TOP_UP,
                expires_on=attempt.credits_expire_on,
            )
            attempt.transfer = transfer
            attempt.charge_id = _id_of(pi.get("latest_charge")) or attempt.charge_id
            attempt.status = TopUpStatus.SUCCEEDED
            if attempt.generation == row.generation:
                row.generation += 1  # this crossing is closed: the credits landed
                row.save(update_fields=["generation", "updated_at"])
            log.info("auto_top_up_paid attempt=%s org=%s credits=%s", attempt.pk, row.org_id, attempt.credits)
        elif status in ("requires_payment_method", "canceled", "requires_action") and (
            status != "requires_payment_method" or pi.get("last_payment_error")
        ):
            err = pi.get("last_payment_error") or {}
            attempt.failure_code = str(err.get("decline_code") or err.get("code") or status)[:64]
            attempt.failure_message = str(err.get("message") or "")[:500]
            if _is_authentication(pi):
                attempt.status = TopUpStatus.NEEDS_AUTHENTICATION
                _email_admins(row, attempt, "authentication")
            else:
                attempt.status = TopUpStatus.DECLINED
                if attempt.try_number < MAX_TRIES:
                    attempt.next_retry_at = attempt.created_at + RETRY_DELAYS[attempt.try_number - 1]
                    _schedule_retry(row.org_id, attempt.next_retry_at)
                _email_admins(row, attempt, "declined")
            log.info(
                "auto_top_up_failed attempt=%s status=%s code=%s", attempt.pk, attempt.status, attempt.failure_code
            )
        else:
            # Processing: the webhook settles it. Remember which PaymentIntent it is (reconcile_stripe asks Stripe).
            if attempt.payment_intent_id != known_pi:
                attempt.save(update_fields=["payment_intent_id", "updated_at"])
            return attempt
        attempt.save()
        return attempt


def attempt_for_charge(charge: dict) -> TopUpAttempt | None:
    """The try a (re-fetched) charge belongs to: by the charge id, else by its PaymentIntent. Like a purchase
    (`services._purchase_for_charge`), a refund or dispute that overtook the payment's own answer and webhook
    settles the try first, from the re-fetched PaymentIntent (found by its metadata when the try never learnt its
    id), so the credits it claims have landed."""
    charge_id, pi_id = _id_of(charge), _id_of(charge.get("payment_intent"))
    found = TopUpAttempt.objects.filter(charge_id=charge_id).first() if charge_id else None
    if found is None and pi_id:
        found = TopUpAttempt.objects.filter(payment_intent_id=pi_id).first()
    if pi_id and (found is None or found.status == TopUpStatus.PENDING):
        pi = stripe_client.retrieve_payment_intent(pi_id)
        if (pi.get("metadata") or {}).get("purpose") == PURPOSE:
            found = settle_payment_intent(pi) or found
    return found


def _lock_paid_attempt(found: TopUpAttempt) -> tuple[AutoTopUp, TopUpAttempt]:
    """Inside a transaction: the lock order of every auto top-up path (AutoTopUp row, then the attempt row); the
    caller then locks the org's outstanding balance."""
    row = AutoTopUp.objects.select_for_update(of=("self",)).select_related("org").get(pk=found.auto_top_up_id)
    attempt = TopUpAttempt.objects.select_for_update().get(pk=found.pk)
    attempt.org = row.org
    return row, attempt


def sync_refunds(charge: dict) -> TopUpAttempt | None:
    """Take back the credits for Stripe's cumulative `amount_refunded` on an auto top-up's charge: the Buy
    Credits code (`services.sync_claims_refunds`) on the attempt row, so a refund and a dispute never claim the
    same credits, and what the wallet no longer has becomes the outstanding balance. Never twice: the total only
    grows, and each step's ledger key names the refunded total."""
    found = attempt_for_charge(charge)
    if found is None or found.transfer_id is None:
        return found
    with transaction.atomic():
        _, attempt = _lock_paid_attempt(found)
        if not refund_is_new(attempt, charge):
            return attempt  # a duplicate or stale event
        sync_claims_refunds(attempt, charge, lock_outstanding(attempt.org_id))
        attempt.save()
        return attempt


def sync_dispute(dispute: dict, charge: dict) -> TopUpAttempt | None:
    """A dispute on an auto top-up's charge, exactly as on a purchase (`services.sync_claims_dispute`): open ->
    the disputed credits are held (Dispute hold; what the wallet no longer has becomes the outstanding balance),
    lost -> they stay taken, won -> released (Dispute release). The dispute and charge are re-fetched by the
    caller; the row locks, the claims recorded on the attempt and the ledger keys
    `stripe:<pi>:dispute:<id>:hold|release` make replays and concurrent deliveries move credits once.

    One thing more than a purchase: the card is not charged again by itself while its holder disputes a charge.
    When a dispute is first recorded on the attempt, auto top-up is turned off (the watch goes; the hold itself
    would otherwise cross the threshold and charge the disputed card at once). Turning it back on is the owner's
    choice on the settings page."""
    found = attempt_for_charge(charge)
    if found is None or found.transfer_id is None:
        return found
    with transaction.atomic():
        row, attempt = _lock_paid_attempt(found)
        known = attempt.dispute_id
        sync_claims_dispute(attempt, dispute, charge, lock_outstanding(attempt.org_id))
        attempt.save()
        if attempt.dispute_id != known and attempt.dispute_status in OPEN_DISPUTE | LOST_DISPUTE and row.enabled:
            row.enabled = False
            row.save(update_fields=["enabled", "updated_at"])
            unwatch(purpose=PURPOSE, ref_id=row.pk)
            log.warning("auto_top_up_off org=%s: dispute %s on top-up #%s", row.org_id, attempt.dispute_id, attempt.pk)
        return attempt


def _schedule_retry(org_id: int, run_after: datetime) -> None:
    """Enqueue the retry to run at `run_after` (a queue that can wait); the sweep also picks up due retries, so
    a backend that cannot defer (the tests' immediate one) or a lost task only delays it."""

    def enqueue():
        if check_auto_top_up.get_backend().supports_defer:
            check_auto_top_up.using(run_after=run_after).enqueue(org_id=org_id)

    transaction.on_commit(enqueue)


# ---------------------------------------------------------------- emails


def admin_emails(org_id: int) -> list[str]:
    return sorted(
        Membership.objects.filter(
            org_id=org_id, status=MembershipStatus.ACTIVE, role__in=[Role.OWNER, Role.ADMIN]
        ).values_list("user__email", flat=True)
    )


def _email_admins(row: AutoTopUp, attempt: TopUpAttempt, reason: str) -> None:
    org = row.org
    link = absolute_url(reverse("auto_top_up:page", kwargs={"org_slug": org.slug}))
    amount = f"{credits_and_dollars(attempt.credits)}, charged {attempt.dollars}"
    if reason == "declined":
        subject = f"Auto top-up declined for {org.name}"
        later = (
            f"We will try again at {attempt.next_retry_at:%Y-%m-%d %H:%M} UTC."
            if attempt.next_retry_at
            else "We will not try again for this drop in balance."
        )
        body = (
            f"The card ending {row.card_last4} was declined for an automatic top-up of {amount}. "
            f"No credits were added. {later}\n\nUpdate the card: {link}\n"
        )
    elif reason == "authentication":
        subject = f"Auto top-up needs your card's authentication ({org.name})"
        body = (
            f"The bank of the card ending {row.card_last4} asks for authentication (3-D Secure) before it pays "
            f"{amount}, which an automatic payment cannot give. No credits were added and we will not retry "
            f"this card. Save the card again (or another one) to authenticate it: {link}\n"
        )
    else:
        subject = f"Auto top-up paused: monthly cap reached ({org.name})"
        body = (
            f"An automatic top-up of {amount} would exceed this month's cap of "
            f"{fmt_dollars(row.monthly_cap_cents)}. Nothing was charged. Raise the cap or buy credits: {link}\n"
        )
    to = admin_emails(org.pk)
    if to:
        transaction.on_commit(lambda: send_email.enqueue(subject=subject, body=body, to=to))


# ---------------------------------------------------------------- the sweep (periodic safety net)

_BELOW_THRESHOLD = (
    f"SELECT a.org_id FROM {AutoTopUp._meta.db_table} a "
    f"JOIN {Wallet._meta.db_table} w ON w.kind = 'org' AND w.org_id = a.org_id "
    f"WHERE a.enabled AND a.threshold_credits > COALESCE((SELECT SUM(p.balance) FROM {Pocket._meta.db_table} p "
    "WHERE p.wallet_id = w.id AND NOT p.is_external), 0) ORDER BY a.org_id"
)


def sweep(now: datetime | None = None) -> dict:
    """Ask Stripe again for tries it never answered (same key: one charge), and look at every enabled org whose
    wallet is below its threshold (due retries, a missed signal, a new month after the cap)."""
    now = now or timezone.now()
    stale = list(
        TopUpAttempt.objects.filter(
            status=TopUpStatus.PENDING, payment_intent_id="", created_at__lt=now - STALE_PENDING
        ).values_list("pk", flat=True)[:100]
    )
    for pk in stale:
        charge_attempt(pk)
    with connection.cursor() as cursor:
        cursor.execute(_BELOW_THRESHOLD)
        org_ids = [r[0] for r in cursor.fetchall()]
    outcomes = {org_id: run_check(org_id, now) for org_id in org_ids}
    return {"stale": len(stale), "checked": outcomes}


# ---------------------------------------------------------------- tasks and the balance_crossed receiver


@task
def check_auto_top_up(org_id: int) -> str:
    """Run by the worker after a crossing, a settings save, a new card or a due retry."""
    return run_check(org_id)


@task
def sweep_auto_top_ups() -> dict:
    """Periodic (purchases/apps.py): every 5 minutes from `manage.py clock`."""
    out = sweep()
    return {"stale": out["stale"], "checked": {str(k): v for k, v in out["checked"].items()}}


def on_balance_crossed(sender, purpose: str, direction: str, ref_id: int, org_id=None, **kwargs) -> None:
    """`wallets.watches.balance_crossed` (sent on commit): enqueue the check, nothing else (one INSERT)."""
    if purpose != PURPOSE or direction != "below":
        return
    if org_id is None:
        org_id = AutoTopUp.objects.filter(pk=ref_id).values_list("org_id", flat=True).first()
    if org_id is not None:
        check_auto_top_up.enqueue(org_id=org_id)
