-- Transfers whose org is gone (transfer.org has no foreign-key constraint: its check locked the org's row on
-- every charge; nothing deletes an organization).
SELECT t.id, t.org_id
FROM wallets_transfer t
WHERE t.org_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orgs_organization o WHERE o.id = t.org_id)
LIMIT %s
