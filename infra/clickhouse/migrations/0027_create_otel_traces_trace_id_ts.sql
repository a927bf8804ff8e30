-- The Collector exporter's trace-id lookup (traces_id_ts_lookup_table.sql): when each trace starts and ends, so a
-- trace view finds its spans' time range before it reads otel_traces. Filled by otel_traces_trace_id_ts_mv (0028).
CREATE TABLE IF NOT EXISTS flowmeter.otel_traces_trace_id_ts
(
    TraceId String CODEC(ZSTD(1)),
    Start DateTime('UTC') CODEC(Delta, ZSTD(1)),
    End DateTime('UTC') CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000
