#!/usr/bin/env node
/** The worker service: consumes the queues into ClickHouse and serves /metrics. Run migrations first (migrate-main). */
import { Queue } from "bullmq";
import {
  ConfigError,
  createLogger,
  createRedis,
  createRepeatThrottle,
  errorMessage,
  isLoopbackHost,
  partitionCountProblem,
  redactUrl,
  redisAnswers,
} from "@flowmeter/platform";
import { JOB_CATALOG } from "@flowmeter/shared";
import { createBlockWriter } from "./clickhouse/block-writer.js";
import { createClickHouse, describeClickHouse } from "./clickhouse/client.js";
import { RAW_TABLES } from "./clickhouse/raw-tables.js";
import { parseWorkerConfig } from "./config.js";
import { createExactlyOnceState, repairRecordedBlocks } from "./consumers/insert-once.js";
import { startPartitionConsumers, type PartitionConsumers } from "./consumers/partition-consumers.js";
import type { QueueConsumer } from "./consumers/queue-consumer.js";
import { createOtelConsumer, createRunEventsConsumer } from "./consumers/worker-handlers.js";
import { armFailpoint } from "./failpoint.js";
import { createWorkerHttpServer } from "./http/server.js";
import { createEmbeddedQueryEngine, createServerQueryEngine } from "./query/query-engine.js";
import { createWorkerMetrics } from "./metrics.js";
import { drainThenClose } from "./shutdown.js";

