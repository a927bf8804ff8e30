CREATE MATERIALIZED VIEW IF NOT EXISTS flowmeter.otel_log_stats_mv TO flowmeter.otel_log_stats_1m AS
SELECT
    toStartOfMinute(TimestampTime) AS minute,
    ServiceName AS service,
    SeverityNumber AS severity_number,
    SeverityText AS severity_text,
    count() AS records
FROM flowmeter.otel_logs
GROUP BY minute, service, severity_number, severity_text
