CREATE MATERIALIZED VIEW IF NOT EXISTS flowmeter.otel_span_stats_mv TO flowmeter.otel_span_stats_1m AS
SELECT
    toStartOfMinute(Timestamp) AS minute,
    ServiceName AS service,
    SpanName AS span_name,
    StatusCode AS status_code,
    count() AS spans,
    quantilesTDigestState(0.5, 0.9, 0.99)(Duration / 1e6) AS duration_quantiles
FROM flowmeter.otel_traces
GROUP BY minute, service, span_name, status_code
