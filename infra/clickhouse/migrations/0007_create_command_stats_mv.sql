-- Every client entry, parent and child, feeds command_stats.
CREATE MATERIALIZED VIEW IF NOT EXISTS flowmeter.command_stats_mv TO flowmeter.command_stats_1m AS
SELECT
    toStartOfMinute(completed_at) AS minute,
    command,
    subcommand,
    status,
    count() AS entries,
    quantilesTDigestState(0.5, 0.9, 0.99)(duration_ms) AS duration_quantiles
FROM flowmeter.cli_invocations
GROUP BY minute, command, subcommand, status
