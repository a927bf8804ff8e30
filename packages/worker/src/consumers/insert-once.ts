/**
 * Writes rows to a raw table exactly once, although BullMQ delivers jobs at least once:
 *  1. a row seen twice in one batch is written once;
 *  2. each row's identity is claimed in Redis by the job writing it (SET NX, one Lua call per 5000 rows), so
 *     two workers holding copies of one record at the same moment don't both write it; a retried job still
 *     owns its claims. Claims are deleted once the rows are written (step 3 covers them from then on), and
 *     expire after WORKER_CLAIM_TTL_MS when a worker dies holding them;
 *  3. rows already in ClickHouse (a batch written before its worker died, a client re-sending) are dropped;
 *  4. the rows go in as one block, recorded in the block journal before the insert and forgotten after it. Blocks
 *     still recorded (a worker killed mid-insert, an ambiguous error) are re-inserted, same bytes and token, before
 *     step 3 runs, so "already stored" never hides rollup rows a cut-short insert did not write (block-journal.ts).
 * Materialized views fire only for what is inserted, so the rollups count each record once too.
 */
import type { Redis } from "ioredis";
import type { ClickHouseClient } from "@clickhouse/client";
import { errorMessage, type Logger } from "@flowmeter/shared";
import { toBlock, type Block, type BlockWriter } from "../clickhouse/block-writer.js";
import { findStoredIdentities, identityOf, type TableSink } from "../clickhouse/table-sink.js";
import type { WorkerConfig } from "../config.js";
import type { WorkerMetrics } from "../metrics.js";
import type { BlockJournal } from "./block-journal.js";

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
  writer: BlockWriter;
  journal: BlockJournal;
  metrics: WorkerMetrics;
  logger: Logger;
  config: Pick<WorkerConfig, "queuePrefix" | "claimTtlMs">;
  /** Test-only fault injection, called once a block is in ClickHouse. */
  afterInsert?: () => void;
}

/**
 * ClickHouse names the row it could not read only when it refused the input while parsing it, before any part
 * was written: such a block is dropped from the journal (its rows go back to their jobs), never replayed.
 */
function refusedWhileParsing(error: unknown): boolean {
  return /\(at row \d+\)/.test(errorMessage(error));
}

async function insertRecorded(deps: InsertOnceDeps, block: Block): Promise<void> {
  if (block.rows === 0) return;
  await deps.journal.record(block);
  try {
    await deps.writer.insert(block);
  } catch (error) {
    if (refusedWhileParsing(error)) await deps.journal.forget(block);
    throw error;
  }
  deps.afterInsert?.();
  await deps.journal.forget(block);
}

/** Re-inserts the blocks of `table` whose inserts may have been cut short; returns how many there were. */
export async function replayRecordedBlocks(deps: Pick<InsertOnceDeps, "writer" | "journal" | "metrics" | "logger">, sink: Pick<TableSink<object>, "table" | "label">): Promise<number> {
  const { table, label } = sink;
  const blocks = await deps.journal.pending(table);
  for (const block of blocks) {
    try {
      await deps.writer.insert(block);
    } catch (error) {
      if (!refusedWhileParsing(error)) throw error;
      deps.logger.error("a recorded block ClickHouse refuses was dropped; its rows were never written", { table, rows: block.rows, error: errorMessage(error) });
    }
    await deps.journal.forget(block);
    deps.metrics.blocksReplayed.inc({ table: label });
  }
  if (blocks.length > 0) deps.logger.warn("re-inserted blocks a cut-short insert left recorded", { table, blocks: blocks.length });
  return blocks.length;
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
    await replayRecordedBlocks(deps, sink);
    const claimed = await keepClaimed(deps, sink, [...unique.values()]);
    metrics.duplicatesDropped.inc({ table: sink.label, reason: "in_flight" }, unique.size - claimed.length);
    const stored = await findStoredIdentities(deps.clickhouse, sink, claimed.map(({ row }) => row));
    const fresh = claimed.filter(({ identity }) => !stored.has(identity)).map(({ row }) => row);
    metrics.duplicatesDropped.inc({ table: sink.label, reason: "stored" }, claimed.length - fresh.length);

    await insertRecorded(deps, toBlock(sink.table, sink.columns, fresh));
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
