-- Entries whose copied columns disagree with their source: wallet and credit type with their pocket's, org with
-- their transfer's. These copies have no foreign keys (the entry trigger checks new rows; this checks all).
SELECT e.id, e.wallet_id, p.wallet_id, e.credit_type_id, p.credit_type_id, e.org_id, t.org_id
FROM wallets_entry e
JOIN wallets_pocket p ON p.id = e.pocket_id
JOIN wallets_transfer t ON t.id = e.transfer_id
WHERE e.wallet_id <> p.wallet_id OR e.credit_type_id <> p.credit_type_id OR e.org_id IS DISTINCT FROM t.org_id
LIMIT %s
