-- Expiry entries: credits reach the Expired account only through Expiry transfers; an Expiry transfer takes
-- credits only from pockets whose expiry day had come on the day it was made (its created_at in the site's time
-- zone, the first parameter) and puts them only into the Expired account. Two selective halves: the Expired
-- wallet's entries (through the entries' wallet index), and the entries of Expiry transfers.
SELECT * FROM (
    SELECT e.id, e.transfer_id, t.kind, p.expires_on, (t.created_at AT TIME ZONE %(tz)s)::date,
           'into Expired, but the transfer is not an Expiry'
    FROM wallets_entry e
    JOIN wallets_transfer t ON t.id = e.transfer_id
    JOIN wallets_pocket p ON p.id = e.pocket_id
    WHERE e.wallet_id IN (SELECT id FROM wallets_wallet WHERE kind = 'external' AND code = 'expired')
      AND t.kind <> 'expiry'
    UNION ALL
    SELECT e.id, e.transfer_id, t.kind, p.expires_on, (t.created_at AT TIME ZONE %(tz)s)::date,
           CASE WHEN e.amount < 0 THEN 'an Expiry took credits from a pocket before its expiry day'
                ELSE 'an Expiry put credits somewhere other than the Expired account' END
    FROM wallets_transfer t
    JOIN wallets_entry e ON e.transfer_id = t.id
    JOIN wallets_pocket p ON p.id = e.pocket_id
    JOIN wallets_wallet w ON w.id = e.wallet_id
    WHERE t.kind = 'expiry'
      AND ((e.amount < 0 AND p.expires_on > (t.created_at AT TIME ZONE %(tz)s)::date)
           OR (e.amount > 0 AND NOT (w.kind = 'external' AND w.code = 'expired')))
) problems
ORDER BY 1
LIMIT %(limit)s
