-- One row per accepted cli_invocation entry (SPEC §2). The worker drops entries already stored before it
-- inserts, so rows are unique by insert_id; ORDER BY (started_at, insert_id) keeps that lookup cheap.
CREATE TABLE IF NOT EXISTS flowmeter.cli_invocations
(
    insert_id String,
    entry_id String,
    distinct_id String,
    received_at DateTime64(3, 'UTC'),
    started_at DateTime64(3, 'UTC'),
    completed_at DateTime64(3, 'UTC'),
    duration_ms Float64,
    command LowCardinality(String),
    subcommand LowCardinality(String),
    args Array(String),
    option_keys Array(String),
    global_options Array(String),
    status LowCardinality(String),
    exit_code Int32,
    error_type LowCardinality(String),
    error_message String,
    swamp_version LowCardinality(String),
    deno_version LowCardinality(String),
    platform LowCardinality(String),
    repo_id String,
    is_child Bool,
    parent_invocation_id String,
    workflow_name String,
    run_id String,
    job_name String,
    step_name String,
    model_type LowCardinality(String),
    driver LowCardinality(String),
    trigger_source LowCardinality(String),
    initiated_by String,
    invocation_context String COMMENT 'JSON object, as sent',
    extra String COMMENT 'JSON: every field the schema does not know, at its path'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(started_at)
ORDER BY (started_at, insert_id)
SETTINGS non_replicated_deduplication_window = 10000
