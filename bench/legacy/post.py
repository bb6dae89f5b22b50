"""The ledger write as it was before external pockets stopped caching a balance (commit 65d0e57): every
usage charge of an org locked and updated that org's Usage pocket, so charges of different members waited
on each other until COMMIT. bench/usage_throughput.py swaps it in to measure the old path beside the new
one in the same run. Not used by the app."""

from pathlib import Path

from wallets.errors import InsufficientCredits, LedgerBusy, WalletError
from wallets.ledger import _create_pockets, _credit_type_name, _previous_transfer, _replay, execute_prepared
from wallets.models import Transfer
from wallets.results import Posted

_PG_POST = "\n".join(
    line
    for line in (Path(__file__).parent / "post_transfer_locking_external.sql").read_text().splitlines()
    if not line.lstrip().startswith("--")
)


def _post(kind, org_id, actor_id, memo, key, fingerprint, gross, merged, now) -> Posted | WalletError:
    """The new transfer, the first one for a replayed key, or the WalletError to raise."""
    params = [
        [lg.wallet_id for lg in merged],
        [lg.credit_type_id for lg in merged],
        [lg.funding_org_id for lg in merged],
        [lg.amount for lg in merged],
        len(merged),
        org_id,
        kind,
        actor_id,
        memo,
        key,
        fingerprint,
        gross,
        now,
        now,
    ]
    for attempt in (1, 2):
        ((_ok, transfer_id, updated, inserted, locked),) = execute_prepared(_PG_POST, params)
        if transfer_id is not None:
            if updated != len(merged) or inserted != len(merged):
                raise RuntimeError(f"ledger write touched {updated}/{inserted} of {len(merged)} pockets")
            transfer = Transfer(
                pk=transfer_id,
                org_id=org_id,
                kind=kind,
                actor_id=actor_id,
                memo=memo,
                idempotency_key=key,
                fingerprint=fingerprint,
                amount=gross,
                created_at=now,
            )
            return Posted(transfer)
        # Nothing was written. A used key (committed before, or by a racer we just waited for) replays.
        if key and (previous := _previous_transfer(org_id, key)) is not None:
            return _replay(previous, fingerprint)
        balances = {(w, c, f): bal for w, c, f, bal in locked or []}
        missing = [lg for lg in merged if lg.pocket_key not in balances]
        if missing and attempt == 1:
            _create_pockets(missing, now)  # new ids, above every lock already held: the order stays ascending
            continue
        for lg in merged:
            balance = balances.get(lg.pocket_key)
            if balance is not None and balance + lg.amount < 0 and not lg.is_external:
                return InsufficientCredits(
                    available=balance, requested=-lg.amount, credit_type_name=_credit_type_name(lg.credit_type_id)
                )
        break
    raise LedgerBusy()
