-- Entries whose pocket or transfer is gone, or whose copied columns disagree with their source: wallet and credit
-- type with their pocket's, org with their transfer's. None of these columns has a foreign key (the entry trigger
-- checks new rows; this checks all). A missing pocket or transfer shows as null in its columns.
SELECT e.id, e.wallet_id, p.wallet_id, e.credit_type_id, p.credit_type_id, e.org_id, t.org_id, p.id IS NULL,
       t.id IS NULL
FROM wallets_entry e
LEFT JOIN wallets_pocket p ON p.id = e.pocket_id
LEFT JOIN wallets_transfer t ON t.id = e.transfer_id
WHERE p.id IS NULL OR t.id IS NULL
   OR e.wallet_id <> p.wallet_id OR e.credit_type_id <> p.credit_type_id OR e.org_id IS DISTINCT FROM t.org_id
LIMIT %s
