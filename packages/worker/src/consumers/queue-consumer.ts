/**
 * One BullMQ queue consumed in batches: many jobs are held in flight at once, their rows gathered by a
 * BatchWriter, and each job completes only after the flush that carried its rows succeeded. When a flush of
 * several jobs fails, they are written one by one, so a job ClickHouse refuses does not hold back the others
 * (they would otherwise share its retries and its fate); the jobs that still fail are retried by BullMQ with backoff.
 */
import { Queue, UnrecoverableError, Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import { createRepeatThrottle, errorMessage, type Logger } from "@flowmeter/platform";
import { JOB_CATALOG, kindOfQueue, payloadProblem, queueOf, retryDelayMs, type JobPayload, type WorkerJobKind } from "@flowmeter/shared";
import { BatchWriter, type FlushReason } from "../batch-writer.js";
import type { WorkerConfig } from "../config.js";
import type { WorkerMetrics } from "../metrics.js";

export interface QueuedJob<Data> {
  jobId: string;
  data: Data;
}

/** What the worker does with the jobs of one kind: its payload type is the kind's (JOB_CATALOG), so a handler for another payload does not compile. */
export interface JobHandler<Kind extends WorkerJobKind> {
  rowsOf: (data: JobPayload<Kind>) => number;
  /** A problem the payload schema cannot express (undefined: none); such a job fails at once, as a malformed one. */
  check?: (data: JobPayload<Kind>) => string | undefined;
  /** When the oldest record of a job was produced, for the queue-lag gauge. */
  producedAtMs: (data: JobPayload<Kind>) => number;
  flush: (jobs: QueuedJob<JobPayload<Kind>>[], reason: FlushReason) => Promise<void>;
}

export interface QueueConsumerOptions {
  /** The kind's queue when absent; a partition's queue (queueOf(kind, partition)) otherwise. Also the metrics label. */
  queue?: string;
  config: Pick<WorkerConfig, "queuePrefix" | "batch" | "concurrency" | "lockDurationMs" | "stalledIntervalMs" | "retryMaxDelayMs">;
  redis: Redis;
  metrics: WorkerMetrics;
  logger: Logger;
}

export interface QueueConsumer {
  queueName: string;
  start(): void;
  /** Jobs waiting or running. */
  pendingJobs(): Promise<number>;
  sampleQueue(): Promise<void>;
  /** Stop taking jobs, flush what is held, close the queue handles. */
  close(): Promise<void>;
}

/** Delayed jobs looked at from each end of the set for the queue-lag gauge. */
const DELAYED_SAMPLE = 50;

/** After this many jobs in a row fail on their own too, the rest of the batch fails without trying (ClickHouse is down). */
const ISOLATION_GIVE_UP_AFTER = 3;

/**
 * The consumer of one queue of jobs of `kind`, each checked against the kind's payload schema before `handler` reads
 * it. A queue that is not one of the kind's in the catalog is refused.
 */
export function createQueueConsumer<Kind extends WorkerJobKind>(kind: Kind, handler: JobHandler<Kind>, options: QueueConsumerOptions): QueueConsumer {
  type Data = JobPayload<Kind>;
  const { queue: name = queueOf(kind), config, redis, metrics, logger } = options;
  if (kindOfQueue(name) !== kind) throw new Error(`${name} is not a queue of ${kind} jobs (JOB_CATALOG: ${JOB_CATALOG[kind].queue})`);
  /** Jobs whose rows failed when written on their own, by job id; their processors throw. */
  const failedAlone = new Map<string, unknown>();

  async function flushIsolatingFailures(jobs: QueuedJob<Data>[], reason: FlushReason): Promise<void> {
    metrics.flushes.inc({ queue: name, reason });
    try {
      await handler.flush(jobs, reason);
      return;
    } catch (error) {
      if (jobs.length === 1) throw error;
      logger.warn("batch failed; writing its jobs one by one", { queue: name, jobs: jobs.length, error: errorMessage(error) });
      let failuresInARow = 0;
      for (const job of jobs) {
        if (failuresInARow >= ISOLATION_GIVE_UP_AFTER) {
          failedAlone.set(job.jobId, error);
          continue;
        }
        try {
          await handler.flush([job], reason);
          failuresInARow = 0;
        } catch (jobError) {
          failedAlone.set(job.jobId, jobError);
          failuresInARow += 1;
        }
      }
    }
  }

  const writer = new BatchWriter<QueuedJob<Data>>({
    name,
    maxRows: config.batch.maxRows,
    maxWaitMs: config.batch.maxWaitMs,
    rowsOf: (job) => handler.rowsOf(job.data),
    flush: flushIsolatingFailures,
  });

  const worker = new Worker<Data>(
    name,
    async function processQueuedJob(job: Job<Data>) {
      const jobId = job.id ?? "";
      // A job not of the shape its queue carries (shared/queues.ts) fails at once instead of retrying.
      const problem = payloadProblem(kind, job.data) ?? handler.check?.(job.data);
      if (problem !== undefined) {
        logger.error("malformed job moved to the failed set without retries (npx flowmeter failed)", { queue: name, job: jobId, problem });
        throw new UnrecoverableError(problem);
      }
      await writer.add({ jobId, data: job.data });
      const failure = failedAlone.get(jobId);
      if (failedAlone.delete(jobId)) throw failure;
    },
    {
      connection: redis,
      prefix: config.queuePrefix,
      concurrency: config.concurrency,
      lockDuration: config.lockDurationMs,
      stalledInterval: config.stalledIntervalMs,
      // A worker killed mid-batch leaves its jobs stalled; they must come back, not fail.
      maxStalledCount: 100,
      settings: { backoffStrategy: (attemptsMade: number) => retryDelayMs(attemptsMade, config.retryMaxDelayMs) },
      autorun: false,
    },
  );
  worker.on("failed", (job, error) => {
    // A malformed job was logged as such and is not retried.
    if (error instanceof UnrecoverableError) return;
    logger.warn("job failed; it will be retried", { queue: name, job: job?.id, attempt: job?.attemptsMade, error: errorMessage(error) });
  });
  const shouldLog = createRepeatThrottle();
  worker.on("error", (error) => {
    if (shouldLog(errorMessage(error))) logger.error("queue worker error (repeats are logged every 30 s)", { queue: name, error: errorMessage(error) });
  });

  const queue = new Queue<Data>(name, { connection: redis, prefix: config.queuePrefix });

  return {
    queueName: name,
    start(): void {
      void worker.run();
    },
    async pendingJobs(): Promise<number> {
      const counts = await queue.getJobCounts("waiting", "active", "prioritized");
      return Object.values(counts).reduce((sum, count) => sum + count, 0);
    },
    async sampleQueue(): Promise<void> {
      const counts = await queue.getJobCounts("waiting", "active", "delayed", "failed");
      for (const [state, count] of Object.entries(counts)) metrics.queueDepth.set({ queue: name, state }, count);
      const [oldestActive] = await queue.getJobs(["active"], 0, 0, true);
      const [oldestWaiting] = await queue.getJobs(["waiting"], 0, 0, true);
      // Delayed jobs are ordered by when they run next, not by age; a job retried longest waits longest, so look at
      // both ends of the set.
      const delayed = [...(await queue.getJobs(["delayed"], 0, DELAYED_SAMPLE - 1, true)), ...(await queue.getJobs(["delayed"], 0, DELAYED_SAMPLE - 1, false))];
      const produced = [oldestActive, oldestWaiting, ...delayed].filter((job) => job !== undefined).map((job) => handler.producedAtMs(job.data as Data));
      metrics.queueLag.set({ queue: name }, produced.length === 0 ? 0 : Math.max(0, (Date.now() - Math.min(...produced)) / 1000));
    },
    async close(): Promise<void> {
      const closing = worker.close();
      await writer.close();
      await closing;
      await queue.close();
    },
  };
}
