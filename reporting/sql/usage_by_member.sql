-- Usage in [since, until) of the given users, paid by one org: the debits on each user's Default-wallet
-- pockets funded by the org (wallets_pocket_unique_funded, then wallets_entry_pocket_time), kept when the same
-- transfer credited the Usage wallet (one probe of wallets_entry_one_per_pocket per debit): a usage charge.
-- One row per user with usage. Parameters: org id, user ids (bigint[]), since, until.
SELECT w.user_id, SUM(-m.amount)
FROM wallets_wallet w
JOIN wallets_pocket p ON p.wallet_id = w.id AND p.funding_org_id = %(org)s
JOIN wallets_entry m ON m.pocket_id = p.id AND m.created_at >= %(since)s AND m.created_at < %(until)s
WHERE w.kind = 'user' AND w.user_id = ANY(%(users)s::bigint[]) AND m.amount < 0
  AND EXISTS (
      SELECT 1 FROM wallets_entry u
      JOIN wallets_pocket up ON up.id = u.pocket_id
      JOIN wallets_wallet uw ON uw.id = up.wallet_id AND uw.kind = 'external' AND uw.code = 'usage'
      WHERE u.transfer_id = m.transfer_id AND up.funding_org_id = %(org)s
  )
GROUP BY w.user_id
