-- The rows stored before migration 0045 again, their status in the outcome vocabulary (success -> succeeded,
-- error -> failed); migration 0049 then deletes the rows with the old words. status is in the sorting key, which
-- ALTER … UPDATE cannot change. The mapped status has no alias: `AS status` would be what WHERE reads.
INSERT INTO flowmeter.driver_stats_1m (minute, source, driver, status, entries, duration_quantiles)
SELECT minute, source, driver, multiIf(status = 'success', 'succeeded', status = 'user_error', 'user_error', 'failed'), entries, duration_quantiles
FROM flowmeter.driver_stats_1m
WHERE status NOT IN ('succeeded', 'failed', 'user_error', 'cancelled', 'timed_out', 'skipped')
