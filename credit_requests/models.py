"""Credit requests: a member asks their org for credits; an owner or admin decides."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from orgs.models import Membership, Organization
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
    (see credit_requests.services).
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
        db_table = "billing_creditrequest"  # the table keeps the name it had in the billing app
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
