/**
 * This worker's share of the client-telemetry stream: for each partition it lists (WORKER_PARTITIONS), it waits for
 * the partition's lease, takes the partition over (partition-writer.ts) and consumes its queue until the lease is
 * lost or the worker stops, then waits for the lease again. Workers listing the same partition are each other's
 * standby: one writes it, the other takes over within WORKER_WRITE_LOCK_TTL_MS of its death.
 */
import { createRepeatThrottle, errorMessage, type Logger } from "@flowmeter/platform";
import { queueOf } from "@flowmeter/shared";
import type { WorkerConfig } from "../config.js";
import type { ConsumerDeps } from "./client-telemetry.consumer.js";
import { tryAcquirePartitionLease, type PartitionLease } from "./partition-lease.js";
import { openPartitionWriter, type PartitionWriterDeps } from "./partition-writer.js";
import { createQueueConsumer, type QueueConsumer } from "./queue-consumer.js";
import { WORKER_HANDLERS } from "./worker-handlers.js";

/** How often a worker asks for a lease another worker holds (or that Redis could not give). */
const ACQUIRE_POLL_MS = 1_000;

export interface PartitionConsumers {
  /** The consumers of the partitions held now. */
  held(): QueueConsumer[];
  /** Stops asking for leases; the held partitions are drained and closed by the caller (drainThenClose), then released. */
  stopAcquiring(): void;
  releaseAll(): Promise<void>;
  /** Stops asking, closes the held consumers (flushing what they hold) and releases their leases. */
  close(): Promise<void>;
}

export function startPartitionConsumers(
  deps: ConsumerDeps & Omit<PartitionWriterDeps, "partitions" | "horizonDays" | "queuePrefix">,
  config: Pick<WorkerConfig, "queuePrefix" | "partitions" | "ownPartitions" | "writeLockTtlMs"> & { horizonDays: number },
  logger: Logger,
): PartitionConsumers {
  const held = new Map<number, { lease: PartitionLease; consumer: QueueConsumer }>();
  let stopping = false;
  const shouldLog = createRepeatThrottle();

  async function run(partition: number): Promise<void> {
    let waitingLogged = false;
    while (!stopping) {
      const lease = await tryAcquirePartitionLease(deps.redis, { queuePrefix: config.queuePrefix, partition, ttlMs: config.writeLockTtlMs }).catch(
        () => undefined,
      );
      if (lease === undefined) {
        if (!waitingLogged) logger.info("waiting for a partition's lease (another worker writes it, or Redis is away)", { partition });
        waitingLogged = true;
        await new Promise((resolve) => setTimeout(resolve, ACQUIRE_POLL_MS));
        continue;
      }
      waitingLogged = false;
      try {
        const writer = await openPartitionWriter(
          { ...deps, queuePrefix: config.queuePrefix, partitions: config.partitions, horizonDays: config.horizonDays },
          lease,
        );
        if (stopping) {
          await lease.release();
          return;
        }
        const consumer = createQueueConsumer("clientTelemetry", WORKER_HANDLERS.clientTelemetry(deps, writer), {
          ...deps,
          queue: queueOf("clientTelemetry", partition),
        });
        held.set(partition, { lease, consumer });
        deps.metrics.partitionsHeld.set({ partition: String(partition) }, 1);
        consumer.start();
        await lease.lost;
        if (held.get(partition)?.lease !== lease) return;
        held.delete(partition);
        deps.metrics.partitionsHeld.set({ partition: String(partition) }, 0);
        logger.error("lost a partition's lease (the worker stalled past WORKER_WRITE_LOCK_TTL_MS); its jobs go back to the queue", { partition });
        await consumer.close().catch(() => undefined);
      } catch (error) {
        // Every second while ClickHouse is away: logged once per error every 30 s.
        if (shouldLog(`${partition} ${errorMessage(error)}`)) {
          logger.warn("could not take a partition over; retrying (repeats are logged every 30 s)", { partition, error: errorMessage(error) });
        }
        await lease.release();
        await new Promise((resolve) => setTimeout(resolve, ACQUIRE_POLL_MS));
      }
    }
  }

  for (const partition of config.ownPartitions) void run(partition);

  const partitionConsumers: PartitionConsumers = {
    held: () => [...held.values()].map(({ consumer }) => consumer),
    stopAcquiring() {
      stopping = true;
    },
    async releaseAll() {
      const leases = [...held.values()].map(({ lease }) => lease);
      held.clear();
      for (const partition of config.ownPartitions) deps.metrics.partitionsHeld.set({ partition: String(partition) }, 0);
      await Promise.all(leases.map((lease) => lease.release()));
    },
    async close() {
      stopping = true;
      await Promise.all(partitionConsumers.held().map((consumer) => consumer.close()));
      await partitionConsumers.releaseAll();
    },
  };
  return partitionConsumers;
}
