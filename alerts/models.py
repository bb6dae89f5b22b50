"""Low-balance alerts: a threshold on a wallet's balance (one credit type, or the total) and the rule's
state, armed or fired. docs/alerts.md.

An org rule watches the org wallet (owners and admins are told); a member rule watches the member's own
Default wallet (the member is told). The state lives on the rule row, and only `alerts.tasks.evaluate_alert`
changes it, under a row lock on that row: armed -> fired sends the emails once; fired -> armed needs the
balance back at or above the threshold (hysteresis).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from orgs.models import Organization
from wallets.models import CreditType, Wallet

# Thresholds are whole credits from 1 (a threshold of 0 could never be crossed: balances never go below zero)
# to a trillion credits ($10,000,000,000), far above any balance and still exact in a BigInteger.
MIN_THRESHOLD = 1
MAX_THRESHOLD = 10**12

# The purpose of the alerts' balance watches (wallets.watches); their ref_id is the AlertRule's id.
WATCH_PURPOSE = "alert"


class AlertState(models.TextChoices):
    ARMED = "armed", "Armed"
    FIRED = "fired", "Fired"


class AlertRule(models.Model):
    """One threshold on one wallet balance. `org` set: the org's rule on its org wallet (credit_type null =
    the total over all credit types); `user` set: a member's personal rule on their Default wallet (total)."""

    org = models.ForeignKey(Organization, models.CASCADE, null=True, blank=True, related_name="alert_rules")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, null=True, blank=True, related_name="alert_rules"
    )
    wallet = models.ForeignKey(Wallet, models.CASCADE, related_name="alert_rules")
    credit_type = models.ForeignKey(CreditType, models.PROTECT, null=True, blank=True, related_name="+")
    threshold = models.BigIntegerField()
    state = models.CharField(max_length=8, choices=AlertState.choices, default=AlertState.ARMED)
    fired_at = models.DateTimeField(null=True, blank=True)
    last_balance = models.BigIntegerField(null=True, blank=True, help_text="The balance the last evaluation read.")
    evaluated_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(org__isnull=False, user__isnull=True) | Q(org__isnull=True, user__isnull=False),
                name="alerts_rule_org_or_user",
            ),
            # One rule per (wallet, credit type) and one on the total: a second save updates the first.
            models.UniqueConstraint(
                fields=["wallet", "credit_type"],
                condition=Q(credit_type__isnull=False),
                name="alerts_rule_one_per_type",
            ),
            models.UniqueConstraint(
                fields=["wallet"], condition=Q(credit_type__isnull=True), name="alerts_rule_one_total"
            ),
            models.CheckConstraint(
                condition=Q(threshold__gte=MIN_THRESHOLD, threshold__lte=MAX_THRESHOLD),
                name="alerts_rule_threshold_range",
            ),
            models.CheckConstraint(
                condition=Q(state=AlertState.ARMED) | Q(fired_at__isnull=False), name="alerts_rule_fired_has_time"
            ),
        ]

    def __str__(self) -> str:
        owner = self.org or self.user
        on = self.credit_type.name if self.credit_type is not None else "total"
        return f"{owner}: below {self.threshold:,} ({on}), {self.state}"

    @property
    def is_fired(self) -> bool:
        return self.state == AlertState.FIRED
