-- Capture, void and expiry: the hold (the domain row, first in the lock order) and its membership, locked in
-- one statement, with the wallets the capture or release needs (Holds, Usage, the org wallet), in one round
-- trip. Parameters: hold id, org id.
SELECT h.id, h.membership_id, h.wallet_id, h.api_key_id, h.amount, h.captured, h.status, h.description, h.parts,
       h.idempotency_key, h.created_at, h.expires_at, h.closed_at, h.hold_transfer_id, h.capture_transfer_id,
       h.release_transfer_id, m.status,
       (SELECT x.id FROM wallets_wallet x WHERE x.kind = 'external' AND x.code = 'holds'),
       (SELECT x.id FROM wallets_wallet x WHERE x.kind = 'external' AND x.code = 'usage'),
       (SELECT x.id FROM wallets_wallet x WHERE x.kind = 'org' AND x.org_id = h.org_id)
FROM holds_hold h
JOIN orgs_membership m ON m.id = h.membership_id
WHERE h.id = %s AND h.org_id = %s
FOR UPDATE OF h, m
