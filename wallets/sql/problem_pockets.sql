-- Pockets whose cached balance differs from the sum of their entries.
SELECT p.id, p.balance, COALESCE(e.s, 0)
FROM wallets_pocket p
LEFT JOIN (SELECT pocket_id, SUM(amount) AS s FROM wallets_entry GROUP BY pocket_id) e
       ON e.pocket_id = p.id
WHERE p.balance <> COALESCE(e.s, 0)
LIMIT %s
