-- The org's outstanding balance (billing) is read in the same statement, after the membership lock: no
-- window between "nothing is owed" and the move, and one round trip fewer on the hot path.
SELECT m.status, ow.id, uw.id, COALESCE(ob.credits, 0)
FROM orgs_membership m
JOIN wallets_wallet ow ON ow.kind = 'org' AND ow.org_id = m.org_id
JOIN wallets_wallet uw ON uw.kind = 'user' AND uw.user_id = m.user_id
LEFT JOIN billing_outstandingbalance ob ON ob.org_id = m.org_id
WHERE m.id = %s AND m.org_id = %s
