-- A page of members by usage in the range, most first (ties: newest wallet first), after the keyset cursor
-- (used, wallet id) when given; each row also carries the range's total and the number of members with usage.
-- The range's rolled part is read as whole ISO weeks from reporting_usageweek and the days at its two edges
-- from reporting_usageday (index-only scans); the live tail ({tail}) from the ledger, once. The same
-- statement also returns the org's usage per day (reporting_usageorgday and the tail) as two arrays.
-- Parameters: org, d1_from, d1_to, wk_from, wk_to, d2_from, d2_to, r_from, r_to (dates, ends excluded),
-- tail_since, until, after_used, after_wallet (null for the first page), lim.
WITH tail AS MATERIALIZED (
    {tail}
), usage AS (
    SELECT wallet_id, credits FROM reporting_usageday
    WHERE org_id = %(org)s AND day >= %(d1_from)s AND day < %(d1_to)s
    UNION ALL
    SELECT wallet_id, credits FROM reporting_usageweek
    WHERE org_id = %(org)s AND week >= %(wk_from)s AND week < %(wk_to)s
    UNION ALL
    SELECT wallet_id, credits FROM reporting_usageday
    WHERE org_id = %(org)s AND day >= %(d2_from)s AND day < %(d2_to)s
    UNION ALL
    SELECT wallet_id, credits FROM tail
), per AS (
    SELECT wallet_id, SUM(credits)::bigint AS used FROM usage GROUP BY wallet_id
), tot AS (
    SELECT COALESCE(SUM(used), 0)::bigint AS total, COUNT(*) AS members FROM per
), page AS (
    SELECT per.wallet_id, per.used FROM per
    WHERE %(after_used)s::bigint IS NULL
       OR (per.used, per.wallet_id) < (%(after_used)s::bigint, %(after_wallet)s::bigint)
    ORDER BY per.used DESC, per.wallet_id DESC
    LIMIT %(lim)s
), days AS (
    SELECT array_agg(day ORDER BY day) AS days, array_agg(credits ORDER BY day) AS credits FROM (
        SELECT day, SUM(credits)::bigint AS credits FROM (
            SELECT day, credits FROM reporting_usageorgday
            WHERE org_id = %(org)s AND day >= %(r_from)s AND day < %(r_to)s
            UNION ALL
            SELECT day, credits FROM tail
        ) d
        GROUP BY day
    ) g
)
SELECT page.wallet_id, w.user_id, COALESCE(usr.name, ''), COALESCE(usr.email, ''), page.used,
       tot.total, tot.members, ms.status, days.days, days.credits
FROM tot
CROSS JOIN days
LEFT JOIN page ON true
LEFT JOIN wallets_wallet w ON w.id = page.wallet_id
LEFT JOIN orgs_user usr ON usr.id = w.user_id
LEFT JOIN orgs_membership ms ON ms.user_id = w.user_id AND ms.org_id = %(org)s
ORDER BY page.used DESC, page.wallet_id DESC
