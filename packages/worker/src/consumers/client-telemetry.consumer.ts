/**
 * Consumes ingest's client-telemetry queue into flowmeter.cli_invocations (and, through materialized
 * views, the rollups). Many jobs share one insert; a job completes only after the insert holding its rows.
 *
 * Exactly once, although BullMQ delivers at least once:
 *  1. an entry seen twice in one batch is written once;
 *  2. each entry id is claimed in Redis by the job writing it (SET NX), so two workers holding copies of one
 *     entry at the same moment don't both write it; a retried job still owns its claims;
 *  3. entries already in ClickHouse (a batch written before its worker died, a client re-sending) are dropped;
 *  4. the insert carries a content token, so re-running the same flush after an ambiguous error lands once.
 */
import { Queue, Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { ClickHouseClient } from "@clickhouse/client";
import { JOB_CATALOG, entryId, errorMessage, type ClientTelemetryJob, type Logger } from "@flowmeter/shared";
import { BatchWriter, type FlushReason } from "../batch-writer.js";
import { toClickHouseTime } from "../clickhouse/insert-json-rows.js";
import { TABLE, findStoredInsertIds, insertCliInvocations, toRow, type CliInvocationRow } from "../clickhouse/tables/cli-invocations.table.js";
import type { WorkerConfig } from "../config.js";
import type { WorkerMetrics } from "../metrics.js";

const QUEUE = JOB_CATALOG.clientTelemetry.queue;
const TABLE_LABEL = "cli_invocations";

interface QueuedJob {
  jobId: string;
  data: ClientTelemetryJob;
}

export interface ClientTelemetryConsumerDeps {
  config: Pick<WorkerConfig, "queuePrefix" | "batch" | "concurrency" | "lockDurationMs" | "stalledIntervalMs" | "claimTtlMs" | "failpoint">;
  redis: Redis;
  clickhouse: ClickHouseClient;
  metrics: WorkerMetrics;
  logger: Logger;
}

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

/** Step 2: keeps the rows whose id this job claimed now or claimed on an earlier attempt. */
async function keepClaimed(redis: Redis, prefix: string, ttlMs: number, rows: { jobId: string; row: CliInvocationRow }[]) {
  const lost = new Set<number>();
  for (let offset = 0; offset < rows.length; offset += CLAIM_CHUNK) {
    const chunk = rows.slice(offset, offset + CLAIM_CHUNK);
    const keys = chunk.map(({ row }) => `${prefix}:${QUEUE}:claim:${row.insert_id}`);
    const owners = chunk.map(({ jobId }) => jobId);
    const indexes = (await redis.eval(CLAIM_SCRIPT, keys.length, ...keys, ttlMs, ...owners)) as number[];
    for (const index of indexes) lost.add(offset + index);
  }
  return lost.size === 0 ? rows : rows.filter((_, index) => !lost.has(index));
}

export function createClientTelemetryConsumer({ config, redis, clickhouse, metrics, logger }: ClientTelemetryConsumerDeps) {
  let failpointArmed = config.failpoint === "kill-after-insert";

  async function flushClientTelemetry(jobs: QueuedJob[], reason: FlushReason): Promise<void> {
    const startedAt = performance.now();
    metrics.flushes.inc({ queue: QUEUE, reason });

    const unique = new Map<string, { jobId: string; row: CliInvocationRow }>();
    let entries = 0;
    for (const { jobId, data } of jobs) {
      const receivedAt = toClickHouseTime(data.receivedAtMs);
      for (const event of data.entries) {
        entries += 1;
        const id = entryId(event);
        if (!unique.has(id)) unique.set(id, { jobId, row: toRow(event, receivedAt) });
      }
    }
    metrics.duplicatesDropped.inc({ reason: "in_batch" }, entries - unique.size);

    try {
      const claimed = await keepClaimed(redis, config.queuePrefix, config.claimTtlMs, [...unique.values()]);
      metrics.duplicatesDropped.inc({ reason: "in_flight" }, unique.size - claimed.length);
      const stored = await findStoredInsertIds(clickhouse, claimed.map(({ row }) => row));
      const fresh = claimed.filter(({ row }) => !stored.has(row.insert_id)).map(({ row }) => row);
      metrics.duplicatesDropped.inc({ reason: "stored" }, claimed.length - fresh.length);

      await insertCliInvocations(clickhouse, fresh);
      metrics.rowsInserted.inc({ table: TABLE_LABEL }, fresh.length);
      metrics.insertBatchRows.observe({ table: TABLE_LABEL }, fresh.length);
      metrics.insertDuration.observe({ table: TABLE_LABEL }, (performance.now() - startedAt) / 1000);
      logger.debug("batch written", { table: TABLE, jobs: jobs.length, rows: fresh.length, duplicates: entries - fresh.length, reason, ms: Math.round(performance.now() - startedAt) });
    } catch (error) {
      metrics.insertFailures.inc({ table: TABLE_LABEL });
      logger.error("batch insert failed; its jobs will retry", { table: TABLE, jobs: jobs.length, rows: unique.size, error: errorMessage(error) });
      throw error;
    }

    if (failpointArmed) {
      failpointArmed = false;
      logger.warn("failpoint kill-after-insert: killing the worker before acknowledging the batch");
      process.kill(process.pid, "SIGKILL");
    }
  }

  const writer = new BatchWriter<QueuedJob>({
    name: QUEUE,
    maxRows: config.batch.maxRows,
    maxWaitMs: config.batch.maxWaitMs,
    rowsOf: (job) => job.data.entries.length,
    flush: flushClientTelemetry,
  });

  const worker = new Worker<ClientTelemetryJob>(
    QUEUE,
    async function processClientTelemetryJob(job: Job<ClientTelemetryJob>) {
      await writer.add({ jobId: job.id ?? "", data: job.data });
    },
    {
      connection: redis,
      prefix: config.queuePrefix,
      concurrency: config.concurrency,
      lockDuration: config.lockDurationMs,
      stalledInterval: config.stalledIntervalMs,
      // A worker killed mid-batch leaves its jobs stalled; they must come back, not fail.
      maxStalledCount: 100,
      autorun: false,
    },
  );
  worker.on("failed", (job, error) => {
    logger.warn("job failed", { queue: QUEUE, job: job?.id, attempt: job?.attemptsMade, error: errorMessage(error) });
  });
  worker.on("error", (error) => logger.error("queue worker error", { queue: QUEUE, error: errorMessage(error) }));

  const queue = new Queue<ClientTelemetryJob>(QUEUE, { connection: redis, prefix: config.queuePrefix });

  /** Updates lag and depth gauges; called on each /metrics scrape. */
  async function sampleQueue(): Promise<void> {
    const counts = await queue.getJobCounts("waiting", "active", "delayed", "failed");
    for (const [state, count] of Object.entries(counts)) metrics.queueDepth.set({ queue: QUEUE, state }, count);
    const [oldestActive] = await queue.getJobs(["active"], 0, 0, true);
    const [oldestWaiting] = await queue.getJobs(["waiting"], 0, 0, true);
    const oldest = Math.min(oldestActive?.data.receivedAtMs ?? Infinity, oldestWaiting?.data.receivedAtMs ?? Infinity);
    metrics.queueLag.set({ queue: QUEUE }, Number.isFinite(oldest) ? Math.max(0, (Date.now() - oldest) / 1000) : 0);
  }

  return {
    worker,
    queue,
    sampleQueue,
    start(): void {
      void worker.run();
    },
    /** Shutdown order: stop taking jobs (in-flight ones finish through the final flush), flush, release Redis. */
    async close(): Promise<void> {
      const closing = worker.close();
      await writer.close();
      await closing;
      await queue.close();
    },
  };
}

export type ClientTelemetryConsumer = ReturnType<typeof createClientTelemetryConsumer>;
