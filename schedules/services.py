"""Running scheduled allocations, exactly once per (schedule, period). See docs/schedules.md.

Each period is one database transaction that
1. locks the schedule row (concurrent schedulers queue here; the one after finds the period done),
2. returns the unused credits of earlier periods whose end has passed (when the option is on),
3. locks the recipients' memberships in id order, reads their balances (top-up), and posts ONE
   SCHEDULED_ALLOCATION transfer through `post_drawn` (one org-wallet debit, one credit per member; the
   debit is split over the org wallet's pockets soonest-expiring first and each member's credit keeps the days
   of the credits it got, docs/expiry.md), keyed `schedule:<id>:<period start>`,
4. writes the ScheduleRun row (unique per schedule and period) and advances `next_period_start`.
The run row, the transfer and the advance commit together or not at all. The unique run row and the
transfer's idempotency key are the backstops if the row lock were ever bypassed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date

from django.db import connection, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from core.money import credits_and_dollars
from core.siteurl import absolute_url
from core.tasks import send_email
from orgs.models import Membership, MembershipStatus, Role
from schedules.models import (
    Mode,
    Recipients,
    ReturnState,
    RunStatus,
    Schedule,
    ScheduleRun,
    ScheduleStatus,
)
from schedules.periods import schedule_first_start, schedule_period
from wallets.draw import SOONEST, post_drawn
from wallets.errors import InsufficientCredits
from wallets.ledger import Leg, post_transfer
from wallets.models import MAX_AMOUNT, Pocket, TransferKind, Wallet, WalletKind
from wallets.outstanding import org_outstanding_credits

log = logging.getLogger("credits.schedules")

MAX_CATCH_UP = 12  # periods one scheduler pass applies per schedule; the next pass continues


@dataclass
class RunReport:
    applied: int = 0
    skipped: int = 0
    nothing: int = 0
    returned: int = 0


def allocation_key(schedule_id: int, period_start: date) -> str:
    return f"schedule:{schedule_id}:{period_start.isoformat()}"


def return_key(schedule_id: int, period_start: date) -> str:
    return f"schedule-return:{schedule_id}:{period_start.isoformat()}"


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":"), default=str).encode()).hexdigest()


def allocation_fingerprint(schedule_id: int, period_start: date) -> str:
    """The request, not the legs: a top-up computed again after a crash still replays the first transfer."""
    return _fingerprint("scheduled_allocation", schedule_id, period_start)


# --- managing schedules ---------------------------------------------------------------------------


def next_start(schedule: Schedule, today: date | None = None) -> date | None:
    return schedule_first_start(schedule, today or timezone.localdate())


def schedule_save(schedule: Schedule, members=None, *, today: date | None = None) -> Schedule:
    """Create or edit: the next run is the first period start on or after today (and the start date)."""
    with transaction.atomic():
        schedule.updated_at = timezone.now()
        if schedule.status == ScheduleStatus.ACTIVE:
            schedule.next_period_start = next_start(schedule, today)
        schedule.save()
        if schedule.recipients == Recipients.SELECTED and members is not None:
            schedule.members.set(members)
        elif schedule.recipients != Recipients.SELECTED:
            schedule.members.clear()
    return schedule


def schedule_pause(schedule: Schedule) -> None:
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        if locked.status == ScheduleStatus.ACTIVE:
            locked.status = ScheduleStatus.PAUSED
            locked.next_period_start = None
            locked.updated_at = timezone.now()
            locked.save(update_fields=["status", "next_period_start", "updated_at"])


def schedule_resume(schedule: Schedule, *, today: date | None = None) -> None:
    """Periods that passed while paused are not caught up: the next run is the next period start from today."""
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        if locked.status == ScheduleStatus.PAUSED:
            locked.status = ScheduleStatus.ACTIVE
            locked.next_period_start = next_start(locked, today)
            locked.updated_at = timezone.now()
            locked.save(update_fields=["status", "next_period_start", "updated_at"])


def schedule_delete(schedule: Schedule) -> None:
    """Soft delete: the runs (and their transfers) stay in history; returns already due still happen."""
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        locked.status = ScheduleStatus.DELETED
        locked.next_period_start = None
        locked.updated_at = timezone.now()
        locked.save(update_fields=["status", "next_period_start", "updated_at"])


# --- running --------------------------------------------------------------------------------------


def due_schedule_ids(today: date, limit: int = 1000) -> list[int]:
    """Active schedules whose next period has started, and schedules with a return due."""
    due = set(
        Schedule.objects.filter(status=ScheduleStatus.ACTIVE, next_period_start__lte=today).values_list(
            "pk", flat=True
        )[:limit]
    )
    due |= set(
        ScheduleRun.objects.filter(return_state=ReturnState.PENDING, period_end__lte=today).values_list(
            "schedule_id", flat=True
        )[:limit]
    )
    return sorted(due)


def run_due(today: date | None = None) -> RunReport:
    today = today or timezone.localdate()
    report = RunReport()
    for schedule_id in due_schedule_ids(today):
        try:
            run_schedule(schedule_id, today=today, report=report)
        except Exception:  # one broken schedule must not stop the others; the next pass tries again
            log.exception("scheduled allocation %s failed", schedule_id)
    return report


def run_schedule(schedule_id: int, *, today: date | None = None, report: RunReport | None = None) -> RunReport:
    """Apply every due period of one schedule not yet applied, each exactly once (at most MAX_CATCH_UP)."""
    today = today or timezone.localdate()
    report = report or RunReport()
    for _ in range(MAX_CATCH_UP):
        with transaction.atomic():
            schedule = (
                Schedule.objects.select_for_update(of=("self",)).select_related("org").filter(pk=schedule_id).first()
            )
            if schedule is None:
                break
            _returns_due(schedule, today, report)
            start = schedule.next_period_start
            if schedule.status != ScheduleStatus.ACTIVE or start is None or start > today:
                break
            _apply_period(schedule, start, report)
    return report


def _recipients(schedule: Schedule) -> list[tuple[int, int]]:
    """(membership id, user id) of the active recipients, their memberships locked in id order."""
    members = Membership.objects.select_for_update(of=("self",)).filter(
        org_id=schedule.org_id, status=MembershipStatus.ACTIVE
    )
    if schedule.recipients == Recipients.ROLE:
        members = members.filter(role=schedule.role)
    elif schedule.recipients == Recipients.SELECTED:
        members = members.filter(
            pk__in=Schedule.members.through.objects.filter(schedule_id=schedule.pk).values("membership_id")
        )
    return list(members.order_by("pk").values_list("pk", "user_id"))


def _user_wallets(user_ids: list[int]) -> dict[int, int]:
    wallet_ids = dict(Wallet.objects.filter(kind=WalletKind.USER, user_id__in=user_ids).values_list("user_id", "pk"))
    if len(wallet_ids) < len(user_ids):  # users made outside user_create have no Default wallet yet
        missing = [u for u in user_ids if u not in wallet_ids]
        Wallet.objects.bulk_create(
            [Wallet(kind=WalletKind.USER, user_id=u, name="Default wallet") for u in missing], ignore_conflicts=True
        )
        wallet_ids.update(Wallet.objects.filter(kind=WalletKind.USER, user_id__in=missing).values_list("user_id", "pk"))
    return wallet_ids


_FUNDED_BALANCES = """
SELECT w.user_id, SUM(p.balance)::bigint FROM wallets_pocket p JOIN wallets_wallet w ON w.id = p.wallet_id
WHERE p.wallet_id = ANY(%s) AND p.credit_type_id = %s AND p.funding_org_id = %s
GROUP BY w.user_id
"""


def _funded_balances(wallet_ids: list[int], credit_type_id: int, org_id: int) -> dict[int, int]:
    """Each member's balance of the credit type funded by the org, over all its expiry days (the members'
    memberships are locked)."""
    with connection.cursor() as cur:
        cur.execute(_FUNDED_BALANCES, [wallet_ids, credit_type_id, org_id])
        return dict(cur.fetchall())


def _apply_period(schedule: Schedule, start: date, report: RunReport) -> ScheduleRun:
    period = schedule_period(schedule, start)
    run = ScheduleRun.objects.filter(schedule=schedule, period_start=period.start).first()
    if run is None:
        run = _allocate(schedule, period)
        _count(run, report)
    # Advance past this period (an existing run row means it was already done: only advance).
    following = schedule_first_start(schedule, period.end)
    schedule.next_period_start = following
    schedule.last_run = run
    schedule.save(update_fields=["next_period_start", "last_run"])
    return run


def _count(run: ScheduleRun, report: RunReport) -> None:
    if run.status == RunStatus.APPLIED:
        report.applied += 1
    elif run.status == RunStatus.SKIPPED:
        report.skipped += 1
    else:
        report.nothing += 1


def _allocate(schedule: Schedule, period) -> ScheduleRun:
    run = ScheduleRun(schedule=schedule, period_start=period.start, period_end=period.end)
    rows = _recipients(schedule)
    amounts: list[tuple[int, int]] = []  # (wallet id, credits)
    if rows:
        user_ids = [u for _, u in rows]
        wallets = _user_wallets(user_ids)
        if schedule.mode == Mode.TOP_UP:
            balances = _funded_balances(list(wallets.values()), schedule.credit_type_id, schedule.org_id)
            for _, user_id in rows:
                gap = schedule.amount - balances.get(user_id, 0)
                if gap > 0:
                    amounts.append((wallets[user_id], gap))
        else:
            amounts = [(wallets[user_id], schedule.amount) for _, user_id in rows]
    total = sum(a for _, a in amounts)
    if not amounts:
        run.status = RunStatus.NOTHING
        run.reason = "No recipients." if not rows else "Every recipient already had the top-up amount."
    elif total > MAX_AMOUNT:
        run.status, run.reason = RunStatus.SKIPPED, f"The total is too large (at most {MAX_AMOUNT:,} credits)."
    elif owed := org_outstanding_credits(schedule.org_id):
        run.status = RunStatus.SKIPPED
        run.reason = f"The organization owes {owed:,} credits after a refund or dispute."
    elif (available := _org_available(schedule)) < total:
        # Checked before the ledger so that a skipped run does not even create the members' empty pockets;
        # post_transfer still has the last word under its locks (a racer spending the org's credits).
        run.status, run.shortfall = RunStatus.SKIPPED, total - available
        run.reason = f"Not enough credits: {total:,} needed, {available:,} available."
    else:
        org_wallet = Wallet.objects.for_org(schedule.org)
        ct = schedule.credit_type_id
        legs = [Leg(org_wallet.pk, ct, -total)]
        legs += [Leg(wallet_id, ct, amount, schedule.org_id) for wallet_id, amount in amounts]
        try:
            posted = post_drawn(
                kind=TransferKind.SCHEDULED_ALLOCATION,
                order=SOONEST,
                org=schedule.org,
                memo=f"Scheduled: {schedule.name} ({period.start:%b %-d, %Y})",
                idempotency_key=allocation_key(schedule.pk, period.start),
                fingerprint=allocation_fingerprint(schedule.pk, period.start),
                legs=legs,
            )
        except InsufficientCredits as exc:
            run.status, run.shortfall = RunStatus.SKIPPED, exc.shortfall
            run.reason = f"Not enough credits: {total:,} needed, {exc.available:,} available."
        else:
            run.status, run.transfer = RunStatus.APPLIED, posted.transfer
            run.members, run.credits = len(amounts), total
            if schedule.return_unused:
                run.return_state = ReturnState.PENDING
    run.save()
    if run.status == RunStatus.SKIPPED:
        _email_skipped(schedule, run)
    log.info(
        "scheduled_allocation schedule=%s period=%s status=%s members=%s credits=%s",
        schedule.pk,
        period.start,
        run.status,
        run.members,
        run.credits,
    )
    return run


def _org_available(schedule: Schedule) -> int:
    """The org wallet's credits of the schedule's type, over all its pockets (one per expiry day)."""
    return (
        Pocket.objects.filter(
            wallet__kind=WalletKind.ORG,
            wallet__org_id=schedule.org_id,
            credit_type_id=schedule.credit_type_id,
            funding_org__isnull=True,
        ).aggregate(total=Sum("balance"))["total"]
        or 0
    )


def _email_skipped(schedule: Schedule, run: ScheduleRun) -> None:
    to = list(
        Membership.objects.filter(
            org_id=schedule.org_id, status=MembershipStatus.ACTIVE, role__in=[Role.OWNER, Role.ADMIN]
        ).values_list("user__email", flat=True)
    )
    if not to:
        return
    short = f" The org wallet was short by {credits_and_dollars(run.shortfall)}." if run.shortfall else ""
    subject = f"Scheduled allocation skipped: {schedule.name}"
    body = (
        f"The scheduled allocation “{schedule.name}” for the period starting {run.period_start:%B %-d, %Y} "
        f"was skipped and no credits moved.\n\n{run.reason}{short}\n\n"
        f"Buy credits, then look at your schedules: {_schedules_url(schedule)}\n"
    )
    transaction.on_commit(lambda: send_email.enqueue(subject=subject, body=body, to=to))


def _schedules_url(schedule: Schedule) -> str:
    return absolute_url(reverse("schedules:list", kwargs={"org_slug": schedule.org.slug}))


# --- returns at period end ------------------------------------------------------------------------

_RETURNABLE = """
SELECT p.wallet_id, p.credit_type_id, LEAST(e.amount, p.balance), p.expires_on
FROM wallets_entry e JOIN wallets_pocket p ON p.id = e.pocket_id
WHERE e.transfer_id = %s AND e.amount > 0 AND p.funding_org_id = %s AND p.balance > 0
"""

_LOCK_MEMBERS_OF_TRANSFER = """
SELECT m.id FROM orgs_membership m
WHERE m.org_id = %s AND m.status <> 'removed' AND m.user_id IN (
    SELECT w.user_id FROM wallets_entry e JOIN wallets_wallet w ON w.id = e.wallet_id
    WHERE e.transfer_id = %s AND e.amount > 0)
