-- One vocabulary for outcomes (docs/spec.md §6): a stage ended by a cancel or a timeout says so in stage_outcome, as the
-- runner's stage_outcomes metric does, instead of 'failed'. Rewrites the stored events; the worker writes these words
-- from now on (raw-tables.ts stageOutcome). Rollup rows already built from them stay 'failed': the 1m tables cannot
-- tell them apart.
ALTER TABLE flowmeter.run_events
    UPDATE stage_outcome = if(JSONExtractBool(payload, 'cancelled'), 'cancelled', 'timed_out')
    WHERE event_type = 'stage.failed' AND stage_outcome = 'failed' AND (JSONExtractBool(payload, 'cancelled') OR JSONExtractBool(payload, 'timed_out'))
SETTINGS mutations_sync = 2
