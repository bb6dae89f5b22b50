-- End-of-day balance of one wallet per day and credit type: for each day end and pocket, the
-- balance_after of the pocket's last entry before it (an index probe on wallets_entry_pocket_time),
-- summed per credit type. Days x pockets probes, whatever the number of entries.
-- Parameters: the day ends (timestamptz[], in order), the wallet id.
SELECT d.i, p.credit_type_id, SUM(last.balance_after)
FROM unnest(%s::timestamptz[]) WITH ORDINALITY AS d(day_end, i)
CROSS JOIN wallets_pocket p
CROSS JOIN LATERAL (
    SELECT e.balance_after FROM wallets_entry e
    WHERE e.pocket_id = p.id AND e.created_at < d.day_end
    ORDER BY e.created_at DESC, e.id DESC LIMIT 1
) last
WHERE p.wallet_id = %s
GROUP BY d.i, p.credit_type_id
