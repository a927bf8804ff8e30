import { DurableProducer, GroupCommit, SpoolFullError, errorMessage, redisAnswers, withTimeout, type Logger, type SpoolFile } from "@flowmeter/platform";
import {
  ApiError,
  JOB_CATALOG,
  clientTelemetryQueue,
  entryId,
  partitionOf,
  rowLine,
  toClickHouseTime,
  type CliInvocationEvent,
  type ClientTelemetryJob,
  type IngestionWarning,
} from "@flowmeter/shared";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { ENQUEUE_TIMEOUT_MS, REPLAY, UNAVAILABLE_RETRY_AFTER_SECONDS, redisIsAway, unavailable } from "./queue-availability.js";

/** Entries per job; a larger request becomes several jobs added in one round trip. */
export const MAX_ENTRIES_PER_JOB = 1000;
/** Requests waiting for an add linger (INGEST_ENQUEUE_LINGER_MS) only while they hold fewer entries than this. */
const LINGER_BELOW_ENTRIES = 50;

/** The queues ingest produces to: one per partition of the client-telemetry stream (shared's queues.ts), by index. */
export interface ClientTelemetryQueue {
  readonly partitions: readonly Queue<ClientTelemetryJob>[];
}

/**
 * The queues ingest produces to; `connection` should come from createRedis(url, "producer") so adds fail fast.
 * `partitions`: FLOWMETER_PARTITIONS.
 */
export function createIngestQueue(connection: Redis, prefix: string, partitions = 1): ClientTelemetryQueue {
  return {
    partitions: Array.from({ length: partitions }, (_, partition) => new Queue<ClientTelemetryJob>(clientTelemetryQueue(partition), { connection, prefix })),
  };
}

/**
 * Closes Redis, then the queue. BullMQ finishes its connection setup in the background and reports a failure
 * through the queue's "error" listeners; once queue.close() has removed them, such a late failure would become an
 * unhandled rejection. So Redis goes first, the setup is given a moment to settle (it never does when Redis was
 * between reconnect attempts), and the queue is closed last.
 */
export async function closeIngestQueue(queue: ClientTelemetryQueue, redis: Redis, settleMs = 500): Promise<void> {
  // QUIT can wait forever on a server that accepts connections but never answers.
  await settle(redis.quit(), settleMs);
  redis.disconnect();
  await Promise.all(queue.partitions.map((partition) => settle(partition.waitUntilReady(), settleMs)));
  await Promise.all(queue.partitions.map((partition) => partition.close()));
}

