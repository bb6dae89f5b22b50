-- One org's pockets due to expire, locked in ascending id (the ledger's one lock order) and re-read under the
-- lock: a pocket another worker emptied meanwhile no longer matches (balance > 0 is checked again after the
-- wait), so each pocket is expired once. At most LIMIT pockets per batch.
SELECT p.id, p.wallet_id, p.credit_type_id, p.funding_org_id, p.expires_on, p.balance
FROM wallets_pocket p
WHERE p.org_id = %s AND p.expires_on <= %s AND p.balance > 0 AND NOT p.is_external
ORDER BY p.id
LIMIT %s
FOR UPDATE
