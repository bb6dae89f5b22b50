-- One user's usage per UTC day in [since, until), paid by one org (or by any org when the org is null): the
-- debits on the user's Default-wallet pockets funded by it, kept when the same transfer credited the Usage
-- wallet. Parameters: user id, org id or null, since, until.
SELECT (m.created_at AT TIME ZONE 'UTC')::date AS day, SUM(-m.amount)
FROM wallets_wallet w
JOIN wallets_pocket p ON p.wallet_id = w.id AND p.funding_org_id IS NOT NULL
    AND (%(org)s::bigint IS NULL OR p.funding_org_id = %(org)s::bigint)
JOIN wallets_entry m ON m.pocket_id = p.id AND m.created_at >= %(since)s AND m.created_at < %(until)s
WHERE w.kind = 'user' AND w.user_id = %(user)s AND m.amount < 0
  AND EXISTS (
      SELECT 1 FROM wallets_entry u
      JOIN wallets_pocket up ON up.id = u.pocket_id
      JOIN wallets_wallet uw ON uw.id = up.wallet_id AND uw.kind = 'external' AND uw.code = 'usage'
      WHERE u.transfer_id = m.transfer_id AND up.funding_org_id = p.funding_org_id
  )
GROUP BY 1
