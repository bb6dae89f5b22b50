-- POST /usage's (org, Idempotency-Key) record WITH its answer, written by the ledger's drawn statement with the charge
-- (wallets/sql/post_usage.sql, as its `Then`): the charge, its usage charge row (`uc`, usage_charge_row.sql), the
-- record and the 201 body commit together or not at all. So no charge is ever left without its answer, and every
-- request with the key gets these bytes. No transfer (a refusal, a replay): no record. A record already there for
-- the key (another request's answer, or a stored 402) is a unique violation: the whole statement, charge included,
-- writes nothing, and the endpoint answers what is stored.
-- The body is UsageOut (api/schemas.py), from the statement's own rows: `t` (the transfer) and `plan` (the member's
-- spendable pockets funded by the org, each with what was taken from it). `drawn`: credits per credit type, in the
-- order the plan drew them (the ledger's usage draw order); `member_balance`: what the member has left of this
-- org's credits, per credit type (every type, 0 when none). api/routers/usage.py `_body` builds the same answer in
-- Python when a charge made before is read back from the ledger (a record purged after its retention).
INSERT INTO billing_idempotencyrecord
    (org_id, api_key_id, key, method, path, request_hash, status_code, response_body, created_at)
SELECT t.org_id, %(api_key_id)s::bigint, %(idem_key)s::varchar, %(idem_method)s::varchar, %(idem_path)s::varchar,
       %(idem_hash)s::varchar, 201,
       jsonb_build_object(
           'id', (SELECT id FROM uc),
           'transfer_id', t.id,
           'member_id', %(membership)s::bigint,
           'amount', %(amount)s::bigint,
           'description', %(memo)s::varchar,
           'metadata', %(usage_metadata)s::jsonb,
           'drawn', (SELECT jsonb_agg(jsonb_build_object('credit_type', d.slug, 'amount', d.credits) ORDER BY d.first)
                     FROM (SELECT o.slug, sum(o.take) AS credits, min(o.n) AS first
                           FROM (SELECT plan.slug, plan.take,
                                        row_number() OVER (ORDER BY plan.expires_on, plan.draw_order,
                                                           plan.credit_type_id, plan.created_at, plan.id) AS n
                                 FROM plan) o
                           WHERE o.take > 0
                           GROUP BY o.slug) d),
           'member_balance', (SELECT jsonb_object_agg(ct.slug, (SELECT coalesce(sum(plan.balance - plan.take), 0)
                                                                 FROM plan WHERE plan.credit_type_id = ct.id))
                              FROM wallets_credittype ct),
           'created_at', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
       )::text,
       t.created_at
FROM t
RETURNING response_body
