-- A new hold beside its HOLD transfer, in one prepared statement (the ORM's create() compiles one per hold).
-- The parts arrive as JSON text.
INSERT INTO holds_hold
    (org_id, membership_id, wallet_id, api_key_id, amount, captured, status, description, parts, idempotency_key,
     created_at, expires_at, hold_transfer_id)
VALUES (%s, %s, %s, %s, %s, 0, 'open', %s, %s::jsonb, %s, %s, %s, %s)
RETURNING id
