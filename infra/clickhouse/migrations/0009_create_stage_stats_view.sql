CREATE VIEW IF NOT EXISTS flowmeter.stage_stats AS
SELECT minute, workflow, stage, driver, status, count, retries, q[1] AS p50_ms, q[2] AS p90_ms, q[3] AS p99_ms
FROM
(
    SELECT minute, workflow, stage, driver, status, sum(entries) AS count, sum(retries) AS retries,
        quantilesTDigestMerge(0.5, 0.9, 0.99)(duration_quantiles) AS q
    FROM flowmeter.stage_stats_1m
    GROUP BY minute, workflow, stage, driver, status
)
