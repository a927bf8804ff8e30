-- Spans per minute, service, span name and status, with duration quantiles in milliseconds (otel_traces, through
-- otel_span_stats_mv); read through otel_span_stats.
CREATE TABLE IF NOT EXISTS flowmeter.otel_span_stats_1m
(
    minute DateTime('UTC'),
    service LowCardinality(String),
    span_name LowCardinality(String),
    status_code LowCardinality(String),
    spans SimpleAggregateFunction(sum, UInt64),
    duration_quantiles AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, service, span_name, status_code)
SETTINGS non_replicated_deduplication_window = 10000
