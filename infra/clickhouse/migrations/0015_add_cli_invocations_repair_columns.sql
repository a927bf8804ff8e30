-- What ingest changed to store an entry (docs/spec.md §2, repair before reject): the repair reasons, and the
-- client's own startedAt / completedAt when they were replaced by the receive time. One row per reason and entry
-- also goes to flowmeter.ingestion_warnings (migration 0016).
ALTER TABLE flowmeter.cli_invocations
    ADD COLUMN IF NOT EXISTS repairs Array(LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS client_started_at String,
    ADD COLUMN IF NOT EXISTS client_completed_at String
