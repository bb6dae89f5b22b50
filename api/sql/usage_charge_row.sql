-- POST /usage's usage charge, written by the ledger's drawn statement beside its transfer `t`
-- (wallets/sql/post_usage.sql; the `before` part of its `Then`, read by idempotency_answer_row.sql). No transfer
-- (a refusal, a replay): no row.
uc AS (
    INSERT INTO billing_usagecharge
        (org_id, membership_id, transfer_id, api_key_id, amount, description, metadata, created_at)
    SELECT t.org_id, %(membership)s::bigint, t.id, %(api_key_id)s::bigint, %(amount)s::bigint, %(memo)s::varchar,
           %(usage_metadata)s::jsonb, t.created_at
    FROM t
    RETURNING id
)
