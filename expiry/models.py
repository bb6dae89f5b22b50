"""Credit expiry (docs/expiry.md). The expiry itself is a ledger transfer (kind Expiry, into the external
Expired account) and needs no table of its own; an ExpiryNotice records that one person was told, once, that an
org's credits expire on a day."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from orgs.models import Organization, User


class ExpiryNotice(models.Model):
    """One email "credits expire on <day>" to one person about one org's credits, sent at most once: the unique
    (org, user, day) row is inserted in the transaction that schedules the email (on commit)."""

    org = models.ForeignKey(Organization, models.CASCADE, related_name="+", db_index=False)  # leads the unique
    user = models.ForeignKey(User, models.CASCADE, related_name="+")
    expires_on = models.DateField()
    # What the email said: the org wallet's expiring credits (owners and admins) and the person's own credits
    # funded by the org.
    org_credits = models.BigIntegerField(default=0)
    own_credits = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "user", "expires_on"], name="expiry_notice_once"),
            models.CheckConstraint(
                condition=Q(org_credits__gte=0, own_credits__gte=0) & (Q(org_credits__gt=0) | Q(own_credits__gt=0)),
                name="expiry_notice_credits",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} told {self.org}'s credits expire on {self.expires_on:%Y-%m-%d}"
