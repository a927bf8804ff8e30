-- Events that end a stage feed driver_stats with source 'runner'.
CREATE MATERIALIZED VIEW IF NOT EXISTS flowmeter.driver_stats_runner_mv TO flowmeter.driver_stats_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    'runner' AS source,
    driver,
    stage_outcome AS status,
    count() AS entries,
    quantilesTDigestState(0.5, 0.9, 0.99)(duration_ms) AS duration_quantiles
FROM flowmeter.run_events
WHERE stage_outcome != ''
GROUP BY minute, driver, status
