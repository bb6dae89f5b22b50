-- bench/usage_throughput.py: the ledger statement as it was before external pockets stopped caching a balance
-- (commit 65d0e57; entries now also carry the org, which verify_ledger checks), kept to measure the old path beside the new one in the same run. Not used by the app.
-- PostgreSQL: lock, check, write in ONE statement, so the hot pocket rows are held for this statement and
-- the COMMIT only, with no round trip to Python in between.
-- - the legs arrive as four binary arrays: psycopg's text format quoted every element (14 ms for 2,000 legs);
-- - `found` looks each leg's pocket up through the partial unique index that fits it (funded, or not): one
--   index probe per leg. (`IS NOT DISTINCT FROM` matched neither index, so each leg scanned every pocket of
--   its wallet: a 2,000-leg Return spent 110 ms there, and a charge's external Usage pocket scaled with the
--   number of orgs). MATERIALIZED keeps it a fixed input of `locked`, like `legs`: inlined, its pocket scans
--   became part of the locking query, and when a pocket it found was updated by another transaction while
--   we waited for its lock, the re-check dropped it (eight members charged at once on a fresh Usage pocket:
--   half came back LedgerBusy; tests/api/test_api_concurrency.py);
-- - `locked` takes the row locks in ascending id order (LockRows over a Sort: every lock is taken in that
--   order whatever the rest of the plan does) and, after waiting, sees the latest committed balances;
-- - `ok` needs every locked row, so nothing below runs before all locks are held; it is false when a
--   pocket is missing or a non-external pocket would go below zero — then nothing at all is written;
-- - `t` inserts the transfer; ON CONFLICT DO NOTHING makes a racer with the same idempotency key wait for
--   the first to commit and then write nothing (the caller reads the first transfer back and replays it);
-- - `upd` and `ins` depend on `t`, so a refused or replayed transfer changes no balance.
WITH legs AS (
    SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[])
        AS l(wallet_id, credit_type_id, funding_org_id, amount)
), found AS MATERIALIZED (
    SELECT p.id, legs.amount FROM legs
    JOIN wallets_pocket p ON p.wallet_id = legs.wallet_id AND p.credit_type_id = legs.credit_type_id
                         AND p.funding_org_id = legs.funding_org_id
    UNION ALL
    SELECT p.id, legs.amount FROM legs
    JOIN wallets_pocket p ON p.wallet_id = legs.wallet_id AND p.credit_type_id = legs.credit_type_id
                         AND p.funding_org_id IS NULL AND legs.funding_org_id IS NULL
), locked AS (
    SELECT p.id, p.wallet_id, p.credit_type_id, p.funding_org_id, p.balance, p.is_external, found.amount
    FROM wallets_pocket p
    JOIN found ON p.id = found.id
    ORDER BY p.id
    FOR UPDATE OF p
), ok AS (
    SELECT count(*) = %s::int AND coalesce(bool_and(is_external OR balance + amount >= 0), false) AS ok
    FROM locked
), t AS (
    INSERT INTO wallets_transfer (org_id, kind, actor_id, memo, idempotency_key, fingerprint, amount, created_at)
    SELECT %s::bigint, %s::varchar, %s::bigint, %s::varchar, %s::varchar, %s::varchar, %s::bigint, %s::timestamptz
    FROM ok WHERE ok.ok
    ON CONFLICT DO NOTHING
    RETURNING id, org_id
), upd AS (
    UPDATE wallets_pocket p SET balance = p.balance + locked.amount
    FROM locked, t
    WHERE p.id = locked.id
    RETURNING p.id, p.wallet_id, p.credit_type_id, locked.amount, p.balance
), ins AS (
    INSERT INTO wallets_entry (transfer_id, pocket_id, wallet_id, credit_type_id, amount, balance_after, created_at, org_id)
    SELECT t.id, upd.id, upd.wallet_id, upd.credit_type_id, upd.amount, upd.balance, %s::timestamptz, t.org_id
    FROM t, upd
    RETURNING 1
)
SELECT ok.ok, (SELECT id FROM t), (SELECT count(*) FROM upd), (SELECT count(*) FROM ins),
       -- the locked balances, for the caller's error message, only when nothing could be written
       CASE WHEN NOT ok.ok THEN
           (SELECT json_agg(json_build_array(wallet_id, credit_type_id, funding_org_id, balance)) FROM locked)
       END
FROM ok
