"""Buying credits with Stripe Checkout: purchases and the Stripe events acted on.

Money never lives here: credits only move through `wallets.ledger.post_transfer`; these rows are the
mutable business state that points at the append-only transfers. The app keeps the Django label
`billing` so its tables and migration history keep their names.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from orgs.models import Organization, User


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
