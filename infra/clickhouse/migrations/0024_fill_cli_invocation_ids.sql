-- The entries stored before cli_invocation_ids existed, as far back as the default horizon (8 days): a client
-- re-sending one of them after the upgrade still finds it stored.
INSERT INTO flowmeter.cli_invocation_ids (id_hash, received_at)
SELECT lower(hex(MD5(insert_id))), toDateTime(received_at)
FROM flowmeter.cli_invocations
WHERE received_at >= now() - INTERVAL 8 DAY
