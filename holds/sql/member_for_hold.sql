-- A hold's reads, in one round trip (like wallets/sql/member_for_usage.sql): the membership (locked first: the
-- domain row), the member's Default wallet, the Holds wallet, the hold already made with this idempotency key
-- (id and fingerprint), and the member's pockets funded by this org (locked next, in id order), one row per
-- pocket with its expiry day (a row with null pocket columns when there is none).
-- One statement has one snapshot, taken before any wait for the membership lock: a racer's hold committed
-- during the wait is not seen by the key look-up here; the caller looks the key up again before refusing.
WITH m AS MATERIALIZED (
    SELECT m.status, uw.id AS wallet_id
    FROM orgs_membership m
    LEFT JOIN wallets_wallet uw ON uw.kind = 'user' AND uw.user_id = m.user_id
    WHERE m.id = %s AND m.org_id = %s
    FOR UPDATE OF m
)
SELECT m.status, m.wallet_id,
       (SELECT x.id FROM wallets_wallet x WHERE x.kind = 'external' AND x.code = 'holds'),
       (SELECT h.id FROM holds_hold h WHERE h.org_id = %s AND h.idempotency_key = %s),
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
