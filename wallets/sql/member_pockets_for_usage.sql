-- The member's pockets funded by this org, locked, and whether the idempotency key was used already. This
-- statement starts after the membership lock is held, so its snapshot sees a racer's charge with the same key
-- that committed while we waited (a replay, not a second charge or a wrong 402).
SELECT p.id, p.credit_type_id, p.balance, ct.slug, ct.draw_order, p.created_at,
       (SELECT t.id FROM wallets_transfer t WHERE t.org_id = %s AND t.idempotency_key = %s),
       (SELECT t.fingerprint FROM wallets_transfer t WHERE t.org_id = %s AND t.idempotency_key = %s)
FROM wallets_pocket p
JOIN wallets_credittype ct ON ct.id = p.credit_type_id
WHERE p.wallet_id = %s AND p.funding_org_id = %s AND p.balance > 0
ORDER BY p.id
