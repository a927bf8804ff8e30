/**
 * Writes one partition of the client-telemetry stream into flowmeter.cli_invocations (and, through its materialized
 * views, the rollups) exactly once, at a cost that follows the batch, not the table (issue #22, docs/operations.md):
 *  1. only the holder of the partition's lease writes it (partition-lease.ts), and checks it still holds it before
 *     each write; workers holding different partitions write at the same time;
 *  2. an id seen twice in one batch is written once;
 *  3. the partition's in-memory filter (seen-ids.ts), complete for the ids stored within the dedup horizon, clears
 *     almost every id at once; only the few it cannot rule out are looked up exactly, in cli_invocation_ids (ordered
 *     by the id's hash, kept for the horizon), so no lookup reads the history;
 *  4. the rows go in as one block with a content token, then their ids as a second block; both blocks are kept in
 *     Redis (the partition's journal) from before the first insert until the second returned. A block still kept is
 *     inserted again, with its tokens, before the partition is written again or taken over: ClickHouse skips the
 *     parts that landed (raw table, each view's target, the ids) and writes those that did not, so a worker killed at
 *     any point of a write leaves neither missing rollup rows nor rows whose ids are unknown.
 * A re-send older than the horizon is no longer recognised and is stored again (FLOWMETER_DEDUP_HORIZON_DAYS).
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Redis } from "ioredis";
import { errorMessage, type Logger } from "@flowmeter/platform";
import { entryIdHash, partitionOfHash } from "@flowmeter/shared";
import { blockOfLines, toBlock, type Block, type BlockWriter } from "../clickhouse/block-writer.js";
import { cliInvocationIdsTable, cliInvocationsTable } from "../clickhouse/raw-tables.js";
import type { WorkerMetrics } from "../metrics.js";
import type { PartitionLease } from "./partition-lease.js";
import { SeenIds } from "./seen-ids.js";

export interface PartitionWriterDeps {
  clickhouse: ClickHouseClient;
  writer: BlockWriter;
  redis: Redis;
  queuePrefix: string;
  /** FLOWMETER_PARTITIONS. */
  partitions: number;
  /** FLOWMETER_DEDUP_HORIZON_DAYS. */
  horizonDays: number;
  metrics: WorkerMetrics;
  logger: Logger;
  /** Test-only fault injection (failpoint.ts), called once the rows' block is in ClickHouse. */
  afterInsert?: (() => void) | undefined;
}

/** An entry's row as ingest serialized it: its JSONCompactEachRow line (shared's rowLine) and its insert_id. */
export interface RowLine {
  insertId: string;
  line: string;
}

export interface PartitionWriter {
  readonly partition: number;
  /** Returns the number of rows written. Throws when ClickHouse or Redis fails, or the lease is lost; the jobs then retry. */
  write(rows: readonly RowLine[]): Promise<number>;
}

/** shared's partitionOfHash in SQL, over a column holding the hash's lowercase hex: its first 4 bytes, big-endian, modulo the count. */
export function partitionOfHashSql(hexColumn: string, partitions: number): string {
  return `reinterpretAsUInt32(reverse(unhex(substring(${hexColumn}, 1, 8)))) % ${partitions}`;
}

/** A write's two blocks: the rows, then their ids. */
export interface PartitionWrite {
  rows: Block;
  ids: Block;
}

/** The blocks writing `rows` (already known to be new) at `nowMs` inserts; `hashes`: their entryIdHash(), when known. */
export function partitionWriteOf(rows: readonly RowLine[], nowMs: number, hashes?: readonly Buffer[]): PartitionWrite {
  const receivedAt = clickHouseSeconds(nowMs);
  return {
    // The lines are the rows' bytes as ingest wrote them: the block is their concatenation, nothing is parsed here.
    rows: blockOfLines(
      cliInvocationsTable.name,
      cliInvocationsTable.columns,
      rows.map(({ line }) => line),
    ),
    ids: toBlock(
      cliInvocationIdsTable.name,
      cliInvocationIdsTable.columns,
      rows.map((row, index) => cliInvocationIdsTable.toRow(hashes?.[index] ?? entryIdHash(row.insertId), receivedAt)),
    ),
  };
}

