-- Events that end a stage feed stage_stats; retries = attempts before the last one.
CREATE MATERIALIZED VIEW IF NOT EXISTS flowmeter.stage_stats_runner_mv TO flowmeter.stage_stats_1m AS
SELECT
    toStartOfMinute(ts) AS minute,
    workflow,
    stage_name AS stage,
    driver,
    stage_outcome AS status,
    count() AS entries,
    sum(toUInt64(greatest(stage_attempt, 1) - 1)) AS retries,
    quantilesTDigestState(0.5, 0.9, 0.99)(duration_ms) AS duration_quantiles
FROM flowmeter.run_events
WHERE stage_outcome != ''
GROUP BY minute, workflow, stage, driver, status
