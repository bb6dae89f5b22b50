-- The "from" or "to" cell of the CSV export: "N members" when several wallets are on that side, else the
-- wallet's label (as reporting.queries labels it), "—" when none is. reporting/export.py fills the
-- placeholders in braces: the side's min/max wallet ids and leg counts, the joined wallet and user.
CASE WHEN {min_wallet} <> {max_wallet}
     THEN to_char(GREATEST({leg_counts}, 2), 'FM999,999,999,990') || ' members'
     WHEN {min_wallet} IS NULL THEN '—'
     ELSE CASE WHEN {wallet}.id = {org_wallet} THEN 'Org wallet'
               WHEN {wallet}.kind = {user_kind} THEN COALESCE(NULLIF({user}.name, ''), {user}.email)
               ELSE {wallet}.name END
END
