-- The ledger statement in its settling form (wallets/ledger.py `post_settle`): credits parked in an external account
-- for a member (a hold's parts in the Holds account) go back to the member's pockets, and `amount` of them is
-- then charged from those pockets to another external account (Usage): TWO transfers, a release and a charge,
-- written by ONE statement, so that settling a hold is one round trip and, outside a caller's transaction, its own
-- transaction. The ledger reads exactly as `post_transfer` twice would write it: the release's entries (the parked
-- account's pocket -held per credit type, the member's pocket +held per part), then the charge's (the member's
-- pocket -taken per part, the charged account's pocket +taken per credit type), each entry with its balance after.
-- The caller supplies two fragments (the `Settlement` in ledger.py), put in place of the markers below:
-- - `src`: its domain row, locked FIRST (the lock order: domain row, membership, pockets by id), as one row
--   (wallet_id: the member's wallet; parts: jsonb [[credit type id, slug, credits, "YYYY-MM-DD" or absent], ...],
--   in the order the charge draws them; ok: the domain row allows this settlement now; memo: the charge's memo).
--   No row, or not ok: nothing is written (the caller's own path says why);
-- - `dom`: its domain row's write, which must read `t2` (the charge transfer) so that it happens only when the
--   transfers are written, in this same statement.
-- Then, as in post_usage.sql:
-- - `c` plans the charge over the parts in their order (a running sum of the parts before each one);
-- - `p` locks the member's pockets of the parts (funded by the org, the part's expiry day) in ascending id order,
--   after the domain row (LockRows over a Sort whose input needs `src`);
-- - `x` finds, per credit type, the parked account's pocket and the charged account's pocket: not locked
--   (external pockets have no floor and keep no cached balance);
-- - `ok`: every part has its own pocket, and every credit type its two external pockets (else nothing is
--   written and the caller takes its general path, which creates what is missing);
-- - `t1` and `t2` insert the transfers (no ON CONFLICT: the domain row, locked first, says whether this
--   settlement was made before; a used key is an error that writes nothing), `upd` the member's pockets' net
--   change (held - taken: never below the balance before), `ins` every entry in the order above, one INSERT, so
--   the statement trigger checks both transfers balance.
-- - `ww`: the member's wallet is watched (Wallet.watched). The ledger sends the statement's unwatched form first, as
--   post_usage.sql's: the watches' subplans (`/*watches*/…/*end watches*/`) left out and `ok` false for a watched
--   wallet (`/*only unwatched*/`); when that form comes back with nothing written and `watched`, the watched form.
-- Short names, as the statement must stay under psycopg's 4 KB for its parsed placeholders to be cached
-- (core/sql.py): in `c` and `p`, ct = credit type, day = expiry day, n = the part's place in the parts; in `x`,
-- hp/hw = the parked account's pocket and wallet, up/uw = the charged account's pocket and wallet.
WITH src AS MATERIALIZED (
/*source*/
), ww AS MATERIALIZED (
    SELECT coalesce((SELECT watched FROM wallets_wallet WHERE id = (SELECT wallet_id FROM src)), false) AS watched
), c AS MATERIALIZED (
    SELECT (e->>0)::bigint AS ct, (e->>2)::bigint AS held, coalesce((e->>3)::date, %(never)s::date) AS day, n,
           least((e->>2)::bigint, greatest(0, %(amount)s::bigint - coalesce(sum((e->>2)::bigint) OVER (
               ORDER BY n ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))::bigint AS take
    FROM src, jsonb_array_elements(src.parts) WITH ORDINALITY AS a(e, n)
    WHERE src.ok
), p AS MATERIALIZED (
    SELECT p.id, p.balance, p.wallet_id, c.ct, c.day, c.held, c.take, c.n
    FROM c
    JOIN wallets_pocket p ON p.wallet_id = (SELECT wallet_id FROM src) AND p.credit_type_id = c.ct
                         AND p.funding_org_id = %(org)s AND p.expires_on = c.day
    ORDER BY p.id
    FOR UPDATE OF p
), w AS (
    SELECT id, code FROM wallets_wallet WHERE kind = 'external' AND code IN (%(from_code)s, %(to_code)s)
), x AS MATERIALIZED (
    SELECT c.ct, sum(c.held)::bigint AS held, sum(c.take)::bigint AS take,
           min(h.id) AS hp, min(h.wallet_id) AS hw, min(u.id) AS up, min(u.wallet_id) AS uw
    FROM c
    LEFT JOIN wallets_pocket h ON h.wallet_id = (SELECT id FROM w WHERE code = %(from_code)s) AND h.credit_type_id = c.ct
                                AND h.funding_org_id = %(org)s AND h.expires_on = %(never)s::date
    LEFT JOIN wallets_pocket u ON u.wallet_id = (SELECT id FROM w WHERE code = %(to_code)s) AND u.credit_type_id = c.ct
                                AND u.funding_org_id = %(org)s AND u.expires_on = %(never)s::date
    GROUP BY c.ct
), ok AS (
    SELECT count(*) > 0 AND bool_and(hp IS NOT NULL AND (x.take = 0 OR up IS NOT NULL))
           AND (SELECT count(DISTINCT id) FROM p) = (SELECT count(*) FROM c)
           AND %(amount)s::bigint > 0 AND sum(x.take) = %(amount)s::bigint/*only unwatched*/ AS ok
    FROM x
), t1 AS (
    INSERT INTO wallets_transfer (org_id, kind, actor_id, memo, idempotency_key, fingerprint, amount, created_at)
    SELECT %(org)s::bigint, %(release_kind)s, %(actor)s::bigint, %(release_memo)s, %(release_key)s,
           %(release_fingerprint)s, (SELECT sum(held) FROM x)::bigint, %(now)s::timestamptz
    FROM ok WHERE ok.ok
    RETURNING id, org_id, created_at
), t2 AS (
    INSERT INTO wallets_transfer (org_id, kind, actor_id, memo, idempotency_key, fingerprint, amount, created_at)
    SELECT org_id, %(charge_kind)s, %(actor)s::bigint, (SELECT memo FROM src), %(charge_key)s,
           %(charge_fingerprint)s, %(amount)s::bigint, created_at
    FROM t1
    RETURNING id, org_id, created_at
), upd AS (
    UPDATE wallets_pocket q SET balance = q.balance + p.held - p.take
    FROM p, t2
    WHERE q.id = p.id AND p.held <> p.take
    RETURNING q.id, q.balance
), ins AS (
    -- ORDER BY 1 (the transfer: t1 before t2) so that each pocket's entries are in id order, released, charged
    INSERT INTO wallets_entry
        (transfer_id, pocket_id, wallet_id, credit_type_id, org_id, amount, balance_after, created_at)
    SELECT t1.id, hp, hw, ct, org_id, -held, NULL::bigint, created_at FROM t1, x
    UNION ALL
    SELECT t1.id, p.id, wallet_id, ct, org_id, held, balance + held, created_at FROM t1, p
    UNION ALL
    SELECT t2.id, p.id, wallet_id, ct, org_id, -take, balance + held - take, created_at FROM t2, p WHERE take > 0
    UNION ALL
    SELECT t2.id, up, uw, ct, org_id, take, NULL, created_at FROM t2, x WHERE take > 0
    ORDER BY 1
    RETURNING 1
), dom AS (
/*then*/
)
SELECT (SELECT ok FROM src), (SELECT id FROM t1), (SELECT id FROM t2), (SELECT count(*) FROM ins),
       (SELECT row_to_json(dom) FROM dom),
       -- for the movements' legs: [credit type, held, taken, day] per part in order, and [credit type, parked
       -- wallet, charged wallet] per credit type
       (SELECT json_agg(json_build_array(ct, held, take, day) ORDER BY n) FROM p),
       (SELECT json_agg(json_build_array(ct, hw, uw)) FROM x),
       (SELECT wallet_id FROM src), (SELECT memo FROM src),
       -- the balance watches on the member's wallet (wallets/watches.py) with its balance after both transfers
       /*watches*/CASE WHEN EXISTS (SELECT 1 FROM t2) THEN
           (SELECT json_agg(json_build_array(b.id, b.purpose, b.ref_id, b.wallet_id, b.credit_type_id, b.threshold,
                                             (SELECT coalesce(sum(coalesce(u.balance, q.balance)), 0)
                                              FROM wallets_pocket q LEFT JOIN upd u ON u.id = q.id
                                              WHERE q.wallet_id = b.wallet_id AND NOT q.is_external
                                                AND (b.credit_type_id IS NULL OR q.credit_type_id = b.credit_type_id))))
            FROM wallets_balancewatch b
            WHERE b.wallet_id = (SELECT wallet_id FROM src))
       END/*end watches*/,
       -- the member's wallet is watched (Wallet.watched): the unwatched form writes nothing then
       (SELECT watched FROM ww)
