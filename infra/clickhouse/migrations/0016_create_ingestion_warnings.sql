-- One row per repaired (reason: what was changed) or refused (reason 'rejected') client entry, written by the
-- worker from the warnings ingest puts in each job. Unique by warning_id; the worker drops ids already stored.
CREATE TABLE IF NOT EXISTS flowmeter.ingestion_warnings
(
    received_at DateTime64(3, 'UTC'),
    warning_id String,
    reason LowCardinality(String),
    entry_id String,
    distinct_id String,
    source String,
    detail String,
    excerpt String COMMENT 'the start of the entry as sent, at most about 1 KiB'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (received_at, warning_id)
SETTINGS non_replicated_deduplication_window = 10000