/** The partition's journal: the write in progress, kept in one Redis hash from before its first insert until its last returned. */
export function partitionJournal(redis: Redis, queuePrefix: string, partition: number) {
  const key = `${queuePrefix}:partition-journal:${partition}`;
  return {
    async record(write: PartitionWrite): Promise<void> {
      await redis.hset(key, { ...journalFields("raw", write.rows), ...journalFields("ids", write.ids) });
    },
    async kept(): Promise<PartitionWrite | undefined> {
      const kept = await redis.hgetallBuffer(key);
      if (kept.raw_token === undefined) return undefined;
      return { rows: keptBlock(kept, "raw", cliInvocationsTable), ids: keptBlock(kept, "ids", cliInvocationIdsTable) };
    },
    async forget(): Promise<void> {
      await redis.del(key);
    },
  };
}

export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}

// Harmless if it sticks to a chDB session: it only raises the parser's size limit.
const LONG_QUERIES = { max_query_size: "268435456" };

/** One row of `SELECT id_hash, toUnixTimestamp(received_at) … FORMAT RowBinary`: FixedString(32), UInt32. */
const ID_ROW_BYTES = 36;

/**
 * Takes over a partition its caller holds the lease of: repairs the write a previous holder left cut short, then
 * rebuilds the filter of stored ids from cli_invocation_ids.
 */
