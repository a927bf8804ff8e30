-- Replaced by migration 0045, which writes the outcome vocabulary (succeeded | failed | user_error) for client rows.
DROP VIEW IF EXISTS flowmeter.driver_stats_client_mv
