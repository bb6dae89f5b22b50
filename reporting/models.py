"""The daily usage rollup the Usage page reads (docs/usage.md#the-usage-page).

`UsageDay` holds, for each (org, member's Default wallet, UTC day) with usage, the credits used that day
paid by the org: the same sum reporting/sql/usage_by_member.sql makes from the ledger, stored once.
`UsageWeek` (per member and ISO week) and `UsageOrgDay` (per org and day) are sums of UsageDay kept beside
it, so a page reads few rows. `UsageRollup` is one row: `rolled_until`, the first UTC day NOT rolled up.
Days before it are read from these tables; entries from it on (the live tail, about a day at most) are
summed from the ledger on each read, so the page is exact whatever the rollup's progress.

Nothing on the hot usage-charge path writes here (no trigger on wallets_entry): the periodic task
reporting.tasks.roll_up_usage fills whole days that ended more than ROLLUP_LAG ago. Re-rolling a day
recomputes it from the ledger and upserts by the unique (org, wallet, day): running it twice, or two
workers at once, leaves the same rows.
"""

from django.db import models

from orgs.models import Organization
from wallets.models import Wallet


class UsageDay(models.Model):
    org = models.ForeignKey(Organization, models.CASCADE, related_name="+", db_index=False)
    wallet = models.ForeignKey(Wallet, models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    credits = models.BigIntegerField()

    class Meta:
        constraints = [
            # Exactly one row per (org, wallet, day): the rollup's upsert key. Its index (org first) also
            # serves the "this org, these days" scans when the range is short.
            models.UniqueConstraint(fields=["org", "wallet", "day"], name="reporting_usageday_one_per_day"),
            models.CheckConstraint(condition=models.Q(credits__gt=0), name="reporting_usageday_positive"),
        ]
        indexes = [
            # The page's scan: one org's days in a range, covering (wallet, credits): an index-only scan.
            models.Index(fields=["org", "day"], include=["wallet", "credits"], name="reporting_usageday_org_day"),
        ]

    def __str__(self) -> str:
        return f"org {self.org_id} wallet {self.wallet_id} {self.day}: {self.credits:,}"


class UsageWeek(models.Model):
    """The same per (org, wallet, ISO week starting `week`, a Monday): UsageDay's rows of that week summed, so
    a 30-day page reads 4 rows a member, not 30. A week is read only once all its days are rolled up."""

    org = models.ForeignKey(Organization, models.CASCADE, related_name="+", db_index=False)
    wallet = models.ForeignKey(Wallet, models.CASCADE, related_name="+", db_index=False)
    week = models.DateField()
    credits = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "wallet", "week"], name="reporting_usageweek_one_per_week"),
        ]
        indexes = [
            models.Index(fields=["org", "week"], include=["wallet", "credits"], name="reporting_usageweek_org_week"),
        ]

    def __str__(self) -> str:
        return f"org {self.org_id} wallet {self.wallet_id} week of {self.week}: {self.credits:,}"


class UsageOrgDay(models.Model):
    """The org's usage per UTC day (UsageDay summed over members): the page's per-day chart and table."""

    org = models.ForeignKey(Organization, models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    credits = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "day"], name="reporting_usageorgday_one_per_day")]

    def __str__(self) -> str:
        return f"org {self.org_id} {self.day}: {self.credits:,}"


class UsageRollup(models.Model):
    """The rollup's watermark: one row (id 1). Days before `rolled_until` are in UsageDay."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    rolled_until = models.DateField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="reporting_usagerollup_singleton")]

    def __str__(self) -> str:
        return f"usage rolled up until {self.rolled_until}"
