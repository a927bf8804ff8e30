import { ApiError, JOB_CATALOG, type CliInvocationEvent, type ClientTelemetryJob, type IngestionWarning } from "@flowmeter/shared";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";

/** Entries per job; a larger request becomes several jobs added in one round trip. */
export const MAX_ENTRIES_PER_JOB = 1000;
export const ENQUEUE_TIMEOUT_MS = 2000;
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

const FAIL_FAST_STATUSES: ReadonlySet<string> = new Set(["reconnecting", "close", "end"]);

export type ClientTelemetryQueue = Queue<ClientTelemetryJob>;

/** The queue ingest produces to; `connection` should come from createRedis(url, "producer") so adds fail fast. */
export function createIngestQueue(connection: Redis, prefix: string): ClientTelemetryQueue {
  return new Queue<ClientTelemetryJob>(JOB_CATALOG.clientTelemetry.queue, { connection, prefix });
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
  await settle(queue.waitUntilReady(), settleMs);
  await queue.close();
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

function unavailable(cause?: unknown): ApiError {
  return new ApiError("UNAVAILABLE", "the queue is unavailable; retry later", { retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS, cause });
}

/** What one request puts on the queue: its entries to store and the warnings about its repaired and refused ones. */
export interface IngestBatch {
  entries: readonly CliInvocationEvent[];
  warnings: readonly IngestionWarning[];
}

/** Adds the entries as jobs of at most MAX_ENTRIES_PER_JOB (the warnings ride with the first), in one round trip. */
async function addJobs(queue: ClientTelemetryQueue, { entries, warnings }: IngestBatch, receivedAtMs: number): Promise<void> {
  const { jobName, options } = JOB_CATALOG.clientTelemetry;
  const jobs: Array<{ name: typeof jobName; data: ClientTelemetryJob; opts: typeof options }> = [];
  for (let start = 0; start < Math.max(entries.length, warnings.length > 0 ? 1 : 0); start += MAX_ENTRIES_PER_JOB) {
    const data: ClientTelemetryJob = { entries: entries.slice(start, start + MAX_ENTRIES_PER_JOB), receivedAtMs };
    if (start === 0 && warnings.length > 0) data.warnings = [...warnings];
    jobs.push({ name: jobName, data, opts: options });
  }
  const [first] = jobs;
  if (first === undefined) return;
  if (jobs.length === 1) await queue.add(first.name, first.data, first.opts);
  else await queue.addBulk(jobs);
}

interface PendingEnqueue {
  batch: IngestBatch;
  receivedAtMs: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export type Enqueue = (batch: IngestBatch, receivedAtMs: number) => Promise<void>;

/**
 * Puts entries on the queue, resolving only once Redis has them, with group commit: one add is in flight at a time,
 * and the entries of requests arriving meanwhile go together in the next one. A request alone goes out at once;
 * under load, many small requests share a job, which saves a Redis round trip and a worker job each.
 *
 * Throws ApiError UNAVAILABLE when Redis is not connected or the add does not finish within the timeout. After a
 * timeout the add may still land later; a client retry then duplicates those entries on the queue, and the worker's
 * dedup by entry id absorbs that.
 */
export function createEnqueue(queue: ClientTelemetryQueue, redis: Redis, timeoutMs = ENQUEUE_TIMEOUT_MS): Enqueue {
  let waiting: PendingEnqueue[] = [];
  let adding = false;

  function addWaiting(): void {
    if (adding || waiting.length === 0) return;
    const batch = waiting;
    waiting = [];
    adding = true;
    const receivedAtMs = Math.min(...batch.map((pending) => pending.receivedAtMs));
    const merged: IngestBatch = { entries: batch.flatMap((pending) => pending.batch.entries), warnings: batch.flatMap((pending) => pending.batch.warnings) };
    addJobs(queue, merged, receivedAtMs)
      .then(
        () => batch.forEach((pending) => pending.resolve()),
        (error: unknown) => batch.forEach((pending) => pending.reject(error)),
      )
      .finally(() => {
        adding = false;
        addWaiting();
      });
  }

  return async function enqueue(batch, receivedAtMs) {
    // Fail fast between reconnect attempts; during a connection attempt BullMQ waits for "ready", bounded by the timeout.
    if (FAIL_FAST_STATUSES.has(redis.status)) throw unavailable();
    if (batch.entries.length === 0 && batch.warnings.length === 0) return;
    let pending: PendingEnqueue | undefined;
    const stored = new Promise<void>((resolve, reject) => {
      pending = { batch, receivedAtMs, resolve, reject };
      waiting.push(pending);
    });
    addWaiting();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        // Not sent yet: drop it, so a request answered 503 is not stored after all.
        waiting = waiting.filter((candidate) => candidate !== pending);
        reject(new Error(`enqueue timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      await Promise.race([stored, timeout]);
    } catch (error) {
      throw unavailable(error);
    } finally {
      clearTimeout(timer);
    }
  };
}
