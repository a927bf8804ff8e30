-- As migration 0019, for runner events: ZSTD on the JSON payload and the texts, a bloom filter index on run_id
-- (the run API's and the dashboards' per-run reads).
ALTER TABLE flowmeter.run_events
    MODIFY COLUMN payload CODEC(ZSTD(3)),
    MODIFY COLUMN message CODEC(ZSTD(3)),
    MODIFY COLUMN error CODEC(ZSTD(3)),
    ADD INDEX IF NOT EXISTS run_id_bloom run_id TYPE bloom_filter(0.01) GRANULARITY 4
