-- Client entries that did not succeed, per minute, command, subcommand, status (error | user_error) and error type,
-- filled by command_errors_mv (migration 0042) from the entries stored after it was created.
CREATE TABLE IF NOT EXISTS flowmeter.command_errors_1m
(
    minute DateTime('UTC'),
    command LowCardinality(String),
    subcommand LowCardinality(String),
    status LowCardinality(String),
    error_type LowCardinality(String),
    entries SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, command, subcommand, status, error_type)
SETTINGS non_replicated_deduplication_window = 10000
