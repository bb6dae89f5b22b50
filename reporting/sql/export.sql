-- The CSV export: one row per transfer, the same cells as reporting.queries rows written by csv_chunks.
-- A template for psycopg.sql: reporting/export.py fills the placeholders in braces with composed SQL
-- (the per credit type aggregates and labels, the org wallet id as a literal, the filtered transfers).
-- One flat aggregate per transfer in a LATERAL (no per-row sort or join): there are only a handful of
-- credit types, so their columns are spelled out. `b` holds the org wallet's balance of each credit type
-- after the transfer (its pocket's, or for a type the org wallet holds in several pockets, their sum).
SELECT t.id AS id,
       to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') AS date,
       {kind} AS kind,
       {from_label} AS "from",
       {to_label} AS "to",
       {credit_type} AS credit_type,
       s.org_amount AS amount,
       t.amount AS credits_moved,
       {balance_after} AS balance_after,
       {actor} AS actor,
       {message} AS message
FROM ({transfers}) t
CROSS JOIN LATERAL (
    SELECT SUM(e.amount) FILTER (WHERE e.wallet_id = {org_wallet}) AS org_amount,
           MIN(e.wallet_id) FILTER (WHERE e.amount < 0) AS min_from,
           MAX(e.wallet_id) FILTER (WHERE e.amount < 0) AS max_from,
           MIN(e.wallet_id) FILTER (WHERE e.amount > 0) AS min_to,
           MAX(e.wallet_id) FILTER (WHERE e.amount > 0) AS max_to,
           {per_type}
    FROM wallets_entry e WHERE e.transfer_id = t.id
) s
CROSS JOIN LATERAL (SELECT {type_balances}) b
LEFT JOIN orgs_user a ON a.id = t.actor_id
LEFT JOIN wallets_wallet fw ON fw.id = s.min_from LEFT JOIN orgs_user fu ON fu.id = fw.user_id
LEFT JOIN wallets_wallet tw ON tw.id = s.min_to LEFT JOIN orgs_user tu ON tu.id = tw.user_id
ORDER BY t.created_at DESC, t.id DESC
