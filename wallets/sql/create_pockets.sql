-- Missing pockets for a transfer's legs, in one statement. A pocket's org is the org whose data it is: the
-- funding org, else the org of an org wallet (null for a person's own credits). A racer inserting the same
-- pocket is not an error: ON CONFLICT DO NOTHING (either partial unique index). The rows go in one fixed order, so
-- two racers creating the same pockets wait on each other's rows in the same order, never in a cycle.
INSERT INTO wallets_pocket
    (wallet_id, credit_type_id, funding_org_id, org_id, is_external, expires_on, balance, created_at)
SELECT l.wallet_id, l.credit_type_id, l.funding_org_id, COALESCE(l.funding_org_id, w.org_id), l.is_external,
       l.expires_on, 0, %s
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::boolean[], %s::date[])
    AS l(wallet_id, credit_type_id, funding_org_id, is_external, expires_on)
JOIN wallets_wallet w ON w.id = l.wallet_id
ORDER BY l.wallet_id, l.credit_type_id, l.funding_org_id, l.expires_on
ON CONFLICT DO NOTHING
