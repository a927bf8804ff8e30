CREATE VIEW IF NOT EXISTS flowmeter.otel_log_stats AS
SELECT minute, service, severity_number, severity_text, sum(records) AS count
FROM flowmeter.otel_log_stats_1m
GROUP BY minute, service, severity_number, severity_text
