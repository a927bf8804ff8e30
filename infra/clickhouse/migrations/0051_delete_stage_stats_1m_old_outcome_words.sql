-- The rows migration 0050 copied into the outcome vocabulary.
ALTER TABLE flowmeter.stage_stats_1m
    DELETE WHERE status NOT IN ('succeeded', 'failed', 'user_error', 'cancelled', 'timed_out', 'skipped')
SETTINGS mutations_sync = 2
