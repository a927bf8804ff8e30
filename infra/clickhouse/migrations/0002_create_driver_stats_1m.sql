CREATE TABLE IF NOT EXISTS flowmeter.driver_stats_1m
(
    minute DateTime('UTC'),
    source LowCardinality(String) COMMENT 'client | runner',
    driver LowCardinality(String),
    status LowCardinality(String),
    entries SimpleAggregateFunction(sum, UInt64),
    duration_quantiles AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, source, driver, status)
SETTINGS non_replicated_deduplication_window = 10000
