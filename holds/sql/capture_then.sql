-- A capture's domain write in the ledger's settling statement (wallets/sql/post_settle.sql, `dom`): the hold is
-- captured, with the HOLD_CAPTURE transfer (`t2`) just written, in the same statement; the row comes back whole.
UPDATE holds_hold h
SET status = 'captured', captured = %(amount)s::bigint, capture_transfer_id = t2.id, closed_at = t2.created_at
FROM t2
WHERE h.id = %(hold)s::bigint
RETURNING h.*
