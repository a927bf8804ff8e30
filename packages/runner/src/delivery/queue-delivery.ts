import { JOB_CATALOG, type RunEventsJob } from "@flowmeter/shared";
import { DeliveryError } from "../errors.js";
import type { RunStore } from "../store/run-store.js";
import type { DeliverBatch } from "./event-publisher.js";

/**
 * Hands one publisher batch to Redis: its samples and log lines into their per-run streams and its events into the
 * run event store (for followers and the run API), then the batch as one job on the `run-events` queue (for the
 * worker). Events the store refuses because their run already ended elsewhere (a run failed by a reconciler while
 * this runner was cut off) are dropped from the job too, so downstream never sees events after a run's terminal one.
 * Fails at once, without touching the queue, while the store's connection is not ready, so nothing waits in a
 * client-side queue to land out of order after a replay.
 */
export function createQueueDelivery(store: RunStore): DeliverBatch {
  return async function deliverRunEvents(batch: RunEventsJob): Promise<void> {
    if (store.redis.status !== "ready") throw new DeliveryError(`redis connection is ${store.redis.status}`);
    // Samples and lines first: once a run's terminal event is stored (and its record says it ended), they are there too.
    await Promise.all([store.samples.append(batch.samples), store.logs.append(batch.logs ?? [])]);
    const fenced = new Set(await store.events.append(batch.events));
    const job = fenced.size === 0 ? batch : { ...batch, events: batch.events.filter((event) => !fenced.has(event)) };
    if (job.events.length === 0 && job.samples.length === 0 && (job.logs ?? []).length === 0) return;
    await store.eventsQueue.add(JOB_CATALOG.runEvents.jobName, job, JOB_CATALOG.runEvents.options);
  };
}
