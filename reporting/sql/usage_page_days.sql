-- The org's usage per UTC day in the range (days with usage only): reporting_usageorgday before the
-- watermark, the live tail ({tail}) after it. Parameters: org, r_from, r_to (dates, end excluded),
-- tail_since, until.
SELECT day, SUM(credits)::bigint FROM (
    SELECT day, credits FROM reporting_usageorgday WHERE org_id = %(org)s AND day >= %(r_from)s AND day < %(r_to)s
    UNION ALL
    SELECT day, credits FROM ({tail}) tail
) u
GROUP BY day ORDER BY day
