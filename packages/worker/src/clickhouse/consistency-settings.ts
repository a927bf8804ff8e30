/**
 * The ClickHouse settings that make the worker's writes exactly-once, on one server or on a cluster (CLICKHOUSE_CLUSTER).
 *
 * On a cluster the worker writes Distributed tables over ReplicatedMergeTree ones (cluster-ddl.ts). A block is
 * acknowledged only once it is on a majority of its shard's replicas (the insert goes to the shard before it returns,
 * then waits for the quorum), and every read the worker makes sees every acknowledged block or fails: a lookup on a
 * replica that lags would call rows missing that are stored, and their second insert would count them twice in the
 * rollups. `select_sequential_consistency` only holds with sequential quorum inserts (`insert_quorum_parallel = 0`), so a
 * table takes one quorum insert at a time: the worker's table lock already orders the inserts into each raw table.
 */
import type { ClickHouseSettings } from "@clickhouse/client";

export type SettingValue = string | number;

/** Settings of one block's insert; the token makes a re-inserted block land once (block-writer.ts). */
export function insertSettings(token: string, cluster: string | undefined): Record<string, SettingValue> {
  const deduplication = { insert_deduplication_token: token, deduplicate_blocks_in_dependent_materialized_views: 1 };
  if (cluster === undefined) return deduplication;
  return { ...deduplication, distributed_foreground_insert: 1, insert_quorum: "auto", insert_quorum_parallel: 0 };
}

/** Settings of every read through the worker's client: on a cluster, a replica missing an acknowledged insert refuses to answer. */
export function readSettings(cluster: string | undefined): ClickHouseSettings {
  return cluster === undefined ? {} : { select_sequential_consistency: "1" };
}

/** `name = value, …` for a statement's SETTINGS clause. Values are numbers or strings the worker builds (hex tokens, 'auto'). */
export function settingsClause(settings: Record<string, SettingValue>): string {
  return Object.entries(settings)
    .map(([name, value]) => `${name} = ${typeof value === "string" ? `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'` : value}`)
    .join(", ");
}
