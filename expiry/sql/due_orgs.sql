-- The orgs with credits due to expire on or before a day: non-external pockets with a balance whose expiry day
-- has come. A pocket without an org (a person's own credits) is never given an expiry day by any path, and is
-- left alone.
SELECT DISTINCT p.org_id
FROM wallets_pocket p
WHERE p.expires_on <= %s AND p.balance > 0 AND NOT p.is_external AND p.org_id IS NOT NULL
ORDER BY p.org_id
