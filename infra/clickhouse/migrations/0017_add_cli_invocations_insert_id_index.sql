-- An entry is identified by its insert_id alone (docs/spec.md §2), whatever startedAt a re-send carries, so the
-- worker's "already stored?" lookup filters on insert_id without the sort key's time prefix; this index keeps that
-- lookup to the granules that may hold the ids. Parts written before it get it from migration 0018.
ALTER TABLE flowmeter.cli_invocations ADD INDEX IF NOT EXISTS insert_id_bloom insert_id TYPE bloom_filter(0.001) GRANULARITY 1
