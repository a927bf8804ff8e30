-- Client children feed stage_stats: workflow = workflowName, stage = stepName, status in the outcome vocabulary
-- (docs/spec.md §6): success -> succeeded, error -> failed, user_error kept. Clients report no retries.
CREATE MATERIALIZED VIEW IF NOT EXISTS flowmeter.stage_stats_client_mv TO flowmeter.stage_stats_1m AS
SELECT
    toStartOfMinute(completed_at) AS minute,
    workflow_name AS workflow,
    step_name AS stage,
    driver,
    multiIf(status = 'success', 'succeeded', status = 'user_error', 'user_error', 'failed') AS status,
    count() AS entries,
    toUInt64(0) AS retries,
    quantilesTDigestState(0.5, 0.9, 0.99)(duration_ms) AS duration_quantiles
FROM flowmeter.cli_invocations
WHERE is_child
GROUP BY minute, workflow, stage, driver, status
