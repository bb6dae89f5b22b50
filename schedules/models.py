"""Scheduled allocations: credits handed to members on a cadence (docs/schedules.md).

A Schedule says who gets what and when; each period it runs once, as one ScheduleRun row (unique per
schedule and period start) and at most one SCHEDULED_ALLOCATION transfer keyed by the schedule and period.
"""

from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from orgs.models import Membership, Organization, Role, User
from wallets.models import CreditType, Transfer

SCHEDULE_AMOUNT_MAX = 1_000_000  # credits per member per period
EVERY_DAYS_MAX = 366


class Recipients(models.TextChoices):
    ALL = "all", "All members"
    SELECTED = "selected", "Selected members"
    ROLE = "role", "Everyone with a role"


class Mode(models.TextChoices):
    ADD = "add", "Add N credits"
    TOP_UP = "top_up", "Top up to N credits"


class Cadence(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    WEEKLY = "weekly", "Weekly"
    EVERY_N_DAYS = "every_n_days", "Every N days"


class ScheduleStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    DELETED = "deleted", "Deleted"


class Schedule(models.Model):
    org = models.ForeignKey(Organization, models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=80)
    recipients = models.CharField(max_length=16, choices=Recipients.choices, default=Recipients.ALL)
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    members = models.ManyToManyField(Membership, blank=True, related_name="+")
    credit_type = models.ForeignKey(CreditType, models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ADD)
    cadence = models.CharField(max_length=16, choices=Cadence.choices, default=Cadence.MONTHLY)
    day_of_month = models.PositiveSmallIntegerField(null=True, blank=True)
    every_days = models.PositiveSmallIntegerField(null=True, blank=True)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    return_unused = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=ScheduleStatus.choices, default=ScheduleStatus.ACTIVE)
    # The start of the next period to run (null: nothing left to run). Due when it is today or earlier.
    next_period_start = models.DateField(null=True, blank=True)
    last_run = models.ForeignKey("ScheduleRun", models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    # The New schedule form's one-time key: a double-click or a retried POST creates one schedule.
    request_key = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["org", "request_key"], condition=~Q(request_key=""), name="schedules_one_per_request_key"
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=1, amount__lte=SCHEDULE_AMOUNT_MAX), name="schedules_amount_range"
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="schedules_end_after_start",
            ),
            models.CheckConstraint(
                condition=~Q(cadence="monthly") | Q(day_of_month__gte=1, day_of_month__lte=31),
                name="schedules_monthly_day",
            ),
            models.CheckConstraint(
                condition=~Q(cadence="every_n_days") | Q(every_days__gte=1, every_days__lte=EVERY_DAYS_MAX),
                name="schedules_every_days",
            ),
        ]
        indexes = [
            models.Index(fields=["next_period_start"], condition=Q(status="active"), name="schedules_due"),
            models.Index(fields=["org", "-created_at"], name="schedules_org_recent"),
        ]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    APPLIED = "applied", "Applied"
    SKIPPED = "skipped", "Skipped"
    NOTHING = "nothing", "Nothing to do"


class ReturnState(models.TextChoices):
    NONE = "none", "No return"
    PENDING = "pending", "Return pending"
    RETURNED = "returned", "Returned"
    NOTHING = "nothing", "Nothing unused"


class ScheduleRun(models.Model):
    """One period of one schedule, run once: the unique (schedule, period_start) is the exactly-once key."""

    schedule = models.ForeignKey(Schedule, models.CASCADE, related_name="runs")
    period_start = models.DateField()
    period_end = models.DateField()
    status = models.CharField(max_length=16, choices=RunStatus.choices)
    transfer = models.ForeignKey(Transfer, models.PROTECT, null=True, blank=True, related_name="+")
    members = models.PositiveIntegerField(default=0, help_text="Members credited.")
    credits = models.BigIntegerField(default=0, help_text="Credits moved.")
    shortfall = models.BigIntegerField(default=0, help_text="Credits the org was short by (skipped).")
    reason = models.CharField(max_length=300, blank=True)
    return_state = models.CharField(max_length=16, choices=ReturnState.choices, default=ReturnState.NONE)
    return_transfer = models.ForeignKey(Transfer, models.PROTECT, null=True, blank=True, related_name="+")
    returned_credits = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["schedule", "period_start"], name="schedules_run_once_per_period"),
        ]
        indexes = [
            models.Index(fields=["period_end"], condition=Q(return_state="pending"), name="schedules_run_return_due"),
        ]
        ordering = ["-period_start"]

    def __str__(self) -> str:
        return f"{self.schedule} {self.period_start}: {self.status}"

    @property
    def period_last_day(self):
        """The period's last day (period_end is the next period's start)."""
        return self.period_end - timedelta(days=1)
