-- The membership (locked), the member's Default wallet, the Usage wallet and every credit type slug (for the
-- balances left per type), in one round trip.
SELECT m.status, uw.id,
       (SELECT x.id FROM wallets_wallet x WHERE x.kind = 'external' AND x.code = %s),
       (SELECT array_agg(ct.slug ORDER BY ct.sort_order, ct.id) FROM wallets_credittype ct)
FROM orgs_membership m
LEFT JOIN wallets_wallet uw ON uw.kind = 'user' AND uw.user_id = m.user_id
WHERE m.id = %s AND m.org_id = %s
