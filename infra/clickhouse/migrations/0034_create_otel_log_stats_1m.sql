-- Log records per minute, service and severity (otel_logs, through otel_log_stats_mv); read through otel_log_stats.
CREATE TABLE IF NOT EXISTS flowmeter.otel_log_stats_1m
(
    minute DateTime('UTC'),
    service LowCardinality(String),
    severity_number UInt8,
    severity_text LowCardinality(String),
    records SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, service, severity_number, severity_text)
SETTINGS non_replicated_deduplication_window = 10000
