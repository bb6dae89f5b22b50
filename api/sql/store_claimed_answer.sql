-- The answer of the charge that claimed this record (api/routers/usage.py), unless a racer answered it first.
-- Its own transaction, committed WITHOUT waiting for the WAL flush (set_config(..., true) is SET LOCAL, and this
-- statement is the whole transaction): the charge it answers has already committed durably with its record, and
-- an answer lost in a crash leaves the record without one, which the next request with the key answers from the
-- ledger (docs/api.md, "POST /usage: the key claimed by the charge"). One flush per charge instead of two.
WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE billing_idempotencyrecord SET status_code = %s, response_body = %s
WHERE id = %s AND status_code IS NULL AND (SELECT true FROM async)
RETURNING id
