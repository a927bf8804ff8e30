CREATE VIEW IF NOT EXISTS flowmeter.command_stats AS
SELECT minute, command, subcommand, status, count, q[1] AS p50_ms, q[2] AS p90_ms, q[3] AS p99_ms
FROM
(
    SELECT minute, command, subcommand, status, sum(entries) AS count, quantilesTDigestMerge(0.5, 0.9, 0.99)(duration_quantiles) AS q
    FROM flowmeter.command_stats_1m
    GROUP BY minute, command, subcommand, status
)
