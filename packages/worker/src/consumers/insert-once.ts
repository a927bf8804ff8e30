/**
 * Writes rows to a raw table exactly once, although BullMQ delivers jobs at least once:
 *  1. a row seen twice in one batch is written once;
 *  2. each row's identity is claimed in Redis by the job writing it (SET NX, one Lua call per 5000 rows), so
 *     two workers holding copies of one record at the same moment don't both write it; a retried job still
 *     owns its claims. Claims are deleted once the rows are written (step 3 covers them from then on), and
 *     expire after WORKER_CLAIM_TTL_MS when a worker dies holding them;
 *  3. rows already in ClickHouse (a batch written before its worker died, a client re-sending) are dropped;
 *  4. the insert carries a content token, so re-running the same flush after an ambiguous error lands once.
 * Materialized views fire only for what is inserted, so the rollups count each record once too.
 */
import type { Redis } from "ioredis";
import type { ClickHouseClient } from "@clickhouse/client";
import { findStoredIdentities, identityOf, insertSinkRows, type TableSink } from "../clickhouse/table-sink.js";
import type { WorkerConfig } from "../config.js";
import type { WorkerMetrics } from "../metrics.js";

/** Claims each key for its owner unless another owner holds it; returns the 0-based indexes of keys held by others. */
const CLAIM_SCRIPT = `
local lost = {}
for i, key in ipairs(KEYS) do
  local owner = ARGV[i + 1]
  if not redis.call('SET', key, owner, 'PX', ARGV[1], 'NX') and redis.call('GET', key) ~= owner then
    lost[#lost + 1] = i - 1
  end
end
return lost`;
const CLAIM_CHUNK = 5000;

export interface OwnedRow<Row> {
  /** The queue job the row came from. */
  jobId: string;
  row: Row;
}

export interface InsertOnceDeps {
  redis: Redis;
  clickhouse: ClickHouseClient;
  metrics: WorkerMetrics;
  config: Pick<WorkerConfig, "queuePrefix" | "claimTtlMs">;
}

function claimKey(deps: InsertOnceDeps, sink: Pick<TableSink<object>, "label">, identity: string): string {
  return `${deps.config.queuePrefix}:claim:${sink.label}:${identity}`;
}

async function keepClaimed<Row extends object>(deps: InsertOnceDeps, sink: TableSink<Row>, rows: (OwnedRow<Row> & { identity: string })[]) {
  const lost = new Set<number>();
  for (let offset = 0; offset < rows.length; offset += CLAIM_CHUNK) {
    const chunk = rows.slice(offset, offset + CLAIM_CHUNK);
    const keys = chunk.map(({ identity }) => claimKey(deps, sink, identity));
    const owners = chunk.map(({ jobId }) => jobId);
    const indexes = (await deps.redis.eval(CLAIM_SCRIPT, keys.length, ...keys, deps.config.claimTtlMs, ...owners)) as number[];
    for (const index of indexes) lost.add(offset + index);
  }
  return lost.size === 0 ? rows : rows.filter((_, index) => !lost.has(index));
}

/** Returns the number of rows written. Throws when ClickHouse or Redis fails; the caller's jobs then retry. */
export async function insertOnce<Row extends object>(deps: InsertOnceDeps, sink: TableSink<Row>, rows: readonly OwnedRow<Row>[]): Promise<number> {
  const { metrics } = deps;
  const startedAt = performance.now();
  const unique = new Map<string, OwnedRow<Row> & { identity: string }>();
  for (const owned of rows) {
    const identity = identityOf(sink, owned.row);
    if (!unique.has(identity)) unique.set(identity, { ...owned, identity });
  }
  metrics.duplicatesDropped.inc({ table: sink.label, reason: "in_batch" }, rows.length - unique.size);
  try {
    const claimed = await keepClaimed(deps, sink, [...unique.values()]);
    metrics.duplicatesDropped.inc({ table: sink.label, reason: "in_flight" }, unique.size - claimed.length);
    const stored = await findStoredIdentities(deps.clickhouse, sink, claimed.map(({ row }) => row));
    const fresh = claimed.filter(({ identity }) => !stored.has(identity)).map(({ row }) => row);
    metrics.duplicatesDropped.inc({ table: sink.label, reason: "stored" }, claimed.length - fresh.length);

    await insertSinkRows(deps.clickhouse, sink, fresh);
    for (let offset = 0; offset < claimed.length; offset += CLAIM_CHUNK) {
      await deps.redis.unlink(...claimed.slice(offset, offset + CLAIM_CHUNK).map(({ identity }) => claimKey(deps, sink, identity)));
    }
    metrics.rowsInserted.inc({ table: sink.label }, fresh.length);
    metrics.insertBatchRows.observe({ table: sink.label }, fresh.length);
    metrics.insertDuration.observe({ table: sink.label }, (performance.now() - startedAt) / 1000);
    return fresh.length;
  } catch (error) {
    metrics.insertFailures.inc({ table: sink.label });
    throw error;
  }
}
