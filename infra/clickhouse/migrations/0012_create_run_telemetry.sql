-- Runner telemetry (SPEC §4): host samples (kind 'host') and step heartbeats (kind 'heartbeat'), one row per
-- (attempt_id, seq). Cumulative counters are stored as sent: read them with max() or deltas, never sum().
CREATE TABLE IF NOT EXISTS flowmeter.run_telemetry
(
    run_id String,
    attempt_id String,
    seq UInt64,
    kind LowCardinality(String),
    ts DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    stage_name String,
    group_id LowCardinality(String),
    stage_attempt UInt32,
    rss_bytes UInt64,
    cpu_percent Float64,
    io_read_bytes UInt64,
    io_write_bytes UInt64,
    elapsed_secs Float64,
    stdout_bytes UInt64,
    stderr_bytes UInt64,
    stdout_delta_bytes UInt64,
    stderr_delta_bytes UInt64,
    stagnant_heartbeats UInt32,
    pid Nullable(Int64),
    pid_alive Bool,
    output_state LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, attempt_id, seq)
SETTINGS non_replicated_deduplication_window = 10000
