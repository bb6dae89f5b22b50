-- The balance watches on the wallets a movement touched, each with the watched balance after the movement
-- (the sum of the wallet's pockets, of the watch's credit type or all): one query per movement.
SELECT w.id, w.purpose, w.ref_id, w.wallet_id, w.credit_type_id, w.threshold,
       coalesce((SELECT sum(p.balance) FROM wallets_pocket p
                 WHERE p.wallet_id = w.wallet_id
                   AND (w.credit_type_id IS NULL OR p.credit_type_id = w.credit_type_id)), 0)::bigint
FROM wallets_balancewatch w
WHERE w.wallet_id = ANY(%s::bigint[])
