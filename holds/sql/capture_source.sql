-- A capture's domain row for the ledger's settling statement (wallets/sql/post_settle.sql, `src`): the hold and
-- its membership, locked first, as lock_hold.sql locks them. `ok` when the capture can be made in one statement:
-- the hold is open and not past its time, its member is still active (a removed member's rest goes to the org
-- wallet: holds.services' general path) and the amount is at most the held amount. Anything else writes nothing
-- and the general path answers (replay, 409, 422). `memo`: the HOLD_CAPTURE transfer's, as the general path's.
SELECT h.wallet_id, h.parts,
       h.status = 'open' AND m.status = 'active' AND h.expires_at > %(now)s::timestamptz
           AND %(amount)s::bigint <= h.amount AS ok,
       coalesce(nullif(h.description, ''), 'Hold ' || h.id || ' captured') AS memo
FROM holds_hold h
JOIN orgs_membership m ON m.id = h.membership_id
WHERE h.id = %(hold)s::bigint AND h.org_id = %(org)s::bigint
FOR UPDATE OF h, m
