-- Client children (entries with a workflowContext) feed driver_stats with source 'client'.
CREATE MATERIALIZED VIEW IF NOT EXISTS flowmeter.driver_stats_client_mv TO flowmeter.driver_stats_1m AS
SELECT
    toStartOfMinute(completed_at) AS minute,
    'client' AS source,
    driver,
    status,
    count() AS entries,
    quantilesTDigestState(0.5, 0.9, 0.99)(duration_ms) AS duration_quantiles
FROM flowmeter.cli_invocations
WHERE is_child
GROUP BY minute, driver, status
