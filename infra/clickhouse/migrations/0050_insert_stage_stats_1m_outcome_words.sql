-- The rows stored before migration 0047 again, their status in the outcome vocabulary (success -> succeeded,
-- error -> failed); migration 0051 then deletes the rows with the old words. status is in the sorting key, which
-- ALTER … UPDATE cannot change. The mapped status has no alias: `AS status` would be what WHERE reads.
INSERT INTO flowmeter.stage_stats_1m (minute, workflow, stage, driver, status, entries, retries, duration_quantiles)
SELECT minute, workflow, stage, driver, multiIf(status = 'success', 'succeeded', status = 'user_error', 'user_error', 'failed'),
    entries, retries, duration_quantiles
FROM flowmeter.stage_stats_1m
WHERE status NOT IN ('succeeded', 'failed', 'user_error', 'cancelled', 'timed_out', 'skipped')
