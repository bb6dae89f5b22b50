"""The alert tasks: `evaluate_alert`, enqueued by the balance_crossed receiver (alerts.receivers) and when a rule
is saved; `sweep_alerts`, every 5 minutes (alerts.apps), the safety net for a crossing whose signal was lost."""

from django.db import connection
from django.tasks import task

from alerts.evaluation import evaluate
from core.sql import load_sql

SWEEP_BATCH = 1_000
_OUT_OF_STEP = load_sql(__file__, "out_of_step.sql")


@task()
def evaluate_alert(rule_id: int) -> dict:
    """Decide one rule against the balance now (alerts.evaluation.evaluate); safe to run twice or late."""
    result = evaluate(rule_id)
    if result is None:
        return {"rule": rule_id, "deleted": True}
    return {"rule": rule_id, "balance": result.balance, "state": result.after, "emails": result.emails}


@task()
def sweep_alerts() -> dict:
    """Evaluate the rules whose state disagrees with their balance (one query finds them): a crossing whose
    balance_crossed signal never became a task (the process died between the movement's commit and the INSERT)
    is caught here, late but once. Safe to run twice at once: evaluation locks each rule's row."""
    with connection.cursor() as cursor:
        cursor.execute(_OUT_OF_STEP, [SWEEP_BATCH])
        rule_ids = [row[0] for row in cursor.fetchall()]
    emails = sum(result.emails for rule_id in rule_ids if (result := evaluate(rule_id)) is not None)
    return {"evaluated": len(rule_ids), "emails": emails}
