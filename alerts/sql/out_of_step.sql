-- Alert rules whose state disagrees with their balance now: armed but below the threshold (a crossing whose
-- signal was lost, e.g. the process died between the movement's commit and the task's INSERT), or fired but
-- back at or above it. The periodic sweep (alerts.tasks.sweep_alerts) evaluates them; evaluation decides.
-- One aggregate per rule over its wallet's pockets (the pocket index leads with the wallet).
SELECT r.id
FROM alerts_alertrule r
CROSS JOIN LATERAL (
    SELECT coalesce(sum(p.balance), 0) AS balance
    FROM wallets_pocket p
    WHERE p.wallet_id = r.wallet_id
      AND NOT p.is_external
      AND (r.credit_type_id IS NULL OR p.credit_type_id = r.credit_type_id)
) b
WHERE (r.state = 'armed' AND b.balance < r.threshold)
   OR (r.state = 'fired' AND b.balance >= r.threshold)
ORDER BY r.id
LIMIT %s
