-- The Expired account's pockets a run will credit, made before any lock is taken: one per (org, credit type) with
-- due credits, funded by the org, never expiring, empty (external pockets keep no cached balance). The same rows
-- the ledger would create on first use (wallets/sql/create_pockets.sql), made here in one statement for every
-- org at once, so that each org's Expiry transfer finds its pockets on its first try. A racer inserting the same
-- pocket is not an error: ON CONFLICT DO NOTHING. The rows go in one fixed order (org, credit type): two runs
-- inserting the same pockets in different orders each waited on the other's uncommitted row (a deadlock).
INSERT INTO wallets_pocket
    (wallet_id, credit_type_id, funding_org_id, org_id, is_external, expires_on, balance, created_at)
SELECT DISTINCT %(expired)s::bigint, p.credit_type_id, p.org_id, p.org_id, true, %(never)s::date, 0,
       %(now)s::timestamptz
FROM wallets_pocket p
WHERE p.expires_on <= %(day)s AND p.balance > 0 AND NOT p.is_external AND p.org_id IS NOT NULL
ORDER BY p.org_id, p.credit_type_id
ON CONFLICT DO NOTHING
