-- The key's answer, unless it has one: insert the (org, Idempotency-Key) record with it, or fill a record that has
-- none (status NULL: a charge's record written before its answer was written with it) when the request is the same. Nothing returned: the record has an answer, or belongs to
-- another request; the caller reads it and replays it or answers 409. On a conflict with a racer's uncommitted
-- record, this waits for it.
INSERT INTO billing_idempotencyrecord AS r
    (org_id, api_key_id, key, method, path, request_hash, status_code, response_body, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (org_id, key) DO UPDATE SET status_code = EXCLUDED.status_code, response_body = EXCLUDED.response_body
WHERE r.status_code IS NULL AND r.request_hash = EXCLUDED.request_hash
RETURNING id
