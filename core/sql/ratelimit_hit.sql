-- Count one event for a counter and return its count in the current window, in one statement.
-- The row lock of ON CONFLICT DO UPDATE makes concurrent counts exact across processes; a later window
-- starts the count again at 1, and a late event of an earlier window counts in the current one.
-- Params: key, end of the window (epoch seconds).
INSERT INTO core_ratelimit_counter AS c (key, window_end, hits)
VALUES (%s, %s, 1)
ON CONFLICT (key) DO UPDATE
SET hits = CASE WHEN EXCLUDED.window_end > c.window_end THEN 1 ELSE c.hits + 1 END,
    window_end = GREATEST(c.window_end, EXCLUDED.window_end)
RETURNING hits
