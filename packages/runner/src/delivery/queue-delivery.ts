import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { JOB_CATALOG, type RunEventsJob } from "@flowmeter/shared";
import { DeliveryError } from "../errors.js";
import type { DeliverBatch } from "./event-publisher.js";
import type { RunEventStore } from "./run-event-store.js";

export interface QueueDeliveryOptions {
  /** The `run-events` queue, on `redis`. */
  queue: Queue<RunEventsJob>;
  /** The run event store, on `redis`. */
  store: RunEventStore;
  /** The producer connection (createRedis(url, "producer")): fails fast while Redis is away. */
  redis: Redis;
}

/**
 * Hands one publisher batch to Redis: its events into the run event store (for followers), then the whole batch
 * as one job on the `run-events` queue (for the worker). Fails at once, without touching the queue, while the
 * connection is not ready, so nothing waits in a client-side queue to land out of order after a replay.
 */
export function createQueueDelivery({ queue, store, redis }: QueueDeliveryOptions): DeliverBatch {
  return async function deliverRunEvents(batch: RunEventsJob): Promise<void> {
    if (redis.status !== "ready") throw new DeliveryError(`redis connection is ${redis.status}`);
    await store.append(batch.events);
    await queue.add(JOB_CATALOG.runEvents.jobName, batch, JOB_CATALOG.runEvents.options);
  };
}
