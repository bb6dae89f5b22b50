-- Roll up the usage of every org in [since, until) (whole UTC days) into reporting_usageday: one row per
-- (org, member's Default wallet, UTC day), the credits the member used that day paid by the org.
-- Usage is found from the Usage wallet's pockets (one per org and credit type) through
-- wallets_entry_pocket_time; each usage transfer once (DISTINCT: one per credit type it credited), then
-- its debits on member pockets funded by the same org (wallets_entry_one_per_pocket leads with transfer_id).
-- An upsert on the unique (org, wallet, day): re-rolling a day replaces its rows with the same sums.
-- Parameters: since, until (timestamptz at UTC midnight).
INSERT INTO reporting_usageday (org_id, wallet_id, day, credits)
SELECT t.org_id, m.wallet_id, (t.created_at AT TIME ZONE 'UTC')::date, SUM(-m.amount)
FROM (
    SELECT DISTINCT u.transfer_id, u.created_at, up.funding_org_id AS org_id
    FROM wallets_wallet uw
    JOIN wallets_pocket up ON up.wallet_id = uw.id AND up.funding_org_id IS NOT NULL
    JOIN wallets_entry u ON u.pocket_id = up.id AND u.created_at >= %(since)s AND u.created_at < %(until)s
    WHERE uw.kind = 'external' AND uw.code = 'usage' AND u.amount > 0
) t
JOIN wallets_entry m ON m.transfer_id = t.transfer_id AND m.amount < 0
JOIN wallets_pocket p ON p.id = m.pocket_id AND p.funding_org_id = t.org_id
JOIN wallets_wallet w ON w.id = p.wallet_id AND w.kind = 'user'
GROUP BY 1, 2, 3
ON CONFLICT (org_id, wallet_id, day) DO UPDATE SET credits = EXCLUDED.credits
;
-- The ISO weeks touching those days, recomputed from reporting_usageday (a week whose days are not all rolled
-- yet holds a partial sum; readers use only weeks that end before the watermark). Parameters: week_from
-- (the Monday on or before since's day), day_to (until's day).
INSERT INTO reporting_usageweek (org_id, wallet_id, week, credits)
SELECT org_id, wallet_id, date_trunc('week', day)::date, SUM(credits)
FROM reporting_usageday
WHERE day >= %(week_from)s AND day < %(day_to)s
GROUP BY 1, 2, 3
ON CONFLICT (org_id, wallet_id, week) DO UPDATE SET credits = EXCLUDED.credits;
-- Each org's total per day, for the chart. Parameters: day_from, day_to.
INSERT INTO reporting_usageorgday (org_id, day, credits)
SELECT org_id, day, SUM(credits)
FROM reporting_usageday
WHERE day >= %(day_from)s AND day < %(day_to)s
GROUP BY 1, 2
ON CONFLICT (org_id, day) DO UPDATE SET credits = EXCLUDED.credits
