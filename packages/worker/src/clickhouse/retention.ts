/**
 * How long each table keeps its rows: a setting (FLOWMETER_*_TTL_DAYS), applied by the migrations runner after the
 * numbered migrations, as `ALTER TABLE … MODIFY TTL` (or `REMOVE TTL` for 0, keep forever). Changing the setting and
 * running the migrations again changes the TTL; rows past it go at the next merges (the change is not materialized
 * on old parts at once, which would rewrite the table). On a cluster the TTL belongs to the replicated `_local` tables
 * (cluster-ddl.ts), on every node. Which setting and column each table uses is in the registry (raw-tables.ts).
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "@flowmeter/platform";
import { localTable, onCluster } from "./cluster-names.js";
import type { RetentionConfig } from "../config.js";
import { RETAINED_TABLES } from "./raw-tables.js";

/** Sets each table's TTL to its configured retention. `cluster`: CLICKHOUSE_CLUSTER. */
export async function applyRetention(
  client: ClickHouseClient,
  retention: RetentionConfig,
  logger: Logger,
  { cluster }: { cluster?: string | undefined } = {},
): Promise<void> {
  const result = await client.query({
    query: "SELECT concat(database, '.', name) AS table, engine_full FROM system.tables WHERE database = 'flowmeter'",
    format: "JSONEachRow",
  });
  const engines = new Map((await result.json<{ table: string; engine_full: string }>()).map((row) => [row.table, row.engine_full]));
  for (const {
    name,
    retention: { column, keep },
  } of RETAINED_TABLES) {
    const table = cluster === undefined ? name : localTable(name);
    const target = cluster === undefined ? table : `${table} ${onCluster(cluster)}`;
    const days = retention[keep];
    const hasTtl = / TTL /.test(engines.get(table) ?? "");
    if (days === 0 && !hasTtl) continue;
    const query =
      days === 0
        ? `ALTER TABLE ${target} REMOVE TTL`
        : `ALTER TABLE ${target} MODIFY TTL toDateTime(${column}) + INTERVAL ${days} DAY SETTINGS materialize_ttl_after_modify = 0`;
    await client.command({ query });
  }
  logger.info("retention applied", {
    raw_days: retention.rawDays,
    telemetry_days: retention.telemetryDays,
    logs_days: retention.logsDays,
    rollup_days: retention.rollupDays,
    dedup_horizon_days: retention.dedupHorizonDays,
    otel_days: retention.otelDays,
  });
}
