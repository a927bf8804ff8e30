-- The version of the sender that delivered each entry, parsed by ingest from its User-Agent (`swamp-cli/<VERSION>`,
-- docs/swamp-telemetry.md §2). The swamp CLI queues entries it could not send and sends them at a later invocation,
-- possibly of a newer version: swamp_version is the version that recorded the entry, client_version the one that
-- delivered it. '' for rows stored before this column and for senders that are not the swamp CLI.
ALTER TABLE flowmeter.cli_invocations ADD COLUMN IF NOT EXISTS client_version LowCardinality(String)
