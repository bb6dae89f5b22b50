-- The export: one row per (day, member) with usage in the range, by day then email: reporting_usageday before
-- the watermark, the live tail ({tail}) after it; run inside COPY (...) TO STDOUT. Text cells starting with = + - @ tab or CR get a
-- leading ' (reporting.export.csv_safe), so a spreadsheet never runs them. Parameters: org, r_from, r_to,
-- tail_since, until, per_usd.
SELECT g.day AS date,
       CASE WHEN left(usr.name, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) THEN chr(39) || usr.name ELSE usr.name END
           AS member,
       CASE WHEN left(usr.email, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) THEN chr(39) || usr.email ELSE usr.email END
           AS email,
       g.credits,
       to_char(g.credits::numeric / %(per_usd)s, 'FM999999999999990.00') AS usd
FROM (
    SELECT wallet_id, day, SUM(credits)::bigint AS credits FROM (
        SELECT wallet_id, day, credits FROM reporting_usageday
        WHERE org_id = %(org)s AND day >= %(r_from)s AND day < %(r_to)s
        UNION ALL
        SELECT wallet_id, day, credits FROM ({tail}) tail
    ) u
    GROUP BY wallet_id, day
) g
JOIN wallets_wallet w ON w.id = g.wallet_id
JOIN orgs_user usr ON usr.id = w.user_id
ORDER BY g.day, usr.email, g.wallet_id
