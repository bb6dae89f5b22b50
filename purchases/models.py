"""Buying credits with Stripe Checkout: purchases and the Stripe events acted on.

Money never lives here: credits only move through `wallets.ledger.post_transfer`; these rows are the
mutable business state that points at the append-only transfers. The app keeps the Django label
`billing` so its tables and migration history keep their names.
"""

import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone

from orgs.models import Organization, User
from wallets.models import NEVER


class PurchaseStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    # The buyer pressed "Cancel checkout" (the session then expired at Stripe); "Expired" is Stripe's own timeout.
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    DISPUTED = "disputed", "Disputed"


_BADGES: dict[str, str] = {
    PurchaseStatus.PAID: "badge-ok",
    PurchaseStatus.PENDING: "badge-warn",
    PurchaseStatus.FAILED: "badge-bad",
    PurchaseStatus.REFUNDED: "badge-bad",
    PurchaseStatus.PARTIALLY_REFUNDED: "badge-bad",
    PurchaseStatus.DISPUTED: "badge-bad",
    PurchaseStatus.EXPIRED: "badge-neutral",
    PurchaseStatus.CANCELLED: "badge-neutral",
}


class Purchase(models.Model):
    """One Buy Credits checkout. Amount and credits are fixed server-side when the purchase starts."""

    org = models.ForeignKey(Organization, models.PROTECT, related_name="purchases")
    created_by = models.ForeignKey(User, models.PROTECT, null=True, blank=True, related_name="+")
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    credits = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=PurchaseStatus.choices, default=PurchaseStatus.PENDING)
    stripe_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    # The PURCHASE transfer that credited the org wallet (set once, when paid).
    transfer = models.OneToOneField("wallets.Transfer", models.PROTECT, null=True, blank=True, related_name="+")
    # Refunds: Stripe's cumulative amount_refunded, and the credits taken back for it (from the wallet, or
    # recorded as outstanding when the wallet no longer had them).
    refunded_cents = models.BigIntegerField(default=0)
    refunded_credits = models.BigIntegerField(default=0)
    # Disputes: the open or lost dispute, and the credits held for it (wallet part + outstanding part).
    dispute_id = models.CharField(max_length=255, blank=True)
    dispute_status = models.CharField(max_length=40, blank=True)
    dispute_held_credits = models.BigIntegerField(default=0)
    dispute_outstanding_credits = models.BigIntegerField(default=0)
    # Expiry (issue 19, docs/expiry.md): the day the bought credits expire, set once when they are credited from
    # the org's "purchased credits expire after N months" setting (null: never); a later change of the setting
    # does not change it. And the pockets (expiry day, credits) the dispute hold took from the org wallet: a won
    # dispute gives them back with the same days.
    credits_expire_on = models.DateField(null=True, blank=True)
    dispute_days = models.JSONField(default=list, blank=True)
    # Set by the cancel page's POST before it asks Stripe to expire the session: an expiry that follows reads
    # "Cancelled" (a paid session still becomes Paid).
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="billing_purchase_amount_positive"),
            models.CheckConstraint(condition=Q(credits__gt=0), name="billing_purchase_credits_positive"),
            models.CheckConstraint(
                condition=Q(refunded_cents__gte=0) & Q(refunded_cents__lte=models.F("amount_cents")),
                name="billing_purchase_refund_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(refunded_credits__gte=0)
                & Q(dispute_held_credits__gte=0)
                & Q(dispute_outstanding_credits__gte=0),
                name="billing_purchase_clawbacks_not_negative",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["paid", "refunded", "partially_refunded", "disputed"])
                | Q(transfer__isnull=False),
                name="billing_purchase_paid_has_transfer",
            ),
        ]
        indexes = [models.Index(fields=["org", "-created_at"], name="billing_purchase_org_recent")]

    def __str__(self) -> str:
        return f"Purchase #{self.pk} ${self.amount_cents / 100:,.2f} ({self.get_status_display()})"

    @property
    def dollars(self) -> str:
        return f"${self.amount_cents // 100:,}.{self.amount_cents % 100:02d}"

    @property
    def refunded_dollars(self) -> str:
        return f"${self.refunded_cents // 100:,}.{self.refunded_cents % 100:02d}"

    @property
    def net_cents(self) -> int:
        return self.amount_cents - self.refunded_cents

    # What was paid, as the shared refund/dispute code (services.sync_claims_*) sees it: the ledger key of the
    # credits it bought (refund and dispute keys extend it) and how memos name it.
    @property
    def ledger_key(self) -> str:
        return f"stripe:{self.stripe_session_id}"

    @property
    def claim_label(self) -> str:
        return f"purchase #{self.pk}"

    @property
    def expires_on(self) -> datetime.date:
        """The expiry day of the credits this bought (NEVER when they do not expire)."""
        return self.credits_expire_on or NEVER

    @property
    def net_credits(self) -> int:
        return self.credits - self.refunded_credits

    @property
    def net_dollars(self) -> str:
        return f"${self.net_cents // 100:,}.{self.net_cents % 100:02d}"

    @property
    def has_receipt(self) -> bool:
        """Paid at some point (a refunded or disputed payment keeps its receipt, which shows the refund)."""
        return self.transfer_id is not None

    @property
    def receipt_number(self) -> str:
        """The customer-facing number printed on the receipt: stable, one per paid purchase."""
        return f"CR-{self.pk:06d}"

    @property
    def badge(self) -> str:
        """The shared badge class for this status (static/css/app.css)."""
        return _BADGES.get(self.status, "badge-neutral")

    @property
    def is_settled(self) -> bool:
        """Nothing more will happen on the success page (credits landed, or the checkout ended unpaid)."""
        return self.status != PurchaseStatus.PENDING


