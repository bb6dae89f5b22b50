-- Transfers whose recorded amount is not the sum of their positive entries.
SELECT t.id, t.amount, e.s FROM wallets_transfer t
JOIN (SELECT transfer_id, SUM(amount) AS s FROM wallets_entry WHERE amount > 0 GROUP BY transfer_id) e
  ON e.transfer_id = t.id
WHERE t.amount <> e.s LIMIT %s
