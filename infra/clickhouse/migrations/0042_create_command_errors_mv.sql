-- Every client entry that did not succeed, parent and child, feeds command_errors_1m.
CREATE MATERIALIZED VIEW IF NOT EXISTS flowmeter.command_errors_mv TO flowmeter.command_errors_1m AS
SELECT
    toStartOfMinute(completed_at) AS minute,
    command,
    subcommand,
    status,
    error_type,
    count() AS entries
FROM flowmeter.cli_invocations
WHERE status != 'success'
GROUP BY minute, command, subcommand, status, error_type
