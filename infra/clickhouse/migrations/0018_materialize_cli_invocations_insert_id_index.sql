-- Builds insert_id_bloom (migration 0017) for the parts that existed before it.
ALTER TABLE flowmeter.cli_invocations MATERIALIZE INDEX insert_id_bloom
