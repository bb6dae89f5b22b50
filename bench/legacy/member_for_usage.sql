-- A usage charge's reads, in one round trip: the membership (locked first: the domain row), the member's
-- Default wallet, the Usage wallet, every credit type slug (for the balances left per type), whether the
-- idempotency key was used already, and the member's pockets funded by this org (locked next, in id order),
-- one row per pocket with its expiry day (a row with null pocket columns when there is none).
-- The membership lock is taken when the MATERIALIZED CTE is first read, before the LATERAL part runs, so the
-- lock order is the application's: membership, then pockets by id (LockRows over the Sort).
-- One statement has one snapshot, taken before any wait for the membership lock: locked rows are re-read at
-- their latest version, but a racer's transfer committed during the wait is not seen by the key look-up here.
-- The caller copes: post_transfer's ON CONFLICT replays that transfer, and before answering "not enough
-- credits" the caller looks the key up again with a new statement.
WITH m AS MATERIALIZED (
    SELECT m.status, uw.id AS wallet_id
    FROM orgs_membership m
    LEFT JOIN wallets_wallet uw ON uw.kind = 'user' AND uw.user_id = m.user_id
    WHERE m.id = %s AND m.org_id = %s
    FOR UPDATE OF m
)
SELECT m.status, m.wallet_id,
       (SELECT x.id FROM wallets_wallet x WHERE x.kind = 'external' AND x.code = %s),
       (SELECT array_agg(ct.slug ORDER BY ct.sort_order, ct.id) FROM wallets_credittype ct),
       (SELECT t.id FROM wallets_transfer t WHERE t.org_id = %s AND t.idempotency_key = %s),
       (SELECT t.fingerprint FROM wallets_transfer t WHERE t.org_id = %s AND t.idempotency_key = %s),
       p.id, p.credit_type_id, p.balance, p.slug, p.draw_order, p.created_at, p.expires_on
FROM m
LEFT JOIN LATERAL (
    SELECT p.id, p.credit_type_id, p.balance, ct.slug, ct.draw_order, p.created_at, p.expires_on
    FROM wallets_pocket p
    JOIN wallets_credittype ct ON ct.id = p.credit_type_id
    WHERE p.wallet_id = m.wallet_id AND p.funding_org_id = %s AND p.balance > 0
      AND p.expires_on > %s::date  -- credits are spendable up to the day before they expire (docs/expiry.md)
    ORDER BY p.id
    FOR UPDATE OF p
) p ON true
