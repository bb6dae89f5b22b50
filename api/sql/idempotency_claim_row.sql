-- POST /usage's (org, Idempotency-Key) record, claimed by the ledger's drawn statement with the charge
-- (wallets/sql/post_usage.sql, as its `Then`), its answer not stored yet (status NULL: api/routers/usage.py stores
-- it next). No transfer (a refusal, a replay): no record. A record already there for the key (another request's
-- answer, or a stored 402) is a unique violation: the whole statement, charge included, writes nothing, and the
-- endpoint answers what is stored.
INSERT INTO billing_idempotencyrecord
    (org_id, api_key_id, key, method, path, request_hash, status_code, response_body, created_at)
SELECT t.org_id, %(api_key_id)s::bigint, %(idem_key)s::varchar, %(idem_method)s::varchar, %(idem_path)s::varchar,
       %(idem_hash)s::varchar, NULL, '', t.created_at
FROM t
RETURNING id, (SELECT id FROM uc) AS usage_charge_id
