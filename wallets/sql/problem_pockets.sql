-- Non-external pockets whose cached balance differs from the sum of their entries (external pockets keep
-- no cached balance: a CHECK holds it at 0).
SELECT p.id, p.balance, COALESCE(e.s, 0)
FROM wallets_pocket p
LEFT JOIN (SELECT pocket_id, SUM(amount) AS s FROM wallets_entry GROUP BY pocket_id) e
       ON e.pocket_id = p.id
WHERE p.balance <> COALESCE(e.s, 0) AND NOT p.is_external
LIMIT %s
