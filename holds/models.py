"""A hold: credits reserved from a member's pockets funded by an org until a job's cost is known (docs/holds.md).

The credits themselves move through the ledger (HOLD, HOLD_CAPTURE, HOLD_RELEASE transfers); this row is the
domain row the capture, void and expiry lock first, and its status says which of them won.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from orgs.models import Membership, Organization
from wallets.models import Transfer, Wallet

DEFAULT_EXPIRES_IN = 3600  # seconds: one hour
MAX_EXPIRES_IN = 7 * 24 * 3600  # seconds: seven days


class HoldStatus(models.TextChoices):
    OPEN = "open", "Open"
    CAPTURED = "captured", "Captured"
    VOIDED = "voided", "Voided"
    EXPIRED = "expired", "Expired"


class Hold(models.Model):
    org = models.ForeignKey(Organization, models.PROTECT, related_name="+")
    membership = models.ForeignKey(Membership, models.PROTECT, related_name="holds")
    # The member's Default wallet, whose pockets (funded by the org) the credits came from and go back to.
    wallet = models.ForeignKey(Wallet, models.PROTECT, related_name="+")
    # Which API key asked (no import of apikeys: features do not import each other; the API sets the id).
    api_key = models.ForeignKey("apikeys.ApiKey", models.SET_NULL, null=True, blank=True, related_name="+")
    amount = models.BigIntegerField()
    captured = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=HoldStatus.choices, default=HoldStatus.OPEN)
    description = models.CharField(max_length=500, blank=True)
    # [[credit type id, slug, credits, expiry day "YYYY-MM-DD"], ...] in draw order: what the HOLD transfer took
    # from each of the member's pockets (credit type and expiry day). Parts written before pockets had expiry
    # days have three items and mean NEVER (holds.services.hold_parts reads both).
    parts = models.JSONField(default=list)
    idempotency_key = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    hold_transfer = models.OneToOneField(Transfer, models.PROTECT, related_name="+")
    capture_transfer = models.OneToOneField(Transfer, models.PROTECT, null=True, blank=True, related_name="+")
    release_transfer = models.OneToOneField(Transfer, models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "idempotency_key"], name="holds_hold_one_per_key"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="holds_hold_amount_positive"),
            models.CheckConstraint(
                condition=Q(captured__gte=0) & Q(captured__lte=models.F("amount")), name="holds_hold_captured_in_range"
            ),
            models.CheckConstraint(
                condition=Q(status="open", closed_at__isnull=True, capture_transfer__isnull=True)
                | Q(status="captured", capture_transfer__isnull=False, closed_at__isnull=False)
                | Q(status__in=["voided", "expired"], release_transfer__isnull=False, closed_at__isnull=False),
                name="holds_hold_status_matches_transfers",
            ),
        ]
        indexes = [
            # The expiry task's scan and the "held" sums read only open holds.
            models.Index(fields=["expires_at"], condition=Q(status="open"), name="holds_open_by_expiry"),
            models.Index(fields=["membership"], condition=Q(status="open"), name="holds_open_by_member"),
        ]

    def __str__(self) -> str:
        return f"Hold {self.pk}: {self.amount} ({self.status})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


def expiry_from(seconds: int, now=None):
    return (now or timezone.now()) + timedelta(seconds=seconds)
