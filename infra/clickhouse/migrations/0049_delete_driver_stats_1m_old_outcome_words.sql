-- The rows migration 0048 copied into the outcome vocabulary.
ALTER TABLE flowmeter.driver_stats_1m
    DELETE WHERE status NOT IN ('succeeded', 'failed', 'user_error', 'cancelled', 'timed_out', 'skipped')
SETTINGS mutations_sync = 2