/** Waits for `promise` to resolve or reject, or for `ms`, whichever comes first; never throws. */
async function settle(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.catch(() => undefined),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** What one request puts on the queue: its entries to store and the warnings about its repaired and refused ones. */
export interface IngestBatch {
  entries: readonly CliInvocationEvent[];
  warnings: readonly IngestionWarning[];
}

/** The entries and warnings of several requests as one batch. */
function merge(items: readonly AcceptedRequest[]): IngestBatch {
  return { entries: items.flatMap((item) => item.batch.entries), warnings: items.flatMap((item) => item.batch.warnings) };
}

/** A partition's share of a batch: each entry's row serialized once (rowLine), its id, or the entry itself. */
interface PartitionRows {
  lines: string[];
  ids: string[];
  /** Entries whose row could not be built: they travel as entries, for the worker to dead-letter. */
  entries: CliInvocationEvent[];
}

/**
 * Adds the entries as jobs of at most MAX_ENTRIES_PER_JOB on their partitions' queues (the warnings ride with the
 * first job), one round trip per queue, all at once. Each entry goes as its row, serialized here once as the
 * JSONCompactEachRow line the worker inserts (shared's rowLine): the worker concatenates lines, it parses nothing.
 */
async function addJobs(queue: ClientTelemetryQueue, { entries, warnings }: IngestBatch, receivedAtMs: number): Promise<void> {
  const receivedAt = toClickHouseTime(receivedAtMs);
  const byPartition = new Map<number, PartitionRows>();
  const partitions = queue.partitions.length;
  for (const entry of entries) {
    const id = entryId(entry);
    const partition = partitionOf(id, partitions);
    let rows = byPartition.get(partition);
    if (rows === undefined) {
      rows = { lines: [], ids: [], entries: [] };
      byPartition.set(partition, rows);
    }
    try {
      rows.lines.push(rowLine(entry, receivedAt));
      rows.ids.push(id);
    } catch {
      rows.entries.push(entry);
    }
  }
  if (byPartition.size === 0 && warnings.length > 0) byPartition.set(0, { lines: [], ids: [], entries: [] });
  const { jobName, options } = JOB_CATALOG.clientTelemetry;
  let warningsAdded = warnings.length === 0;
  const adds: Promise<unknown>[] = [];
  for (const [partition, rows] of byPartition) {
    const jobs: Array<{ name: typeof jobName; data: ClientTelemetryJob; opts: typeof options }> = [];
    for (let start = 0; start < Math.max(rows.lines.length, 1); start += MAX_ENTRIES_PER_JOB) {
      const data: ClientTelemetryJob = {
        rows: rows.lines.slice(start, start + MAX_ENTRIES_PER_JOB).join("\n"),
        ids: rows.ids.slice(start, start + MAX_ENTRIES_PER_JOB),
        receivedAtMs,
      };
      if (!warningsAdded) {
        data.warnings = [...warnings];
        warningsAdded = true;
      }
      jobs.push({ name: jobName, data, opts: options });
    }
    if (rows.entries.length > 0) jobs.push({ name: jobName, data: { entries: rows.entries, receivedAtMs }, opts: options });
    const target = queue.partitions[partition] as Queue<ClientTelemetryJob>;
    const [first] = jobs;
    if (first !== undefined && jobs.length === 1) adds.push(target.add(first.name, first.data, first.opts));
    else adds.push(target.addBulk(jobs));
  }
  await Promise.all(adds);
}

export type Enqueue = (batch: IngestBatch, receivedAtMs: number) => Promise<void>;

/** One accepted request: its batch and when it came; what a Redis add and a spool line hold. */
export interface AcceptedRequest {
  batch: IngestBatch;
  receivedAtMs: number;
}

/** Why a spool append failed, as the metric's `reason` label says it: a full disk (ENOSPC, EDQUOT) or anything else. */
export type SpoolWriteFailure = "disk_full" | "io_error";

/** The local spool that takes accepted entries while Redis is away (see createEnqueue). */
export interface IngestSpool {
  file: SpoolFile<AcceptedRequest>;
  /** Above this many bytes, requests are answered 503 instead of spooled. */
  maxBytes: number;
  logger: Logger;
  /** Called whenever the spool's contents change (metrics). */
  onChange?: (state: { items: number; bytes: number }) => void;
  /** Called with the requests answered 503 because their append failed (metrics). */
  onWriteFailed?: (reason: SpoolWriteFailure, requests: number) => void;
  /** Called with the spool lines dropped at replay because they were cut short (metrics). */
  onLinesDropped?: (lines: number) => void;
}

export interface EnqueueOptions {
  timeoutMs?: number;
  /** How long a request alone waits for others to share its Redis add (INGEST_ENQUEUE_LINGER_MS). */
  lingerMs?: number;
  /** How long a replay waits for Redis to answer a PING or take a chunk before it tries again later. */
  replayTimeoutMs?: number;
  /** Without a spool, a request that cannot reach Redis is answered 503. */
  spool?: IngestSpool;
}

export interface Enqueuer {
  enqueue: Enqueue;
  /** Opens the spool and replays what an earlier process left there. */
  open(): Promise<void>;
  /** Stops replaying; what is still spooled stays for the next start. */
  close(): Promise<void>;
}

function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

/**
 * Puts entries on the queue, resolving only once they are durable, with group commit: one add is in flight at a
 * time, and the entries of requests arriving meanwhile go together in the next one. A request alone goes out at
 * once; under load, many small requests share a job, which saves a Redis round trip and a worker job each.
 *
 * When Redis is not connected, or the add does not finish within the timeout, the request goes to the local spool
 * instead, and so does every request after it until the spool has been replayed into the queue, in order: platform's
 * DurableProducer (appends fsynced and group-committed; the replay runs on its own, PINGs Redis, drains the spool
 * when Redis answers and otherwise tries again with backoff at most 2 s apart, whether Redis refused connections,
 * froze or is slow). A spool left by a process that died is replayed at the next start. Only when there is no spool,
 * or it is full, or cannot be written (a full disk) is the answer 503 UNAVAILABLE with Retry-After. After a timeout
 * the add may still land later; the spooled copy then duplicates those entries on the queue, and the worker's dedup
 * by entry id absorbs that.
 */
export function createEnqueue(
  queue: ClientTelemetryQueue,
  redis: Redis,
  { timeoutMs = ENQUEUE_TIMEOUT_MS, lingerMs = 0, replayTimeoutMs = REPLAY.timeoutMs, spool }: EnqueueOptions = {},
): Enqueuer {
  let closed = false;
  /** Set while spool appends fail (one log line when it starts, one when it ends). */
  let unwritable: { sinceMs: number; refusedRequests: number } | undefined;

  const addAll = (items: AcceptedRequest[]): Promise<void> => addJobs(queue, merge(items), Math.min(...items.map((item) => item.receivedAtMs)));
  // Only small requests wait for company: a request of LINGER_BELOW_ENTRIES or more is a job's worth already.
  const adds = new GroupCommit<AcceptedRequest>(addAll, {
    lingerMs,
    lingerWhile: (items) => items.reduce((sum, item) => sum + item.batch.entries.length, 0) < LINGER_BELOW_ENTRIES,
  });
  const producer =
    spool === undefined
      ? undefined
      : new DurableProducer<AcceptedRequest>({
          spool: spool.file,
          deliver: addAll,
          logger: spool.logger,
          itemsName: "requests",
          replayTimeoutMs,
          replayChunk: REPLAY.chunk,
          retryMinMs: REPLAY.retryMinMs,
          retryMaxMs: REPLAY.retryMaxMs,
          reachable: () => redisAnswers(redis, replayTimeoutMs),
          maxBytes: spool.maxBytes,
          onSpoolChange: spool.onChange,
          onLinesDropped: spool.onLinesDropped,
        });

  /** The 503 a request is answered when the spool cannot take it; counts and logs (once per episode) a failed append. */
  function spoolRefused(spool: IngestSpool, error: unknown): ApiError {
    if (error instanceof SpoolFullError) {
      return new ApiError("UNAVAILABLE", `the queue is unavailable and the local spool is full (INGEST_SPOOL_MAX_BYTES ${spool.maxBytes}); retry later`, {
        retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS,
        cause: error,
      });
    }
    const reason: SpoolWriteFailure = isDiskFull(error) ? "disk_full" : "io_error";
    spool.onWriteFailed?.(reason, 1);
    if (unwritable === undefined) {
      unwritable = { sinceMs: Date.now(), refusedRequests: 0 };
      spool.logger.error("cannot write the ingest spool: answering 503 until it can", { file: spool.file.path, reason, error: errorMessage(error) });
    }
    unwritable.refusedRequests += 1;
    return new ApiError(
      "UNAVAILABLE",
      reason === "disk_full"
        ? "the queue is unavailable and the local spool's disk is full; retry later"
        : "the queue is unavailable and the local spool cannot be written; retry later",
      { retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS, cause: error },
    );
  }

  /** The group-committed add of one request; between Redis's reconnect attempts it fails at once. */
  function add(item: AcceptedRequest): { written: Promise<void>; withdraw: () => void } {
    if (redisIsAway(redis)) return { written: Promise.reject(new Error(`redis is ${redis.status}`)), withdraw: () => {} };
    return adds.submit(item);
  }

  async function enqueue(batch: IngestBatch, receivedAtMs: number): Promise<void> {
    if (batch.entries.length === 0 && batch.warnings.length === 0) return;
    const item: AcceptedRequest = { batch, receivedAtMs };
    if (producer === undefined || spool === undefined) {
      const { written, withdraw } = add(item);
      // On timeout, an add not sent yet is withdrawn, so it is not stored twice.
      await withTimeout(written, timeoutMs, withdraw).catch((error: unknown) => {
        throw unavailable(error);
      });
      return;
    }
    if (closed) throw unavailable(new Error("ingest is stopping"));
    let withdraw = (): void => {};
    let outcome: "sent" | "spooled";
    try {
      outcome = await producer.send([item], {
        timeoutMs,
        send: () => {
          const submitted = add(item);
          withdraw = submitted.withdraw;
          return submitted.written;
        },
        onTimeout: () => withdraw(),
      });
    } catch (error) {
      throw spoolRefused(spool, error);
    }
    if (outcome === "spooled" && unwritable !== undefined) {
      spool.logger.info("the ingest spool is writable again", {
        file: spool.file.path,
        refused_requests: unwritable.refusedRequests,
        seconds: Math.round((Date.now() - unwritable.sinceMs) / 1000),
      });
      unwritable = undefined;
    }
  }

  return {
    enqueue,
    async open() {
      await producer?.open();
    },
    async close() {
      closed = true;
      await producer?.close();
    },
  };
}
