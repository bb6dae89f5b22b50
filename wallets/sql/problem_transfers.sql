-- Transfers whose entries do not sum to zero for a credit type.
SELECT transfer_id, credit_type_id, SUM(amount) FROM wallets_entry
GROUP BY transfer_id, credit_type_id HAVING SUM(amount) <> 0 LIMIT %s
