-- Stage output (SPEC §6 run_logs): one row per line a stage attempt wrote on stdout or stderr, numbered per run
-- attempt (seq), cut at 4 KiB (truncated). Ordered by run, so a run's or a stage's lines read as one range.
CREATE TABLE IF NOT EXISTS flowmeter.run_logs
(
    run_id String,
    attempt_id String,
    seq UInt64,
    ts DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    stage_name LowCardinality(String),
    stage_attempt UInt32,
    stream LowCardinality(String),
    line String CODEC(ZSTD(3)),
    truncated Bool
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (run_id, attempt_id, seq)
SETTINGS non_replicated_deduplication_window = 10000