export async function openPartitionWriter(deps: PartitionWriterDeps, lease: PartitionLease): Promise<PartitionWriter> {
  const { partition } = lease;
  const { metrics } = deps;
  const journal = partitionJournal(deps.redis, deps.queuePrefix, partition);
  const seen = new SeenIds(deps.horizonDays);

  async function repair(): Promise<void> {
    const kept = await journal.kept();
    if (kept === undefined) return;
    await deps.writer.insert(kept.rows);
    await deps.writer.insert(kept.ids);
    rememberIds(kept.ids, Date.now());
    await journal.forget();
    metrics.blocksReplayed.inc({ table: cliInvocationsTable.label });
    deps.logger.warn("repaired a write a cut-short insert left in the partition's journal", { partition, rows: kept.rows.rows });
  }

  function rememberIds(idsBlock: Block, receivedAtMs: number): void {
    if (idsBlock.rows === 0) return;
    for (const line of idsBlock.body.toString().split("\n")) seen.add(Buffer.from(line.slice(2, 34), "hex"), receivedAtMs);
  }

  async function rebuild(): Promise<void> {
    const startedAt = performance.now();
    const result = await deps.clickhouse.exec({
      query:
        `SELECT id_hash, toUnixTimestamp(received_at) FROM ${cliInvocationIdsTable.name} ` +
        `WHERE received_at >= now() - INTERVAL ${deps.horizonDays} DAY` +
        (deps.partitions === 1 ? "" : ` AND ${partitionOfHashSql("id_hash", deps.partitions)} = ${partition}`) +
        " FORMAT RowBinary",
    });
    const hash = Buffer.alloc(16);
    let carry: Buffer = Buffer.alloc(0);
    for await (const chunk of result.stream as AsyncIterable<Buffer>) {
      const bytes = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
      const whole = bytes.length - (bytes.length % ID_ROW_BYTES);
      for (let offset = 0; offset < whole; offset += ID_ROW_BYTES) {
        hash.write(bytes.toString("latin1", offset, offset + 32), "hex");
        if (partitionOfHash(hash, deps.partitions) !== partition) continue;
        seen.add(hash, bytes.readUInt32LE(offset + 32) * 1000);
      }
      carry = bytes.subarray(whole);
    }
    deps.logger.info("partition taken over", {
      partition,
      stored_ids_in_horizon: seen.size,
      filter_bytes: seen.bytes,
      ms: Math.round(performance.now() - startedAt),
    });
  }

  /** The hashes (hex) among `hashes` that cli_invocation_ids holds. */
  async function storedAmong(hashes: readonly string[]): Promise<Set<string>> {
    if (hashes.length === 0) return new Set();
    const keys = hashes.map((hex) => JSON.stringify([hex])).join("\n");
    const result = await deps.clickhouse.query({
      query: `SELECT id_hash FROM ${cliInvocationIdsTable.name} WHERE id_hash IN (SELECT h FROM format(JSONCompactEachRow, 'h FixedString(32)', '${keys}'))`,
      format: "JSONCompactEachRow",
      clickhouse_settings: LONG_QUERIES,
    });
    return new Set((await result.json<[string]>()).map(([hex]) => hex));
  }

  await repair();
  await rebuild();

  return {
    partition,
    async write(rows) {
      const startedAt = performance.now();
      const unique = new Map<string, RowLine>();
      for (const row of rows) if (!unique.has(row.insertId)) unique.set(row.insertId, row);
      metrics.duplicatesDropped.inc({ table: cliInvocationsTable.label, reason: "in_batch" }, rows.length - unique.size);
      if (unique.size === 0) return 0;
      try {
        if (!(await lease.isHeld())) throw new LeaseLostError(`partition ${partition}'s lease was lost; another worker writes it now`);
        await repair();
        const nowMs = Date.now();
        seen.expire(nowMs);
        const hashes = [...unique.values()].map((row) => ({ row, hash: entryIdHash(row.insertId) }));
        const candidates = hashes.filter(({ hash }) => seen.mayContain(hash)).map(({ hash }) => hash.toString("hex"));
        const stored = await storedAmong(candidates);
        const fresh = stored.size === 0 ? hashes : hashes.filter(({ hash }) => !stored.has(hash.toString("hex")));
        metrics.idLookups.inc({ table: cliInvocationsTable.label }, candidates.length);
        metrics.duplicatesDropped.inc({ table: cliInvocationsTable.label, reason: "stored" }, unique.size - fresh.length);
        if (fresh.length === 0) return 0;
        const write = partitionWriteOf(
          fresh.map(({ row }) => row),
          nowMs,
          fresh.map(({ hash }) => hash),
        );
        await journal.record(write);
        try {
          await deps.writer.insert(write.rows);
        } catch (error) {
          // Refused while parsing (a row's own fault): nothing of the block was written, so nothing is to repair.
          if (/\(at row \d+\)/.test(errorMessage(error))) await journal.forget();
          throw error;
        }
        deps.afterInsert?.();
        await deps.writer.insert(write.ids);
        await journal.forget();
        for (const { hash } of fresh) seen.add(hash, nowMs);
        metrics.rowsInserted.inc({ table: cliInvocationsTable.label }, fresh.length);
        metrics.insertBatchRows.observe({ table: cliInvocationsTable.label }, fresh.length);
        metrics.insertDuration.observe({ table: cliInvocationsTable.label }, (performance.now() - startedAt) / 1000);
        return fresh.length;
      } catch (error) {
        metrics.insertFailures.inc({ table: cliInvocationsTable.label });
        throw error;
      }
    },
  };
}

function journalFields(prefix: "raw" | "ids", block: Block): Record<string, string | Buffer> {
  return { [`${prefix}_token`]: block.token, [`${prefix}_body`]: block.body, [`${prefix}_rows`]: String(block.rows) };
}

function keptBlock(kept: Record<string, Buffer>, prefix: "raw" | "ids", table: { name: string; columns: readonly string[] }): Block {
  return {
    table: table.name,
    columns: table.columns,
    token: kept[`${prefix}_token`]?.toString() ?? "",
    body: kept[`${prefix}_body`] ?? Buffer.alloc(0),
    rows: Number(kept[`${prefix}_rows`]?.toString() ?? "0"),
  };
}

/** ClickHouse DateTime text, whole seconds, UTC. */
function clickHouseSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19).replace("T", " ");
}
