-- Count one event for a counter, as the CTE `hit` of a statement (its `RETURNING hits`: the count in the current
-- window). The statement defines `counted` before it: one row counts, no row counts nothing (core/ratelimit.py runs
-- it with `counted AS (SELECT 1)`; the API's key lookup counts only a key it authenticates, in the lookup's own
-- statement, apikeys/models.py).
-- The row lock of ON CONFLICT DO UPDATE makes concurrent counts exact across processes; a later window
-- starts the count again at 1, and a late event of an earlier window counts in the current one.
-- Params: rl_key (the counter), rl_window_end (end of the window, epoch seconds).
hit AS (
    INSERT INTO core_ratelimit_counter AS c (key, window_end, hits)
    SELECT %(rl_key)s::varchar, %(rl_window_end)s::bigint, 1 FROM counted
    ON CONFLICT (key) DO UPDATE
    SET hits = CASE WHEN EXCLUDED.window_end > c.window_end THEN 1 ELSE c.hits + 1 END,
        window_end = GREATEST(c.window_end, EXCLUDED.window_end)
    RETURNING hits
)
