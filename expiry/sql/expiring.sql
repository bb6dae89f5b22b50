-- The emails "credits expire on <day>" due now, recorded once each and returned with what they say.
-- Pockets with a balance expiring after today and at most 7 days from now: the org wallet's go to every active
-- owner and admin of the org, a member's credits funded by the org to that member; one row per
-- (org, person, day), inserted ON CONFLICT DO NOTHING so that a notice already sent (or being sent by a
-- concurrent run, which this statement waits for) is returned to nobody.
WITH due AS (
    SELECT p.org_id, w.kind, w.user_id, p.expires_on, SUM(p.balance) AS credits
    FROM wallets_pocket p
    JOIN wallets_wallet w ON w.id = p.wallet_id
    WHERE p.expires_on > %(today)s AND p.expires_on <= %(until)s
      AND p.balance > 0 AND NOT p.is_external AND p.org_id IS NOT NULL
      AND (w.kind = 'org' OR (w.kind = 'user' AND p.funding_org_id = p.org_id))
    GROUP BY p.org_id, w.kind, w.user_id, p.expires_on
), told AS (
    SELECT d.org_id, m.user_id, d.expires_on, d.credits AS org_credits, 0::bigint AS own_credits
    FROM due d
    JOIN orgs_membership m ON m.org_id = d.org_id AND m.status = 'active' AND m.role IN ('owner', 'admin')
    WHERE d.kind = 'org'
    UNION ALL
    SELECT d.org_id, d.user_id, d.expires_on, 0::bigint, d.credits
    FROM due d
    WHERE d.kind = 'user'
), per_person AS (
    SELECT org_id, user_id, expires_on, SUM(org_credits) AS org_credits, SUM(own_credits) AS own_credits
    FROM told
    GROUP BY org_id, user_id, expires_on
), fresh AS (
    INSERT INTO expiry_expirynotice (org_id, user_id, expires_on, org_credits, own_credits, created_at)
    SELECT org_id, user_id, expires_on, org_credits, own_credits, %(now)s
    FROM per_person
    ORDER BY org_id, user_id, expires_on
    ON CONFLICT (org_id, user_id, expires_on) DO NOTHING
    RETURNING org_id, user_id, expires_on, org_credits, own_credits
)
SELECT f.org_id, o.name, o.slug, u.email, f.expires_on, f.org_credits, f.own_credits
FROM fresh f
JOIN orgs_organization o ON o.id = f.org_id
JOIN orgs_user u ON u.id = f.user_id
ORDER BY f.expires_on, o.name, u.email
