import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { JOB_CATALOG, type RunEventsJob } from "@flowmeter/shared";
import { DeliveryError } from "../errors.js";
import type { RunSampleStore } from "../telemetry/run-sample-store.js";
import type { DeliverBatch } from "./event-publisher.js";
import type { RunEventStore } from "./run-event-store.js";

export interface QueueDeliveryOptions {
  /** The `run-events` queue, on `redis`. */
  queue: Queue<RunEventsJob>;
  /** The run event store, on `redis`. */
  store: RunEventStore;
  /** The per-run sample buffer, on `redis` (optional: without it samples only go to the queue). */
  samples?: RunSampleStore;
  /** The producer connection (createRedis(url, "producer")): fails fast while Redis is away. */
  redis: Redis;
}

/**
 * Hands one publisher batch to Redis: its events into the run event store and its samples into the sample buffer
 * (for followers and the run API), then the batch as one job on the `run-events` queue (for the worker). Events the
 * store refuses because their run already ended elsewhere (a run failed by a reconciler while this runner was cut
 * off) are dropped from the job too, so downstream never sees events after a run's terminal one. Fails at once,
 * without touching the queue, while the connection is not ready, so nothing waits in a client-side queue to land out
 * of order after a replay.
 */
export function createQueueDelivery({ queue, store, samples, redis }: QueueDeliveryOptions): DeliverBatch {
  return async function deliverRunEvents(batch: RunEventsJob): Promise<void> {
    if (redis.status !== "ready") throw new DeliveryError(`redis connection is ${redis.status}`);
    // Samples first: once a run's terminal event is stored (and its record says it ended), its samples are there too.
    await samples?.append(batch.samples);
    const fenced = new Set(await store.append(batch.events));
    const job = fenced.size === 0 ? batch : { ...batch, events: batch.events.filter((event) => !fenced.has(event)) };
    if (job.events.length === 0 && job.samples.length === 0) return;
    await queue.add(JOB_CATALOG.runEvents.jobName, job, JOB_CATALOG.runEvents.options);
  };
}
