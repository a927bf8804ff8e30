-- JSON and free-text columns compress far better with ZSTD than with the default LZ4, and the dashboards and
-- operators filter raw rows by user, repository and run: bloom filter indexes let those reads skip granules.
-- Both apply to parts written from now on (merges carry older parts over).
ALTER TABLE flowmeter.cli_invocations
    MODIFY COLUMN invocation_context CODEC(ZSTD(3)),
    MODIFY COLUMN extra CODEC(ZSTD(3)),
    MODIFY COLUMN error_message CODEC(ZSTD(3)),
    ADD INDEX IF NOT EXISTS distinct_id_bloom distinct_id TYPE bloom_filter(0.01) GRANULARITY 4,
    ADD INDEX IF NOT EXISTS repo_id_bloom repo_id TYPE bloom_filter(0.01) GRANULARITY 4,
    ADD INDEX IF NOT EXISTS run_id_bloom run_id TYPE bloom_filter(0.01) GRANULARITY 4
