CREATE VIEW IF NOT EXISTS flowmeter.otel_span_stats AS
SELECT minute, service, span_name, status_code, count, q[1] AS p50_ms, q[2] AS p90_ms, q[3] AS p99_ms
FROM
(
    SELECT minute, service, span_name, status_code, sum(spans) AS count,
        quantilesTDigestMerge(0.5, 0.9, 0.99)(duration_quantiles) AS q
    FROM flowmeter.otel_span_stats_1m
    GROUP BY minute, service, span_name, status_code
)
