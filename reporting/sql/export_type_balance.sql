-- The org wallet's balance of one credit type right after the transfer, when it holds several pockets of that
-- type (one per expiry day): each pocket as of the transfer's last org wallet entry of the type, summed, as
-- wallets/sql/type_balances_after.sql computes it for the page. reporting/export.py fills the placeholders in
-- braces (the org wallet and credit type ids as literals, the entry column of the per-transfer LATERAL).
CASE WHEN {entry} IS NOT NULL THEN (
    SELECT SUM(last.balance_after)
    FROM wallets_pocket p
    CROSS JOIN LATERAL (
        SELECT x.balance_after FROM wallets_entry x
        WHERE x.pocket_id = p.id AND (x.created_at, x.id) <= (t.created_at, {entry})
        ORDER BY x.created_at DESC, x.id DESC
        LIMIT 1
    ) last
    WHERE p.wallet_id = {org_wallet} AND p.credit_type_id = {credit_type}
) END
