/**
 * Wires a runner process: metrics, the producer connection, the run event store, the event publisher (with
 * its spool), the run consumer and the HTTP server. main.ts calls it with the parsed config; `npm start` and
 * tests can call it too.
 *
 * Shutdown order (stop()): stop taking runs and let active runs end (cancelled with "runner shutting down"
 * after shutdownTimeoutMs), flush the publisher (what cannot be delivered stays in the spool for the next
 * start), close the queue and Redis, close the HTTP server.
 */
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { Queue } from "bullmq";
import { JOB_CATALOG, createRedis, errorMessage, type Logger, type RunEventsJob } from "@flowmeter/shared";
import type { RunnerConfig } from "./config.js";
import { EventPublisher } from "./delivery/event-publisher.js";
import { createQueueDelivery } from "./delivery/queue-delivery.js";
import { RunEventStore } from "./delivery/run-event-store.js";
import { SpoolFile } from "./delivery/spool-file.js";
import { DriverRegistry } from "./drivers/driver-registry.js";
import { RunConsumer } from "./fleet/run-consumer.js";
import { createRunnerApp } from "./http/app.js";
import { createRunnerMetrics, type RunnerMetrics } from "./metrics.js";

export interface RunningRunner {
  /** http://host:port of the HTTP server. */
  url: string;
  metrics: RunnerMetrics;
  publisher: EventPublisher;
  consumer: RunConsumer;
  stop(): Promise<void>;
}

export async function startRunner(config: RunnerConfig, logger: Logger, options: { drivers?: DriverRegistry } = {}): Promise<RunningRunner> {
  const drivers = options.drivers ?? new DriverRegistry();
  const metrics = createRunnerMetrics(drivers.names());
  const producer = createRedis(config.redis.url, "producer");
  let redisDown = false;
  producer.on("error", (error) => {
    if (redisDown) return;
    redisDown = true;
    logger.warn("redis unreachable", { error: errorMessage(error) });
  });
  producer.on("ready", () => {
    if (!redisDown) return;
    redisDown = false;
    logger.info("redis reachable again");
  });
  const queue = new Queue<RunEventsJob>(JOB_CATALOG.runEvents.queue, { connection: producer, prefix: config.redis.queuePrefix });
  // Queue errors mirror the connection's (logged above); without a listener an "error" event would crash the process.
  queue.on("error", () => {});
  const store = new RunEventStore(producer, { prefix: config.redis.queuePrefix, retentionSeconds: config.eventRetentionSeconds });
  const publisher = new EventPublisher({
    deliver: createQueueDelivery({ queue, store, redis: producer }),
    spool: new SpoolFile(config.spoolDir, logger),
    logger,
    metrics,
  });
  await publisher.start();

  const consumer = new RunConsumer({
    redisUrl: config.redis.url,
    queuePrefix: config.redis.queuePrefix,
    maxRuns: config.maxRuns,
    drivers,
    output: publisher,
    store,
    execution: {
      stageConcurrency: config.stageConcurrency,
      sampleIntervalMs: config.sampleIntervalMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      killGraceMs: config.stageKillGraceMs,
    },
    metrics,
    logger,
  });
  consumer.start();

  const app = createRunnerApp({
    metrics,
    logger,
    health: () => ({
      status: publisher.spooledItems > 0 ? "degraded" : "ok",
      active_runs: consumer.activeRuns,
      spooled_items: publisher.spooledItems,
      redis: producer.status,
    }),
  });
  const server: Server = app.listen(config.port, config.host);
  await once(server, "listening");
  const address = server.address() as AddressInfo;
  const url = `http://${config.host}:${address.port}`;
  logger.info("runner listening", { url, max_runs: config.maxRuns, spool_dir: config.spoolDir });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await consumer.stop(config.shutdownTimeoutMs);
      await publisher.close();
      await queue.close().catch(() => {});
      producer.disconnect();
      metrics.up.set(0);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      logger.info("runner stopped", { spooled_items: publisher.spooledItems });
    })();
    return stopping;
  };
  return { url, metrics, publisher, consumer, stop };
}
