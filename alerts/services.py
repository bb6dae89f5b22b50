"""Saving and deleting alert rules (the org settings page, the member's wallet form).

Every rule has one balance watch (wallets.watches, purpose "alert", ref_id = the rule's id), written in the
same transaction as the rule: the ledger then tells us, on commit of a movement, that it crossed the
threshold (alerts.receivers), and alerts.evaluation decides.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from alerts.models import WATCH_PURPOSE, AlertRule, AlertState
from alerts.tasks import evaluate_alert
from orgs.models import Organization
from wallets.models import CreditType, Wallet
from wallets.watches import unwatch, watch_balance

PURPOSE = WATCH_PURPOSE


def _locked_rule(wallet: Wallet, credit_type: CreditType | None) -> AlertRule | None:
    return AlertRule.objects.select_for_update().filter(wallet=wallet, credit_type=credit_type).first()


def save_rule(
    *, wallet: Wallet, threshold: int | None, credit_type: CreditType | None = None, org=None, user=None, actor=None
) -> AlertRule | None:
    """Create, change or (threshold None) delete the rule on (wallet, credit type). A new or changed threshold
    re-arms the rule and is evaluated on commit: set above the current balance, it fires once, at once."""
    with transaction.atomic():
        rule = _locked_rule(wallet, credit_type)
        if threshold is None:
            if rule is not None:
                unwatch(purpose=PURPOSE, ref_id=rule.pk)
                rule.delete()
            return None
        created = False
        if rule is None:
            try:
                with transaction.atomic():  # a savepoint: a racer's insert must not break our transaction
                    rule = AlertRule.objects.create(
                        org=org,
                        user=user,
                        wallet=wallet,
                        credit_type=credit_type,
                        threshold=threshold,
                        updated_by=actor,
                    )
                    created = True
            except IntegrityError:
                # Two saves at once (a double click, two admins): the other created it first. Its row is
                # committed now (the unique index made us wait for it); lock it and go on as with any rule.
                rule = _locked_rule(wallet, credit_type)
        if not created:
            if rule.threshold == threshold:
                return rule  # unchanged: nothing to watch or evaluate again
            rule.threshold, rule.state, rule.fired_at, rule.updated_by = threshold, AlertState.ARMED, None, actor
            rule.save(update_fields=["threshold", "state", "fired_at", "updated_by", "updated_at"])
        watch_balance(wallet=wallet, credit_type=credit_type, threshold=threshold, purpose=PURPOSE, ref_id=rule.pk)
        rule_id = rule.pk
        transaction.on_commit(lambda: evaluate_alert.enqueue(rule_id=rule_id))
    return rule


def save_org_rules(*, org: Organization, thresholds: dict[CreditType | None, int | None], actor) -> list[AlertRule]:
    """The org settings form: one threshold (or None: no rule) per credit type and one on the total."""
    wallet = Wallet.objects.for_org(org)
    saved = []
    with transaction.atomic():
        for credit_type, threshold in thresholds.items():
            rule = save_rule(wallet=wallet, credit_type=credit_type, threshold=threshold, org=org, actor=actor)
            if rule is not None:
                saved.append(rule)
    return saved


def save_member_rule(*, user, threshold: int | None) -> AlertRule | None:
    """A member's personal threshold on the total of their Default wallet (None removes it)."""
    wallet = Wallet.objects.for_user(user)
    return save_rule(wallet=wallet, threshold=threshold, user=user, actor=user)