/** Longest a /metrics scrape waits for Redis to sample the queues. */
const SAMPLE_TIMEOUT_MS = 500;
/** Beyond WORKER_SHUTDOWN_TIMEOUT_MS, what closing the connections may take before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 3_000;

async function main(): Promise<void> {
  let config;
  try {
    config = parseWorkerConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`flowmeter worker: ${error.message}\n`);
      process.exit(78); // EX_CONFIG (sysexits.h), as every flowmeter command and service
    }
    throw error;
  }
  const logger = createLogger("worker", config.logLevel);
  const redis = createRedis(config.redisUrl, "worker");
  const shouldLog = createRepeatThrottle();
  redis.on("error", (error) => {
    if (shouldLog(errorMessage(error))) logger.warn("redis connection problem (repeats are logged every 30 s)", { error: errorMessage(error) });
  });
  const clickhouse = await createClickHouse(config.clickhouse).catch((error: unknown) => {
    logger.error("cannot open ClickHouse", { clickhouse: describeClickHouse(config.clickhouse), error: errorMessage(error) });
    redis.disconnect();
    process.exit(1);
  });
  const metrics = createWorkerMetrics();

  const ready = await clickhouse.query({ query: "SELECT count() AS applied FROM flowmeter.schema_migrations", format: "JSONEachRow" }).catch(() => undefined);
  if (ready === undefined) {
    logger.error(
      `the ClickHouse schema is missing; run migrations first: node packages/worker/dist/migrate-main.js (${describeClickHouse(config.clickhouse)})`,
    );
    await clickhouse.close();
    redis.disconnect();
    process.exit(1);
  }
  await ready.json();

  const writer = await createBlockWriter(config.clickhouse, clickhouse);
  const afterInsert = await armFailpoint(config, clickhouse, logger);
  const deps = { config, redis, clickhouse, writer, ...createExactlyOnceState(redis, config, logger), metrics, logger, afterInsert };
  const runEventsConsumer = createRunEventsConsumer(deps);
  const otelConsumer = createOtelConsumer(deps);
  // Started once Redis answers.
  let partitions: PartitionConsumers | undefined = undefined;
  const consumers = (): QueueConsumer[] => [...(partitions?.held() ?? []), runEventsConsumer, otelConsumer];
  const queryEngine = !isLoopbackHost(config.http.host)
    ? undefined
    : config.clickhouse.url === undefined
      ? await createEmbeddedQueryEngine(config.clickhouse.dataDir, config.query)
      : createServerQueryEngine(config.clickhouse.url, config.query);
  // The runners' queue, sampled here so operators can scale runners on it.
  const runsQueue = new Queue(JOB_CATALOG.runs.queue, { connection: redis, prefix: config.queuePrefix });
  const sampleRunsQueue = async (): Promise<void> => {
    const counts = await runsQueue.getJobCounts("waiting", "active", "delayed", "failed");
    for (const [state, count] of Object.entries(counts)) metrics.queueDepth.set({ queue: JOB_CATALOG.runs.queue, state }, count);
  };
  const server = createWorkerHttpServer({
    registry: metrics.registry,
    logger,
    listenHost: config.http.host,
    // Never waits on an unreachable Redis: /metrics answers within SAMPLE_TIMEOUT_MS and says redis_up 0.
    beforeScrape: async () => {
      if (redis.status !== "ready") {
        metrics.redisUp.set(0);
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const sampled = await Promise.race([
        Promise.all([...consumers().map((consumer) => consumer.sampleQueue()), sampleRunsQueue()]).then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), SAMPLE_TIMEOUT_MS);
        }),
      ]).finally(() => clearTimeout(timer));
      metrics.redisUp.set(sampled ? 1 : 0);
    },
    unhealthyBecause: async () => {
      const problems = [];
      if (!(await redisAnswers(redis, SAMPLE_TIMEOUT_MS))) problems.push(`Redis is not reachable (${redactUrl(config.redisUrl)}, status ${redis.status})`);
      if (
        !(await clickhouse.ping().then(
          (ping) => ping.success,
          () => false,
        ))
      )
        problems.push(`ClickHouse is not reachable (${describeClickHouse(config.clickhouse)})`);
      return problems.length === 0 ? undefined : problems.join("; ");
    },
    queryEngine,
  });
  // Listening comes first: a worker started while Redis is away answers /metrics (redis_up 0) and /healthz at once.
  server.listen(config.http.port, config.http.host);
  logger.info("worker started", {
    clickhouse: describeClickHouse(config.clickhouse),
    redis: redactUrl(config.redisUrl),
    queue_prefix: config.queuePrefix,
    partitions: config.partitions,
    own_partitions: config.ownPartitions.join(","),
    metrics: `http://${config.http.host}:${config.http.port}/metrics`,
    batch_max_rows: config.batch.maxRows,
    batch_max_wait_ms: config.batch.maxWaitMs,
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down: draining the queue into ClickHouse", { signal, timeout_ms: config.shutdownTimeoutMs });
    // Closing waits on Redis and ClickHouse; neither may hold the process past its timeout (what is unwritten stays queued).
    setTimeout(() => {
      logger.error("shutdown did not finish in time; exiting, unwritten jobs stay on the queue", { timeout_ms: config.shutdownTimeoutMs + SHUTDOWN_GRACE_MS });
      process.exit(1);
    }, config.shutdownTimeoutMs + SHUTDOWN_GRACE_MS).unref();
    partitions?.stopAcquiring();
    const left = await drainThenClose(consumers(), config.shutdownTimeoutMs);
    await partitions?.releaseAll();
    if (left > 0) logger.warn("shutdown timeout: jobs left on the queue for the next worker", { jobs: left });
    server.close();
    await runsQueue.close();
    await queryEngine?.close();
    await writer.close();
    await clickhouse.close();
    redis.disconnect();
    logger.info("worker stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));

  // Everything below waits for Redis.
  const countProblem = await partitionCountProblem(redis, config.queuePrefix, config.partitions);
  if (stopping) return;
  if (countProblem !== undefined) {
    logger.error(countProblem);
    process.exit(78);
  }
  // Blocks a killed worker left half-inserted into a table views read are repaired now, not only at the next insert
  // into it (the client-telemetry partitions repair their own journal when they are taken over).
  for (const table of RAW_TABLES.filter(({ readByViews, writtenBy }) => readByViews && writtenBy === "insert-once")) {
    void deps.lock
      .hold(table.name, () => repairRecordedBlocks(deps, table))
      .catch((error: unknown) =>
        logger.warn("recorded blocks not repaired yet; the next insert into the table repairs them", { table: table.name, error: errorMessage(error) }),
      );
  }
  partitions = startPartitionConsumers(deps, { ...config, horizonDays: config.retention.dedupHorizonDays }, logger);
  runEventsConsumer.start();
  otelConsumer.start();
}

main().catch((error: unknown) => {
  process.stderr.write(`flowmeter worker: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
