"""Billing domain rows. Money never lives here: these rows point at ledger Transfers that moved it."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from orgs.models import Membership, Organization, User
from wallets.models import CreditType, Transfer

MAX_PENDING_REQUESTS_PER_MEMBER = 3


class CreditRequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class CreditRequest(models.Model):
    """A member asks their org for credits; an owner or admin approves (possibly for less) or rejects.

    An approval is paid by exactly one ledger Transfer (kind REQUEST_APPROVAL, idempotency key
    `request:<id>`), linked here. State changes happen only under a row lock on this row
    (see billing.requests).
    """

    org = models.ForeignKey(Organization, models.PROTECT, related_name="credit_requests")
    membership = models.ForeignKey(Membership, models.PROTECT, related_name="credit_requests")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="credit_requests")
    amount = models.BigIntegerField()
    reason = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=CreditRequestStatus.choices, default=CreditRequestStatus.PENDING)
    client_key = models.UUIDField(null=True, blank=True, help_text="Minted with the form; a double submit is a replay.")
    granted_amount = models.BigIntegerField(null=True, blank=True)
    credit_type = models.ForeignKey(CreditType, models.PROTECT, null=True, blank=True, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="decided_credit_requests"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=500, blank=True)
    transfer = models.OneToOneField(Transfer, models.PROTECT, null=True, blank=True, related_name="credit_request")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_creditrequest_amount_positive"),
            models.CheckConstraint(
                condition=Q(granted_amount__isnull=True)
                | (Q(granted_amount__gt=0) & Q(granted_amount__lte=F("amount"))),
                name="billing_creditrequest_granted_within_asked",
            ),
            # An approval is always paid by a transfer; nothing else has one.
            models.CheckConstraint(
                condition=(
                    Q(status="approved", transfer__isnull=False, granted_amount__isnull=False)
                    | (~Q(status="approved") & Q(transfer__isnull=True, granted_amount__isnull=True))
                ),
                name="billing_creditrequest_approved_has_transfer",
            ),
            models.CheckConstraint(
                condition=Q(status="pending", decided_at__isnull=True)
                | (~Q(status="pending") & Q(decided_at__isnull=False)),
                name="billing_creditrequest_decided_at",
            ),
            models.UniqueConstraint(
                fields=["membership", "client_key"],
                condition=Q(client_key__isnull=False),
                name="billing_creditrequest_client_key",
            ),
        ]
        indexes = [
            # The admin's queue: pending requests of one org, oldest first.
            models.Index(
                fields=["org", "created_at", "id"],
                condition=Q(status="pending"),
                name="billing_creq_pending_oldest",
            ),
            # History (newest decisions first) and the member's status panel.
            models.Index(F("org"), F("decided_at").desc(), name="billing_creq_decided"),
            models.Index(F("membership"), F("created_at").desc(), name="billing_creq_by_member"),
        ]

    def __str__(self) -> str:
        return f"Request #{self.pk}: {self.amount:,} by {self.requester_id} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == CreditRequestStatus.PENDING


# The API's models live in billing/api_models.py; importing them here registers them with the app.
from billing.api_models import ApiKey, ApiKeyScope, IdempotencyRecord, UsageCharge  # noqa: E402, F401

# --- Buying credits with Stripe Checkout: purchases, the Stripe events we processed, and what an org owes.
# Credits only ever move through `wallets.ledger.post_transfer`; these rows are the mutable business state
# that points at the (append-only) transfers.


class PurchaseStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    REFUNDED = "refunded", "Refunded"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    DISPUTED = "disputed", "Disputed"


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


class OutstandingBalance(models.Model):
    """Credits an org owes after a refund or dispute took back credits it had already given away or spent.

    The next purchase pays it first; transfers out of the org wallet are blocked while it is above zero.
    """

    org = models.OneToOneField(Organization, models.PROTECT, related_name="outstanding_balance")
    credits = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(credits__gte=0), name="billing_outstanding_not_negative")]

    def __str__(self) -> str:
        return f"{self.org}: {self.credits:,} credits outstanding"
