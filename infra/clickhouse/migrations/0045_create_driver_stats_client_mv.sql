-- Client children feed driver_stats with source 'client', their status in the outcome vocabulary (docs/spec.md §6):
-- success -> succeeded, error -> failed, user_error kept (the user's input, not the driver, was at fault).
CREATE MATERIALIZED VIEW IF NOT EXISTS flowmeter.driver_stats_client_mv TO flowmeter.driver_stats_1m AS
SELECT
    toStartOfMinute(completed_at) AS minute,
    'client' AS source,
    driver,
    multiIf(status = 'success', 'succeeded', status = 'user_error', 'user_error', 'failed') AS status,
    count() AS entries,
    quantilesTDigestState(0.5, 0.9, 0.99)(duration_ms) AS duration_quantiles
FROM flowmeter.cli_invocations
WHERE is_child
GROUP BY minute, driver, status