ORDER BY m.id FOR UPDATE
"""


def _returns_due(schedule: Schedule, today: date, report: RunReport) -> None:
    runs = ScheduleRun.objects.filter(schedule=schedule, return_state=ReturnState.PENDING, period_end__lte=today)
    for run in runs.order_by("period_start"):
        _return_unused(schedule, run)
        report.returned += 1


def _return_unused(schedule: Schedule, run: ScheduleRun) -> None:
    """Unused = per member and pocket (expiry day), the lesser of what this period gave that pocket and its
    current balance. Each goes back to the org wallet's pocket with the same day (expiry travels with the
    credits). Removed members are left out (their removal returned everything)."""
    with connection.cursor() as cur:
        cur.execute(_LOCK_MEMBERS_OF_TRANSFER, [schedule.org_id, run.transfer_id])
        cur.execute(_RETURNABLE, [run.transfer_id, schedule.org_id])
        rows = cur.fetchall()
    total = sum(r[2] for r in rows)
    if total:
        # The credit type of the run's own transfer (the schedule may have been edited since).
        credit_type_id = rows[0][1]
        org_wallet = Wallet.objects.for_org(schedule.org)
        per_day: dict[date, int] = {}
        legs = []
        for wallet_id, _, amount, day in rows:
            legs.append(Leg(wallet_id, credit_type_id, -amount, schedule.org_id, False, day))
            per_day[day] = per_day.get(day, 0) + amount
        legs += [Leg(org_wallet.pk, credit_type_id, amount, None, False, day) for day, amount in per_day.items()]
        posted = post_transfer(
            kind=TransferKind.SCHEDULED_RETURN,
            org=schedule.org,
            memo=f"Unused scheduled credits returned: {schedule.name} ({run.period_start:%b %-d, %Y})",
            idempotency_key=return_key(schedule.pk, run.period_start),
            fingerprint=_fingerprint("scheduled_return", schedule.pk, run.period_start),
            legs=legs,
        )
        run.return_transfer, run.returned_credits, run.return_state = posted.transfer, total, ReturnState.RETURNED
    else:
        run.return_state = ReturnState.NOTHING
    run.save(update_fields=["return_transfer", "returned_credits", "return_state"])
