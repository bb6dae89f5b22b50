-- The ledger statement in its drawn form (wallets/ledger.py `post_usage`): a usage-shaped transfer whose member
-- legs are planned INSIDE the statement, from the pockets it has just locked, so that a usage charge is one
-- statement, one round trip, and in autocommit its own transaction. Same rules as post_transfer.sql:
-- - the membership (the domain row) is locked first: `m` is MATERIALIZED and `p` sorts everything it reads
--   before its LockRows, so the membership row is locked before any pocket;
-- - then the member's pockets funded by this org that can still be spent (balance > 0, expiry day after today)
--   are locked in ascending id order (LockRows over the Sort), re-read at their latest committed version;
-- - `plan` takes the amount from them in the usage draw order: earliest expiry, credit type draw order, credit
--   type, oldest pocket, id (a running sum of the pockets before each one), and finds, beside each, the
--   external account's pocket of its credit type (Usage or Holds, by the account's code: the org's, NEVER).
--   Those are found, not locked: they have no floor and keep no cached balance, so charges of an org share no row;
-- - `t` inserts the transfer only when every pocket is there to draw from, they hold the amount, and every
--   credit type drawn has its external pocket (else the caller creates it and runs the statement again); ON
--   CONFLICT DO NOTHING on (org, idempotency key): a racer with the same key is waited for and nothing is
--   written (the caller reads the first transfer back and replays it). A member who is not active has no `p`;
-- - `upd` and `ins` depend on `t`: one debit entry per pocket drawn (with its new balance) and one credit entry
--   per credit type on the external pocket (no balance); the statement trigger checks they sum to zero.
-- - the balance watches (wallets/watches.py) are read only by the statement's watched form: the ledger sends the
--   unwatched form (`/*watches*/…/*end watches*/` left out, `/*only unwatched*/` a condition on `t`) unless it knows
--   the member's wallet is watched, and that form writes nothing for a wallet with `watched` set (by the watch's
--   trigger), so the ledger sends the watched form then. A watch's subplans cost a charge about 6% of its CPU
--   even when the wallet has none (docs/benchmarks.md, usage_throughput);
-- - a caller may add one data-modifying CTE after `ins` (ledger.py `Then`: a hold's row), reading `t`, and its
--   RETURNING row comes back as the last column;
-- The plan is one CTE of the locked rows with their external pockets beside them, and the entries are read off
-- the UPDATE's own RETURNING: a statement this size spends more of its time starting its plan than running it,
-- so every node left out counts (docs/benchmarks.md, usage_throughput).
WITH m AS MATERIALIZED (
    SELECT m.status, uw.id AS wallet_id, coalesce(uw.watched, false) AS watched
    FROM orgs_membership m
    LEFT JOIN wallets_wallet uw ON uw.kind = 'user' AND uw.user_id = m.user_id
    WHERE m.id = %(membership)s AND m.org_id = %(org)s
    FOR UPDATE OF m
), p AS MATERIALIZED (
    SELECT p.id, p.wallet_id, p.credit_type_id, p.balance, p.expires_on, p.created_at, ct.draw_order, ct.slug
    FROM m
    JOIN wallets_pocket p ON p.wallet_id = m.wallet_id
    JOIN wallets_credittype ct ON ct.id = p.credit_type_id
    WHERE m.status = 'active' AND p.funding_org_id = %(org)s AND p.balance > 0 AND p.expires_on > %(today)s::date
    ORDER BY p.id
    FOR UPDATE OF p
), plan AS MATERIALIZED (
    SELECT p.*,
           least(p.balance, greatest(0, %(amount)s::bigint - coalesce(sum(p.balance) OVER (
               ORDER BY p.expires_on, p.draw_order, p.credit_type_id, p.created_at, p.id
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))::bigint AS take,
           sum(p.balance) OVER () AS available,
           x.id AS to_pocket, x.wallet_id AS to_wallet
    FROM p
    LEFT JOIN wallets_pocket x
           ON x.wallet_id = (SELECT w.id FROM wallets_wallet w WHERE w.kind = 'external' AND w.code = %(to_code)s)
          AND x.credit_type_id = p.credit_type_id AND x.funding_org_id = %(org)s AND x.expires_on = %(never)s::date
), t AS (
    INSERT INTO wallets_transfer (org_id, kind, actor_id, memo, idempotency_key, fingerprint, amount, created_at)
    SELECT %(org)s::bigint, %(kind)s::varchar, %(actor)s::bigint, %(memo)s::varchar, %(key)s::varchar,
           %(fingerprint)s::varchar, %(amount)s::bigint, %(now)s::timestamptz
    WHERE (SELECT bool_and(plan.available >= %(amount)s::bigint AND (plan.take = 0 OR plan.to_pocket IS NOT NULL))
           FROM plan)/*only unwatched*/
    ON CONFLICT DO NOTHING
    RETURNING id, org_id, created_at
), upd AS (
    UPDATE wallets_pocket x SET balance = x.balance - plan.take
    FROM plan, t
    WHERE x.id = plan.id AND plan.take > 0
    RETURNING x.id, x.balance, x.wallet_id, x.credit_type_id, plan.take, plan.to_pocket, plan.to_wallet,
              t.id AS transfer_id, t.org_id, t.created_at
), ins AS (
    INSERT INTO wallets_entry
        (transfer_id, pocket_id, wallet_id, credit_type_id, org_id, amount, balance_after, created_at)
    SELECT upd.transfer_id, upd.id, upd.wallet_id, upd.credit_type_id, upd.org_id, -upd.take, upd.balance,
           upd.created_at
    FROM upd
    UNION ALL
    SELECT min(upd.transfer_id), upd.to_pocket, min(upd.to_wallet), upd.credit_type_id, min(upd.org_id),
           sum(upd.take), NULL, min(upd.created_at)
    FROM upd
    GROUP BY upd.credit_type_id, upd.to_pocket
    RETURNING 1
)/*then*/
SELECT (SELECT m.status FROM m), (SELECT m.wallet_id FROM m), (SELECT m.watched FROM m), (SELECT id FROM t),
       (SELECT count(*) FROM ins),
       -- every pocket the plan saw, in draw order: credit type, slug, credits taken, balance before, expiry day,
       -- its external pocket and wallet (null: missing)
       (SELECT json_agg(json_build_array(plan.credit_type_id, plan.slug, plan.take, plan.balance, plan.expires_on,
                                         plan.to_pocket, plan.to_wallet)
                        ORDER BY plan.expires_on, plan.draw_order, plan.credit_type_id, plan.created_at, plan.id)
        FROM plan),
       -- the balance watches on the member's wallet (wallets/watches.py), as post_transfer.sql returns them
       /*watches*/CASE WHEN EXISTS (SELECT 1 FROM t) THEN
           (SELECT json_agg(json_build_array(w.id, w.purpose, w.ref_id, w.wallet_id, w.credit_type_id,
                                             w.threshold, (SELECT coalesce(sum(coalesce(u.balance, x.balance)), 0)
                                                           FROM wallets_pocket x LEFT JOIN upd u ON u.id = x.id
                                                           WHERE x.wallet_id = w.wallet_id AND NOT x.is_external
                                                             AND (w.credit_type_id IS NULL
                                                                  OR x.credit_type_id = w.credit_type_id))))
            FROM wallets_balancewatch w
            WHERE w.wallet_id = (SELECT m.wallet_id FROM m))
       END/*end watches*/,
       -- what the caller's write (`Then`, put in place of the marker after `ins`) returned, as JSON
       /*written*/NULL::json
