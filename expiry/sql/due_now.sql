-- What the expiry run would take now: orgs, pockets and credits in non-external org-funded pockets with a balance
-- whose expiry day is on or before the given day (due_orgs.sql's filter). One scan of the due pockets.
SELECT count(DISTINCT p.org_id), count(*), coalesce(sum(p.balance), 0)
FROM wallets_pocket p
WHERE p.expires_on <= %s AND p.balance > 0 AND NOT p.is_external AND p.org_id IS NOT NULL
