-- Insert the (org, Idempotency-Key) record, or lock the one that exists, in one round trip. On a conflict
-- the no-op update waits for a racer holding the same key to commit, then locks and returns its row: the
-- caller sees either its own fresh row (status_code NULL) or the racer's finished response.
INSERT INTO billing_idempotencyrecord
    (org_id, api_key_id, key, method, path, request_hash, status_code, response_body, created_at)
VALUES (%s, %s, %s, %s, %s, %s, NULL, '', %s)
ON CONFLICT (org_id, key) DO UPDATE SET key = EXCLUDED.key
RETURNING id, request_hash, status_code, response_body
