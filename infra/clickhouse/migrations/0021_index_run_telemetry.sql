-- A bloom filter index on run_id for per-run reads of run_telemetry (ordered by time, one row per second per run).
ALTER TABLE flowmeter.run_telemetry ADD INDEX IF NOT EXISTS run_id_bloom run_id TYPE bloom_filter(0.01) GRANULARITY 4
