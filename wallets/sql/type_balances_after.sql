-- A wallet's balance of one credit type right after given entries. A wallet holds several pockets of a credit
-- type (one per expiry day, and for a member one per funding org), and an entry's balance_after is its own
-- pocket's: for each input (wallet, credit type, created_at, entry id), each of the wallet's pockets of that type
-- as of that entry (the balance_after of its last entry at or before it, in (created_at, id) order: an index
-- probe on wallets_entry_pocket_time, as the balance chart reads a day's end), summed. Pockets with no entry yet
-- add nothing. Parameters: wallet ids, credit type ids, created_at, entry ids (arrays of one length); internal
-- wallets only (external pockets keep no balance_after). Returns (input's ordinal, balance).
SELECT k.i, SUM(last.balance_after)::bigint
FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::bigint[])
     WITH ORDINALITY AS k(wallet_id, credit_type_id, created_at, entry_id, i)
JOIN wallets_pocket p ON p.wallet_id = k.wallet_id AND p.credit_type_id = k.credit_type_id
CROSS JOIN LATERAL (
    SELECT e.balance_after FROM wallets_entry e
    WHERE e.pocket_id = p.id AND (e.created_at, e.id) <= (k.created_at, k.entry_id)
    ORDER BY e.created_at DESC, e.id DESC
    LIMIT 1
) last
GROUP BY k.i
