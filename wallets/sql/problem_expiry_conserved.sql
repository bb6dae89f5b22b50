-- Expiry travels with the credits: a transfer between internal pockets only (an org handing credits to a member,
-- a Return...) moves each expiry day's credits whole, so its entries sum to zero per (credit type, pocket expiry
-- day). Transfers with an external leg (purchases, usage, expiry...) are left out: the outside world has no day.
-- Only transfers that touched a pocket with an expiry day are grouped: for the others (every pocket NEVER) the
-- sums per day are the sums per credit type, which problem_transfers.sql checks. They are found from the
-- expiring pockets through the entries' (pocket, ...) index, then their entries through (transfer, pocket).
WITH expiring AS MATERIALIZED (
    SELECT DISTINCT e.transfer_id
    FROM wallets_pocket p
    JOIN wallets_entry e ON e.pocket_id = p.id
    WHERE p.expires_on <> DATE '9999-12-31'
)
SELECT transfer_id, credit_type_id, expires_on, s
FROM (
    SELECT e.transfer_id, e.credit_type_id, p.expires_on, SUM(e.amount) AS s,
           bool_or(bool_or(p.is_external)) OVER (PARTITION BY e.transfer_id) AS external
    FROM expiring x
    JOIN wallets_entry e ON e.transfer_id = x.transfer_id
    JOIN wallets_pocket p ON p.id = e.pocket_id
    GROUP BY e.transfer_id, e.credit_type_id, p.expires_on
) per_day
WHERE NOT external AND s <> 0
ORDER BY transfer_id
LIMIT %s
