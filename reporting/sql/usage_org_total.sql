-- An org's usage in [since, until): the entries on the Usage wallet's pockets for this org (one pocket per
-- credit type, found through wallets_pocket_unique_funded), summed through wallets_entry_pocket_time.
-- Parameters: org id, since, until.
SELECT COALESCE(SUM(e.amount), 0)
FROM wallets_wallet w
JOIN wallets_pocket p ON p.wallet_id = w.id AND p.funding_org_id = %(org)s
JOIN wallets_entry e ON e.pocket_id = p.id AND e.created_at >= %(since)s AND e.created_at < %(until)s
WHERE w.kind = 'external' AND w.code = 'usage'
