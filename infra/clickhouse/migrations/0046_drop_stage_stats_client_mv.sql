-- Replaced by migration 0047, which writes the outcome vocabulary (succeeded | failed | user_error) for client rows.
DROP VIEW IF EXISTS flowmeter.stage_stats_client_mv