class StripeEvent(models.Model):
    """Each Stripe event we acted on, once: the unique event id makes duplicates no-ops."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    purchase = models.ForeignKey(Purchase, models.PROTECT, null=True, blank=True, related_name="events")
    received_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


# ---------------------------------------------------------------- auto top-up (docs/auto-top-up.md)


class AutoTopUp(models.Model):
    """An org's auto top-up: its saved card (a Stripe customer + payment method) and "when the org wallet is
    below `threshold_credits`, buy enough to reach `target_credits`", at most `monthly_cap_cents` a month.

    The row is also the lock every top-up decision takes (docs/auto-top-up.md): `generation` numbers the
    crossings below the threshold; each crossing gets at most one in-flight attempt and its retries."""

    org = models.OneToOneField(Organization, models.PROTECT, related_name="auto_top_up")
    enabled = models.BooleanField(default=False)
    threshold_credits = models.BigIntegerField(null=True, blank=True)
    target_credits = models.BigIntegerField(null=True, blank=True)
    monthly_cap_cents = models.BigIntegerField(null=True, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    # The setup-mode Checkout Session last started to save a card (the return page and webhook finish it).
    setup_session_id = models.CharField(max_length=255, blank=True, db_index=True)
    payment_method_id = models.CharField(max_length=255, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    generation = models.PositiveIntegerField(default=1)
    # "YYYY-MM" of the last "monthly cap reached" email (sent once a month).
    cap_notified_month = models.CharField(max_length=7, blank=True)
    updated_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "billing_autotopup"
        constraints = [
            models.CheckConstraint(
                condition=Q(threshold_credits__isnull=True)
                | (
                    Q(threshold_credits__gte=0)
                    & Q(target_credits__gt=models.F("threshold_credits"))
                    & Q(monthly_cap_cents__gt=0)
                ),
                name="billing_autotopup_settings_valid",
            ),
            models.CheckConstraint(
                condition=Q(enabled=False) | (Q(threshold_credits__isnull=False) & ~Q(payment_method_id="")),
                name="billing_autotopup_enabled_needs_settings_and_card",
            ),
        ]

    def __str__(self) -> str:
        return f"Auto top-up of {self.org_id}"

    @property
    def has_card(self) -> bool:
        return bool(self.payment_method_id)

    @property
    def has_settings(self) -> bool:
        return self.threshold_credits is not None


class TopUpStatus(models.TextChoices):
    PENDING = "pending", "Processing"
    SUCCEEDED = "succeeded", "Paid"
    DECLINED = "declined", "Declined"
    NEEDS_AUTHENTICATION = "needs_authentication", "Needs authentication"
    SKIPPED_CAP = "skipped_cap", "Skipped: monthly cap"


_TOP_UP_BADGES: dict[str, str] = {
    TopUpStatus.PENDING.value: "badge-warn",
    TopUpStatus.SUCCEEDED.value: "badge-ok",
    TopUpStatus.DECLINED.value: "badge-bad",
    TopUpStatus.NEEDS_AUTHENTICATION.value: "badge-bad",
    TopUpStatus.SKIPPED_CAP.value: "badge-neutral",
}


class TopUpAttempt(models.Model):
    """One try at an automatic top-up: (org, crossing generation, try number) is unique, so one crossing can
    never start two charges, and its key names the Stripe idempotency key."""

    org = models.ForeignKey(Organization, models.PROTECT, related_name="top_up_attempts")
    auto_top_up = models.ForeignKey(AutoTopUp, models.PROTECT, related_name="attempts")
    generation = models.PositiveIntegerField()
    try_number = models.PositiveSmallIntegerField()
    credits = models.BigIntegerField()
    amount_cents = models.BigIntegerField()
    balance_before = models.BigIntegerField()
    status = models.CharField(max_length=24, choices=TopUpStatus.choices, default=TopUpStatus.PENDING)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    transfer = models.OneToOneField("wallets.Transfer", models.PROTECT, null=True, blank=True, related_name="+")
    # Refunds (Stripe's cumulative amount_refunded on the charge) and the credits taken back for them.
    refunded_cents = models.BigIntegerField(default=0)
    refunded_credits = models.BigIntegerField(default=0)
    # The paid charge, and its open or lost dispute with the credits held for it (wallet part + outstanding part),
    # exactly as on a Purchase: the same code (services.sync_claims_dispute) moves both.
    charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    dispute_id = models.CharField(max_length=255, blank=True)
    dispute_status = models.CharField(max_length=40, blank=True)
    dispute_held_credits = models.BigIntegerField(default=0)
    dispute_outstanding_credits = models.BigIntegerField(default=0)
    # Expiry of the bought credits and the days the dispute hold took, exactly as on a Purchase.
    credits_expire_on = models.DateField(null=True, blank=True)
    dispute_days = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "billing_topupattempt"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "generation", "try_number"], name="billing_topup_one_per_try"),
            models.CheckConstraint(condition=Q(credits__gt=0) & Q(amount_cents__gt=0), name="billing_topup_positive"),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | Q(transfer__isnull=False), name="billing_topup_paid_has_transfer"
            ),
            models.CheckConstraint(
                condition=Q(refunded_cents__gte=0)
                & Q(refunded_cents__lte=models.F("amount_cents"))
                & Q(refunded_credits__gte=0)
                & Q(refunded_credits__lte=models.F("credits")),
                name="billing_topup_refund_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(dispute_held_credits__gte=0)
                & Q(dispute_outstanding_credits__gte=0)
                & Q(
                    refunded_credits__lte=models.F("credits")
                    - models.F("dispute_held_credits")
                    - models.F("dispute_outstanding_credits")
                ),
                name="billing_topup_claims_within_credits",
            ),
        ]
        indexes = [models.Index(fields=["org", "-created_at"], name="billing_topup_org_recent")]

    def __str__(self) -> str:
        return f"Top-up #{self.pk} {self.credits:,} credits ({self.get_status_display()})"

    @property
    def dollars(self) -> str:
        return f"${self.amount_cents // 100:,}.{self.amount_cents % 100:02d}"

    @property
    def refunded_dollars(self) -> str:
        return f"${self.refunded_cents // 100:,}.{self.refunded_cents % 100:02d}"

    @property
    def badge(self) -> str:
        return _TOP_UP_BADGES.get(str(self.status), "badge-neutral")

    # What was paid, as the shared refund/dispute code (services.sync_claims_*) sees it, like Purchase.
    @property
    def ledger_key(self) -> str:
        return f"stripe:{self.payment_intent_id}"

    @property
    def claim_label(self) -> str:
        return f"auto top-up #{self.pk}"

    @property
    def expires_on(self) -> datetime.date:
        """The expiry day of the credits this bought (NEVER when they do not expire)."""
        return self.credits_expire_on or NEVER

    @property
    def idempotency_key(self) -> str:
        """Stripe's idempotency key for this try: derived from the org and the crossing (and the settings row's
        creation time, so a fresh database reusing ids never replays another database's charge)."""
        stamp = int(self.auto_top_up.created_at.timestamp() * 1_000_000)
        return f"auto-top-up:{self.org_id}:{self.generation}:{self.try_number}:{stamp}"
