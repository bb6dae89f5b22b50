"""Deciding an alert: `evaluate(rule_id)` re-reads the balance under a lock on the rule's row and moves its
state. Run by alerts.tasks.evaluate_alert (after a movement crossed the threshold, and after a rule is saved).
docs/alerts.md has the exactly-once argument.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertRule, AlertState
from core.money import credits_and_dollars
from core.siteurl import absolute_url
from core.tasks import send_email
from orgs.models import Membership, MembershipStatus, Role
from wallets.watches import wallet_balance


@dataclass(frozen=True, slots=True)
class Evaluation:
    rule_id: int
    balance: int
    before: str  # the rule's state before
    after: str  # and after
    emails: int  # emails enqueued (on commit)


def _recipients(rule: AlertRule) -> list[str]:
    if rule.user_id:
        return [rule.user.email]
    return list(
        Membership.objects.filter(org_id=rule.org_id, status=MembershipStatus.ACTIVE, role__in=[Role.OWNER, Role.ADMIN])
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )


def _message(rule: AlertRule, balance: int) -> tuple[str, str]:
    what = f"{rule.credit_type.name} balance" if rule.credit_type_id else "balance"
    if rule.org_id:
        whose = f"{rule.org.name}'s org wallet"
        link = absolute_url(reverse("billing:page", args=[rule.org.slug]))
        change = absolute_url(reverse("alerts:org_settings", args=[rule.org.slug]))
    else:
        whose = "your Default wallet"
        link = change = absolute_url(reverse("wallet"))
    subject = f"Low balance: {whose} is below {rule.threshold:,} credits"
    body = (
        f"The {what} of {whose} is {credits_and_dollars(balance)}, below your alert threshold of "
        f"{credits_and_dollars(rule.threshold)}.\n\n"
        f"See it: {link}\n"
        f"You get this email once each time the balance goes below the threshold; change or remove the "
        f"alert here: {change}\n"
    )
    return subject, body


def evaluate(rule_id: int) -> Evaluation | None:
    """Decide one rule against the balance now, under a lock on its row. Safe to run any number of times, in
    any order: only the armed -> fired transition sends emails, and it needs the balance to have gone back to
    the threshold or above (fired -> armed) before it can happen again."""
    with transaction.atomic():
        rule = (
            AlertRule.objects.select_for_update(of=("self",))
            .select_related("org", "user", "credit_type")
            .filter(pk=rule_id)
            .first()
        )
        if rule is None:
            return None  # deleted since the signal: nothing to tell
        balance = wallet_balance(rule.wallet_id, rule.credit_type_id)
        before, emails = rule.state, 0
        now = timezone.now()
        if balance < rule.threshold and rule.state == AlertState.ARMED:
            rule.state, rule.fired_at = AlertState.FIRED, now
            subject, body = _message(rule, balance)
            recipients = _recipients(rule)
            for to in recipients:
                transaction.on_commit(lambda to=to: send_email.enqueue(subject=subject, body=body, to=[to]))
            emails = len(recipients)
        elif balance >= rule.threshold and rule.state == AlertState.FIRED:
            rule.state = AlertState.ARMED
        rule.last_balance, rule.evaluated_at = balance, now
        rule.save(update_fields=["state", "fired_at", "last_balance", "evaluated_at", "updated_at"])
    return Evaluation(rule_id=rule_id, balance=balance, before=before, after=rule.state, emails=emails)
