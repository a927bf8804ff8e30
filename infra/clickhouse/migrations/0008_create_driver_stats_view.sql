CREATE VIEW IF NOT EXISTS flowmeter.driver_stats AS
SELECT minute, source, driver, status, count, q[1] AS p50_ms, q[2] AS p90_ms, q[3] AS p99_ms
FROM
(
    SELECT minute, source, driver, status, sum(entries) AS count, quantilesTDigestMerge(0.5, 0.9, 0.99)(duration_quantiles) AS q
    FROM flowmeter.driver_stats_1m
    GROUP BY minute, source, driver, status
)
