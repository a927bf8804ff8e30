/**
 * Wires a runner process: metrics, the producer connection, the run store (store/run-store.ts, built once here and
 * passed to everything that reads or writes runs), the event publisher (with its spool), the run consumer (with its lease keeper), the reconciler and the HTTP server
 * (run API). main.ts calls it with the parsed config; `npm start` and tests can call it too.
 *
 * Shutdown order (stop()): stop the reconciler; stop taking runs and let active runs end (cancelled with "runner
 * shutting down" after shutdownTimeoutMs); flush the publisher (what cannot be delivered stays in the spool for the
 * next start); stop renewing leases; close the queues and Redis; close the HTTP server. A runner that dies instead
 * stops renewing its leases, and another runner's reconciler fails its runs (runner_restarted).
 */
import { join } from "node:path";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { SpoolFile, createRedis, errorMessage, redisAnswers, type Logger } from "@flowmeter/platform";
import { type RunEvent } from "@flowmeter/shared";
import type { RunnerConfig } from "./config.js";
import { EventPublisher, type SpoolItem } from "./delivery/event-publisher.js";
import { createQueueDelivery } from "./delivery/queue-delivery.js";
import { DriverRegistry } from "./drivers/driver-registry.js";
import type { LeaseKeeper } from "./fleet/lease-keeper.js";
import { RunConsumer } from "./fleet/run-consumer.js";
import { StageRegistry } from "./execution/stage-registry.js";
import { RunReconciler } from "./fleet/run-reconciler.js";
import { createRunnerApp } from "./http/app.js";
import { createRunnerMetrics, type RunnerMetrics } from "./metrics.js";
import { RunStore } from "./store/run-store.js";

/** How long a spool replay waits for Redis to answer its PING before it tries again later. */
const SPOOL_PING_TIMEOUT_MS = 3000;

export interface RunningRunner {
  /** http://host:port of the HTTP server. */
  url: string;
  metrics: RunnerMetrics;
  /** This process in run records: `<host>-<pid>-<random>`. */
  runnerId: string;
  publisher: EventPublisher;
  consumer: RunConsumer;
  reconciler: RunReconciler;
  stop(): Promise<void>;
}

/** A runner id unique across hosts and restarts (the pid alone repeats). */
export function newRunnerId(): string {
  return `${hostname().replace(/[^A-Za-z0-9.-]/g, "_")}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

export async function startRunner(config: RunnerConfig, logger: Logger, options: { drivers?: DriverRegistry } = {}): Promise<RunningRunner> {
  const drivers = options.drivers ?? new DriverRegistry();
  const metrics = createRunnerMetrics(drivers.names());
  // Stages a runner on this host left running when it died are killed before this one takes work.
  const runnerId = newRunnerId();
  const stageRegistry = new StageRegistry(join(config.dataDir, "stages"), logger, { runnerId });
  stageRegistry.killOrphans();
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
  const publish = (events: readonly RunEvent[]): void => {
    for (const event of events) publisher.event(event);
  };
  const store = new RunStore(producer, {
    prefix: config.redis.queuePrefix,
    retentionSeconds: config.eventRetentionSeconds,
    telemetryBufferSize: config.telemetryBufferSize,
    logBufferLines: config.logBufferLines,
    forward: publish, // events of runs this process ends for others (reconciler, cancel) are spooled like its own
  });
  const publisher = new EventPublisher({
    deliver: createQueueDelivery(store),
    spool: new SpoolFile<SpoolItem>(config.spoolDir, logger, { owner: "runner" }),
    logger,
    metrics,
    // The spool is replayed once Redis answers a PING (a frozen Redis costs a PING's wait, not a delivery's).
    reachable: () => redisAnswers(store.redis, SPOOL_PING_TIMEOUT_MS),
  });
  await publisher.start();

  const reconciler: RunReconciler = new RunReconciler({
    store,
    jobLostGraceMs: Math.max(config.leaseMs, 5000),
    logger,
    metrics,
    ownLeases: (): LeaseKeeper => consumer.leases,
    leaseMs: config.leaseMs,
    localRunners: stageRegistry,
  });
  const consumer: RunConsumer = new RunConsumer({
    redisUrl: config.redis.url,
    maxRuns: config.maxRuns,
    drivers,
    output: publisher,
    store,
    reconciler,
    runnerId,
    leaseMs: config.leaseMs,
    execution: {
      stageConcurrency: config.stageConcurrency,
      sampleIntervalMs: config.sampleIntervalMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      killGraceMs: config.stageKillGraceMs,
      outputLimits: { headLines: config.logHeadLines, tailLines: config.logTailLines },
    },
    stageRegistry,
    metrics,
    logger,
  });
  consumer.start();
  reconciler.start(config.reconcileIntervalMs);

  const app = createRunnerApp({
    metrics,
    logger,
    listenHost: config.host,
    health: () => ({
      status: publisher.spooledItems > 0 ? "degraded" : "ok",
      runner_id: runnerId,
      active_runs: consumer.activeRuns,
      spooled_items: publisher.spooledItems,
      redis: producer.status,
    }),
    runs: { store, workflowsDir: config.workflowsDir, drivers: drivers.names(), apiTokens: config.apiTokens, maxActiveRuns: config.apiMaxActiveRuns },
  });
  const server: Server = app.listen(config.port, config.host);
  await once(server, "listening");
  const address = server.address() as AddressInfo;
  const url = `http://${config.host}:${address.port}`;
  logger.info("runner listening", {
    url,
    runner_id: runnerId,
    max_runs: config.maxRuns,
    auth: config.apiTokens.length > 0 ? "bearer" : "off",
    containment:
      stageRegistry.mechanism === "cgroup"
        ? `cgroup v2 per stage under ${stageRegistry.cgroupDir ?? ""}`
        : "process group and tree scans (no writable cgroup v2)",
    spool_dir: config.spoolDir,
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      reconciler.stop();
      await consumer.stop(config.shutdownTimeoutMs);
      await publisher.close();
      await consumer.leases.renewNow(); // releases the runs whose terminal event just landed (logs only)
      consumer.leases.stop();
      await store.close();
      producer.disconnect();
      stageRegistry.close(); // stopped, not dead: its runs ended (or wait for their lease, if their end is spooled)
      metrics.up.set(0);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      logger.info("runner stopped", { spooled_items: publisher.spooledItems });
    })();
    return stopping;
  };
  return { url, runnerId, metrics, publisher, consumer, reconciler, stop };
}
