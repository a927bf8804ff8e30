-- The ids of the entries stored within the dedup horizon (FLOWMETER_DEDUP_HORIZON_DAYS, applied as this table's TTL
-- by the migrations runner), as the hex of MD5(insert_id): the exact half of the worker's "already stored?" check, asked only for
-- the ids its in-memory filter cannot rule out (packages/worker/src/consumers/partition-writer.ts), and what a
-- partition's writer rebuilds that filter from when it takes the partition over. Ordered by the hash, so a lookup
-- reads the granules of the ids asked for; partitioned by day, so the horizon leaves by whole parts.
CREATE TABLE IF NOT EXISTS flowmeter.cli_invocation_ids
(
    id_hash FixedString(32) COMMENT 'lower(hex(MD5(insert_id)))',
    received_at DateTime('UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(received_at)
ORDER BY id_hash
TTL received_at + INTERVAL 8 DAY
SETTINGS index_granularity = 1024, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000
