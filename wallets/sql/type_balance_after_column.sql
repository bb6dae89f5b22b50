-- A column of an entry query (wallets.selectors._with_type_balance; the entry table is the query's own, unaliased
-- wallets_entry): the credit type's balance of the entry's wallet right after the entry's transfer. Each of the
-- wallet's pockets of that type as of the transfer's last entry of that wallet and type (the balance_after of the
-- pocket's last entry at or before it, in (created_at, id) order: an index probe on wallets_entry_pocket_time),
-- summed; NULL on an external wallet's entry (no balance_after). sql/type_balances_after.sql is the same for a
-- list of points.
CASE WHEN wallets_entry.balance_after IS NULL THEN NULL ELSE (
    SELECT SUM(last.balance_after)
    FROM wallets_pocket p
    CROSS JOIN LATERAL (
        SELECT x.balance_after FROM wallets_entry x
        WHERE x.pocket_id = p.id
          AND (x.created_at, x.id) <= (wallets_entry.created_at, (
              SELECT max(y.id) FROM wallets_entry y
              WHERE y.transfer_id = wallets_entry.transfer_id AND y.wallet_id = wallets_entry.wallet_id
                AND y.credit_type_id = wallets_entry.credit_type_id))
        ORDER BY x.created_at DESC, x.id DESC
        LIMIT 1
    ) last
    WHERE p.wallet_id = wallets_entry.wallet_id AND p.credit_type_id = wallets_entry.credit_type_id
) END
