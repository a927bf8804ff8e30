/**
 * Writes rows to a raw table exactly once, although BullMQ delivers jobs at least once:
 *  1. a row seen twice in one batch is written once;
 *  2. the rest runs holding the table's lock (table-lock.ts), one writer per table across workers, so two workers
 *     holding copies of one record meet in order;
 *  3. blocks a cut-short insert left recorded are repaired first (block-journal.ts), so that
 *  4. rows already in ClickHouse (a batch written before its worker died, a client re-sending) are dropped knowing
 *     their rollup rows are there too;
 *  5. the rows go in as one block with a content token; into a table with views, recorded in the journal until the
 *     insert returned.
 * Materialized views fire only for what is inserted, so the rollups count each record once too.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Redis } from "ioredis";
import { errorMessage, type Logger } from "@flowmeter/platform";
import { toBlock, type Block, type BlockWriter } from "../clickhouse/block-writer.js";
import { findStoredIdentities, identityOf, readBackRows, type RawTableShape, type RawTable } from "../clickhouse/raw-table.js";
import type { WorkerConfig } from "../config.js";
import type { WorkerMetrics } from "../metrics.js";
import { createBlockJournal, type BlockJournal } from "./block-journal.js";
import { createTableLock, type TableLock } from "./table-lock.js";

export interface OwnedRow<Row> {
  /** The queue job the row came from. */
  jobId: string;
  row: Row;
}

export interface InsertOnceDeps {
  clickhouse: ClickHouseClient;
  writer: BlockWriter;
  journal: BlockJournal;
  lock: TableLock;
  metrics: WorkerMetrics;
  logger: Logger;
  /** Test-only fault injection (failpoint.ts), called once a block is in ClickHouse. */
  afterInsert?: () => void;
}

/** The block journal and the table locks of a worker, on its Redis and queue prefix. */
export function createExactlyOnceState(
  redis: Redis,
  config: Pick<WorkerConfig, "queuePrefix" | "writeLockTtlMs">,
  logger: Logger,
): Pick<InsertOnceDeps, "journal" | "lock"> {
  return {
    journal: createBlockJournal(redis, config.queuePrefix),
    lock: createTableLock(redis, {
      queuePrefix: config.queuePrefix,
      ttlMs: config.writeLockTtlMs,
      waitMs: 2 * config.writeLockTtlMs,
      onLost: (table) => logger.error("a table's write lock expired while held (the worker stalled longer than WORKER_WRITE_LOCK_TTL_MS)", { table }),
    }),
  };
}

/**
 * ClickHouse names the row it could not read only when it refused the input while parsing it, before any part
 * was written: nothing of such a block needs repairing.
 */
function refusedWhileParsing(error: unknown): boolean {
  return /\(at row \d+\)/.test(errorMessage(error));
}

/** `identities`: identityOf() of each row of the block, in its order. */
async function insertBlock(deps: InsertOnceDeps, table: RawTableShape, block: Block, identities: readonly string[]): Promise<void> {
  if (block.rows === 0) return;
  if (!table.readByViews) {
    await deps.writer.insert(block);
    deps.afterInsert?.();
    return;
  }
  const recorded = { table: table.name, token: block.token, identities };
  await deps.journal.record(recorded);
  try {
    await deps.writer.insert(block);
  } catch (error) {
    if (refusedWhileParsing(error)) await deps.journal.forget(recorded);
    throw error;
  }
  deps.afterInsert?.();
  await deps.journal.forget(recorded);
}

/**
 * Re-inserts, with their tokens, the rows of the blocks a cut-short insert left recorded for its table; call
 * it holding the table's lock. Returns how many blocks there were.
 */
export async function repairRecordedBlocks(
  deps: Pick<InsertOnceDeps, "clickhouse" | "writer" | "journal" | "metrics" | "logger">,
  table: RawTableShape,
): Promise<number> {
  if (!table.readByViews) return 0;
  const blocks = await deps.journal.pending(table.name);
  for (const recorded of blocks) {
    const body = await readBackRows(deps.clickhouse, table, recorded.identities);
    const rows = body.length === 0 ? 0 : body.toString().trimEnd().split("\n").length;
    // No row stored means the raw part never committed: the rows come back with their jobs.
    if (rows > 0) await deps.writer.insert({ table: table.name, columns: table.columns, body, token: recorded.token, rows });
    await deps.journal.forget(recorded);
    deps.metrics.blocksReplayed.inc({ table: table.label });
    deps.logger.warn("repaired a block a cut-short insert left recorded", { table: table.name, rows_recorded: recorded.identities.length, rows_stored: rows });
  }
  return blocks.length;
}

/** Returns the number of rows written. Throws when ClickHouse or Redis fails; the caller's jobs then retry. */
export async function insertOnce<Row extends object>(deps: InsertOnceDeps, table: RawTable<Row>, rows: readonly OwnedRow<Row>[]): Promise<number> {
  const { metrics } = deps;
  const startedAt = performance.now();
  const unique = new Map<string, Row>();
  for (const { row } of rows) {
    const identity = identityOf(table, row);
    if (!unique.has(identity)) unique.set(identity, row);
  }
  metrics.duplicatesDropped.inc({ table: table.label, reason: "in_batch" }, rows.length - unique.size);
  if (unique.size === 0) return 0;
  try {
    const written = await deps.lock.hold(table.name, async () => {
      await repairRecordedBlocks(deps, table);
      const stored = await findStoredIdentities(deps.clickhouse, table, [...unique.values()]);
      const fresh = [...unique].filter(([identity]) => !stored.has(identity));
      metrics.duplicatesDropped.inc({ table: table.label, reason: "stored" }, unique.size - fresh.length);
      const rowsToWrite = fresh.map(([, row]) => row);
      await insertBlock(
        deps,
        table,
        toBlock(table.name, table.columns, rowsToWrite),
        fresh.map(([identity]) => identity),
      );
      return fresh.length;
    });
    metrics.rowsInserted.inc({ table: table.label }, written);
    metrics.insertBatchRows.observe({ table: table.label }, written);
    metrics.insertDuration.observe({ table: table.label }, (performance.now() - startedAt) / 1000);
    return written;
  } catch (error) {
    metrics.insertFailures.inc({ table: table.label });
    throw error;
  }
}
