-- The live tail: one org's usage from the rollup's watermark on, summed from the ledger, as (wallet_id, day,
-- credits) rows. The org's Usage pockets' entries in [tail_since, until) through wallets_entry_pocket_time,
-- each usage transfer once (DISTINCT: one entry per credit type it credited), then its debits on the
-- members' pockets funded by the org (wallets_entry_one_per_pocket leads with transfer_id).
-- A fragment, used by the Usage page's statements. Parameters: org, tail_since, until.
SELECT m.wallet_id, (t.created_at AT TIME ZONE 'UTC')::date AS day, -m.amount AS credits
FROM (
    SELECT DISTINCT u.transfer_id, u.created_at
    FROM wallets_wallet uw
    JOIN wallets_pocket up ON up.wallet_id = uw.id AND up.funding_org_id = %(org)s
    JOIN wallets_entry u ON u.pocket_id = up.id AND u.created_at >= %(tail_since)s AND u.created_at < %(until)s
    WHERE uw.kind = 'external' AND uw.code = 'usage' AND u.amount > 0
) t
JOIN wallets_entry m ON m.transfer_id = t.transfer_id AND m.amount < 0
JOIN wallets_pocket p ON p.id = m.pocket_id AND p.funding_org_id = %(org)s
JOIN wallets_wallet w ON w.id = p.wallet_id AND w.kind = 'user'
