"""The ledger's balance_crossed signal (wallets.watches, sent on commit of a movement) -> one alert task.

Nothing is decided here: the signal is a hint (it can come twice, late, or out of order); the task re-reads
the balance under the rule's row lock. Both directions enqueue: "below" may fire, "above" re-arms. Costs one
INSERT (the task row) per crossing, only on the rare movement that crosses a threshold, after its commit.
"""

from alerts.models import WATCH_PURPOSE
from alerts.tasks import evaluate_alert
from wallets.watches import balance_crossed


def on_balance_crossed(sender, purpose: str, ref_id: int, **kwargs) -> None:
    if purpose != WATCH_PURPOSE:
        return
    evaluate_alert.enqueue(rule_id=ref_id)


def connect() -> None:
    balance_crossed.connect(on_balance_crossed, dispatch_uid="alerts.receivers")


def disconnect() -> None:
    balance_crossed.disconnect(dispatch_uid="alerts.receivers")
