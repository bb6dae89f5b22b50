-- Transfers without a single entry.
SELECT t.id FROM wallets_transfer t
WHERE NOT EXISTS (SELECT 1 FROM wallets_entry e WHERE e.transfer_id = t.id) LIMIT %s
