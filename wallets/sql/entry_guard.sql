-- The statement trigger on wallets_entry (installed by migration 0002, extended by 0007 and 0011). Per INSERT
-- statement (the primitive writes all entries of a transfer in one), over the statement's new rows:
-- - every entry's pocket and transfer exist (entries carry no foreign-key constraint since 0011: its check at
--   COMMIT locked rows that every charge of an org shares);
-- - every transfer's new entries sum to zero per credit type. Summing the new rows alone is the same check as
--   summing all of a transfer's entries: what was there before was checked when it was inserted, so it sums
--   to zero already;
-- - an entry's wallet and credit type are its pocket's, and its org is its transfer's. These three are
--   copies without foreign-key constraints (a lookup and a KEY SHARE lock per entry on rows that every
--   charge shares); this check joins the statement's new rows once instead.
-- One query for both: the trigger runs once per money movement, and each query a PL/pgSQL function runs costs
-- about as much as a small statement (docs/benchmarks.md, usage_throughput).
CREATE OR REPLACE FUNCTION wallets_entry_check_balanced() RETURNS trigger AS $$
DECLARE
    bad RECORD;
BEGIN
    SELECT n.transfer_id, n.credit_type_id, sum(n.amount) AS total,
           min(n.id) FILTER (WHERE p.id IS NULL OR t.id IS NULL
                                OR p.wallet_id IS DISTINCT FROM n.wallet_id
                                OR p.credit_type_id IS DISTINCT FROM n.credit_type_id
                                OR t.org_id IS DISTINCT FROM n.org_id) AS copied_wrong
      INTO bad
      FROM new_entries n
      LEFT JOIN wallets_pocket p ON p.id = n.pocket_id
      LEFT JOIN wallets_transfer t ON t.id = n.transfer_id
     GROUP BY n.transfer_id, n.credit_type_id
    HAVING sum(n.amount) <> 0
        OR bool_or(p.id IS NULL OR t.id IS NULL
                   OR p.wallet_id IS DISTINCT FROM n.wallet_id
                   OR p.credit_type_id IS DISTINCT FROM n.credit_type_id
                   OR t.org_id IS DISTINCT FROM n.org_id)
     LIMIT 1;
    IF FOUND AND bad.total <> 0 THEN
        RAISE EXCEPTION 'ledger: transfer % does not balance for credit type % (sum %)',
            bad.transfer_id, bad.credit_type_id, bad.total
            USING ERRCODE = 'check_violation';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'ledger: entry % has no pocket or transfer, or does not match its pocket''s wallet and credit '
                        'type or its transfer''s org',
            bad.copied_wrong
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
