-- The statement trigger on wallets_entry (installed by migration 0002, extended by 0007). Per INSERT
-- statement (the primitive writes all entries of a transfer in one):
-- - every transfer's entries sum to zero per credit type;
-- - an entry's wallet and credit type are its pocket's, and its org is its transfer's. These three are
--   copies without foreign-key constraints (a lookup and a KEY SHARE lock per entry on rows that every
--   charge shares); this check joins the statement's new rows once instead.
CREATE OR REPLACE FUNCTION wallets_entry_check_balanced() RETURNS trigger AS $$
DECLARE
    bad RECORD;
BEGIN
    SELECT e.transfer_id, e.credit_type_id, SUM(e.amount) AS total
      INTO bad
      FROM wallets_entry e
     WHERE e.transfer_id IN (SELECT DISTINCT transfer_id FROM new_entries)
     GROUP BY e.transfer_id, e.credit_type_id
    HAVING SUM(e.amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger: transfer % does not balance for credit type % (sum %)',
            bad.transfer_id, bad.credit_type_id, bad.total
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT n.id INTO bad
      FROM new_entries n
      LEFT JOIN wallets_pocket p ON p.id = n.pocket_id
      LEFT JOIN wallets_transfer t ON t.id = n.transfer_id
     WHERE p.wallet_id IS DISTINCT FROM n.wallet_id
        OR p.credit_type_id IS DISTINCT FROM n.credit_type_id
        OR t.org_id IS DISTINCT FROM n.org_id
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger: entry % does not match its pocket''s wallet and credit type or its transfer''s org',
            bad.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
