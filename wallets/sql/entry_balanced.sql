-- Every transfer's entries must sum to zero per credit type. The primitive inserts all entries of a
-- transfer in one statement, so a statement-level check over the new rows sees whole transfers.
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
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS wallets_entry_balanced ON wallets_entry;
CREATE TRIGGER wallets_entry_balanced
    AFTER INSERT ON wallets_entry
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION wallets_entry_check_balanced();
