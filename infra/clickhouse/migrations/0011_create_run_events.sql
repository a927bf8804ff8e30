-- Runner lifecycle events (SPEC §3), one row per event_id. `stage_outcome` is set on the event that ends a
-- stage (succeeded | failed | skipped; a failed attempt that will be retried does not end it), else ''.
CREATE TABLE IF NOT EXISTS flowmeter.run_events
(
    event_id String,
    run_id String,
    attempt_id String,
    seq UInt64,
    ts DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    level LowCardinality(String),
    event_type LowCardinality(String),
    event_type_v2 LowCardinality(String),
    message String,
    workflow String,
    stage_name String,
    group_id LowCardinality(String),
    driver LowCardinality(String),
    stage_attempt UInt32,
    stage_outcome LowCardinality(String),
    duration_ms Float64,
    exit_code Nullable(Int32),
    error String,
    payload String COMMENT 'JSON payload as sent, unknown fields included'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, event_id)
SETTINGS non_replicated_deduplication_window = 10000
