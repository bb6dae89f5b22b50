-- PostgreSQL: lock, check, write in ONE statement, so the hot pocket rows are held for this statement and
-- the COMMIT only, with no round trip to Python in between.
-- - the legs arrive as four binary arrays: psycopg's text format quoted every element (14 ms for 2,000 legs);
-- - a pocket is (wallet, credit type, funding org, expiry day): expires_on is NEVER (9999-12-31) for credits
--   that do not expire, so both unique indexes compare it with plain equality;
-- - `found` looks each leg's pocket up through the partial unique index that fits it (funded, or not): one
--   index probe per leg. (`IS NOT DISTINCT FROM` matched neither index, so each leg scanned every pocket of
--   its wallet: a 2,000-leg Return spent 110 ms there, and a charge's external Usage pocket scaled with the
--   number of orgs). MATERIALIZED keeps it a fixed input of `locked`, like `legs`: inlined, its pocket scans
--   became part of the locking query, and when a pocket it found was updated by another transaction while
--   we waited for its lock, the re-check dropped it (eight members charged at once on a fresh Usage pocket:
--   half came back LedgerBusy; tests/api/test_api_concurrency.py);
-- - `locked` takes the row locks of the NON-external pockets in ascending id order (LockRows over a Sort:
--   every lock is taken in that order whatever the rest of the plan does) and, after waiting, sees the
--   latest committed balances. External pockets (Stripe, Usage, Promotions) are neither locked nor
--   updated: they have no floor and keep no cached balance, so an org's charges share no row (their
--   entries' foreign keys take KEY SHARE locks, which do not conflict with each other);
-- - `ok` needs every locked row, so nothing below runs before all locks are held; it is false when a
--   pocket is missing or a non-external pocket would go below zero — then nothing at all is written;
-- - `t` inserts the transfer; ON CONFLICT DO NOTHING makes a racer with the same idempotency key wait for
--   the first to commit and then write nothing (the caller reads the first transfer back and replays it);
-- - `upd` and `ins` depend on `t`, so a refused or replayed transfer changes no balance; `ins` writes an
--   entry per leg: the new balance for a locked pocket, null for an external one; each carries the org.
WITH legs AS (
    SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::date[])
        AS l(wallet_id, credit_type_id, funding_org_id, amount, expires_on)
), found AS MATERIALIZED (
    SELECT p.id, p.is_external, legs.wallet_id, legs.credit_type_id, legs.funding_org_id, legs.expires_on,
           legs.amount FROM legs
    JOIN wallets_pocket p ON p.wallet_id = legs.wallet_id AND p.credit_type_id = legs.credit_type_id
                         AND p.funding_org_id = legs.funding_org_id AND p.expires_on = legs.expires_on
    UNION ALL
    SELECT p.id, p.is_external, legs.wallet_id, legs.credit_type_id, legs.funding_org_id, legs.expires_on,
           legs.amount FROM legs
    JOIN wallets_pocket p ON p.wallet_id = legs.wallet_id AND p.credit_type_id = legs.credit_type_id
                         AND p.funding_org_id IS NULL AND legs.funding_org_id IS NULL
                         AND p.expires_on = legs.expires_on
), locked AS (
    SELECT p.id, p.balance, found.amount
    FROM wallets_pocket p
    JOIN found ON p.id = found.id
    WHERE NOT found.is_external
    ORDER BY p.id
    FOR UPDATE OF p
), ok AS (
    SELECT count(*) + (SELECT count(*) FROM found WHERE found.is_external) = %s::int
           AND coalesce(bool_and(balance + amount >= 0), true) AS ok
    FROM locked
), t AS (
    INSERT INTO wallets_transfer (org_id, kind, actor_id, memo, idempotency_key, fingerprint, amount, created_at)
    SELECT %s::bigint, %s::varchar, %s::bigint, %s::varchar, %s::varchar, %s::varchar, %s::bigint, %s::timestamptz
    FROM ok WHERE ok.ok
    ON CONFLICT DO NOTHING
    RETURNING id, org_id, created_at
), upd AS (
    UPDATE wallets_pocket p SET balance = p.balance + locked.amount
    FROM locked, t
    WHERE p.id = locked.id
    RETURNING p.id, p.balance
), ins AS (
    INSERT INTO wallets_entry
        (transfer_id, pocket_id, wallet_id, credit_type_id, org_id, amount, balance_after, created_at)
    SELECT t.id, found.id, found.wallet_id, found.credit_type_id, t.org_id, found.amount, upd.balance, t.created_at
    FROM t CROSS JOIN found LEFT JOIN upd ON upd.id = found.id
    WHERE found.is_external OR upd.id IS NOT NULL
    RETURNING 1
)
SELECT ok.ok, (SELECT id FROM t), (SELECT count(*) FROM upd), (SELECT count(*) FROM ins),
       -- every leg's pocket and locked balance (null: external), for the caller, only when nothing was written
       CASE WHEN NOT ok.ok THEN
           (SELECT json_agg(json_build_array(f.wallet_id, f.credit_type_id, f.funding_org_id, f.expires_on, l.balance))
            FROM found f LEFT JOIN locked l ON l.id = f.id)
       END,
       -- the balance watches on the wallets this transfer wrote (wallets/watches.py), each with the watched
       -- balance after it: the new balance of a pocket written here (exact: it is locked), the snapshot's of
       -- any other pocket of the wallet. Null when there is no watch (one index probe per wallet).
       CASE WHEN ok.ok THEN
           (SELECT json_agg(json_build_array(w.id, w.purpose, w.ref_id, w.wallet_id, w.credit_type_id,
                                             w.threshold, (SELECT coalesce(sum(coalesce(u.balance, p.balance)), 0)
                                                           FROM wallets_pocket p LEFT JOIN upd u ON u.id = p.id
                                                           WHERE p.wallet_id = w.wallet_id AND NOT p.is_external
                                                             AND (w.credit_type_id IS NULL
                                                                  OR p.credit_type_id = w.credit_type_id))))
            FROM wallets_balancewatch w
            WHERE w.wallet_id IN (SELECT f.wallet_id FROM found f WHERE NOT f.is_external)
              AND EXISTS (SELECT 1 FROM t))
       END
FROM ok
