-- A new hold's row, written by the ledger's drawn statement (wallets/sql/post_usage.sql, as its `Then`) with the
-- HOLD transfer (`t`), so that making a hold is one statement. `parts`: what the transfer took of each of the
-- member's pockets (one pocket per credit type and expiry day), in draw order, as the plan took them:
-- [credit type id, slug, credits, "YYYY-MM-DD"]. It expires `expires_in` seconds after the transfer.
INSERT INTO holds_hold
    (org_id, membership_id, wallet_id, api_key_id, amount, captured, status, description, parts, idempotency_key,
     created_at, expires_at, hold_transfer_id)
SELECT t.org_id, %(membership)s::bigint, (SELECT m.wallet_id FROM m), %(hold_api_key)s::bigint, %(amount)s::bigint,
       0, 'open', %(hold_description)s::varchar,
       (SELECT jsonb_agg(jsonb_build_array(plan.credit_type_id, plan.slug, plan.take, plan.expires_on)
                         ORDER BY plan.expires_on, plan.draw_order, plan.credit_type_id, plan.created_at, plan.id)
        FROM plan WHERE plan.take > 0),
       %(key)s::varchar, t.created_at, t.created_at + make_interval(secs => %(hold_expires_in)s::int), t.id
FROM t
RETURNING id
