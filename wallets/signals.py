"""Signals the ledger sends, for feature packages that react to movements (alerts, auto top-up) without the
ledger knowing them: wallets sits below the features and never imports them.

`transfer_posted` is sent by `post_transfer` right after a NEW transfer was written (never for a replay),
still inside the transaction that wrote it: a receiver reads the balances after the movement in the same
snapshot, and must defer any side effect (an email, a task, a Stripe call) to `transaction.on_commit`, so a
movement that rolls back triggers nothing. Receivers run on the money path: each may cost at most one query
(tests assert it) and must never raise for a reason the movement does not care about.

Arguments: `transfer` (the new Transfer), `kind`, `org_id`, `legs` (the merged Legs: wallet, credit type,
funding org, signed amount, is_external).
"""

from django.dispatch import Signal

transfer_posted = Signal()
