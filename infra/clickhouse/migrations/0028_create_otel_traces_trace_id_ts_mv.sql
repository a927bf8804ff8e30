-- The exporter's traces_id_ts_lookup_mv.sql: one row per trace per inserted block (readers take min(Start), max(End)).
CREATE MATERIALIZED VIEW IF NOT EXISTS flowmeter.otel_traces_trace_id_ts_mv TO flowmeter.otel_traces_trace_id_ts AS
SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM flowmeter.otel_traces
WHERE TraceId != ''
GROUP BY TraceId
