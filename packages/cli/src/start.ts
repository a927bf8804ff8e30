/**
 * `flowmeter start`: the whole pipeline in one process tree on the embedded default. Migrations run first
 * (one-shot), then the worker, ingest and the runner as child processes. SIGTERM/SIGINT stop ingest and the
 * runner first (no new data), then the worker, which drains the queues into ClickHouse, then the private
 * Redis if we launched one.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { ConfigError, createLogger, errorMessage, type Logger } from "@flowmeter/platform";
import { parseIngestConfig } from "@flowmeter/ingest";
import { parseRunnerConfig } from "@flowmeter/runner";
import { parseWorkerConfig } from "@flowmeter/worker";
import { EXIT } from "./cli-error.js";
import { parseStartConfig } from "./config.js";
import { chooseRedis } from "./redis-server.js";
import { SERVICE_ENTRY_POINTS, type ServiceName } from "./services.js";
import { waitHealthy } from "./wait-healthy.js";

export const START_USAGE = `usage: flowmeter start

Runs the whole pipeline on the embedded default: migrations, then the worker, ingest and the runner. Ctrl-C or
SIGTERM stops ingest and the runner, lets the worker drain the queues into ClickHouse, then exits.

environment (every service's variables apply too; see the README):
  FLOWMETER_DATA_DIR   data directory (default ./.flowmeter): chDB, the spools, a private Redis if one is launched
  REDIS_URL            Redis to use (default: 127.0.0.1:6379 if it answers, else a private redis-server)
  QUEUE_PREFIX         queue key prefix (default: derived from FLOWMETER_DATA_DIR, private to it)
  INGEST_PORT 7070, RUNNER_PORT 7071, WORKER_METRICS_PORT 7072, LOG_LEVEL info
`;

/** How long the services get to answer their health checks after they start. */
const READY_TIMEOUT_MS = 60_000;

interface RunningService {
  name: ServiceName | "redis";
  process: ChildProcess;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
}

async function stopService(service: RunningService, logger: Logger, timeoutMs = 60_000): Promise<void> {
  if (service.process.exitCode !== null || service.process.signalCode !== null) return;
  service.process.kill("SIGTERM");
  const timer = setTimeout(() => {
    logger.warn("service did not stop in time; killing it", { service: service.name });
    service.process.kill("SIGKILL");
  }, timeoutMs);
  await exited(service.process);
  clearTimeout(timer);
}

/** Every problem of every service's configuration, listed together before anything starts. */
function checkAllConfigs(env: NodeJS.ProcessEnv): void {
  const problems: string[] = [];
  for (const parse of [parseStartConfig, parseIngestConfig, parseWorkerConfig, parseRunnerConfig]) {
    try {
      parse(env);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
    }
  }
  if (problems.length > 0) throw new ConfigError([...new Set(problems)]);
}

export async function start(env: NodeJS.ProcessEnv): Promise<number> {
  checkAllConfigs(env);
  const config = parseStartConfig(env);
  const logger = createLogger("start", config.logLevel);
  const redis = await chooseRedis(config.redisUrl, config.dataDir, logger);
  const childEnv = { ...env, REDIS_URL: redis.url, FLOWMETER_DATA_DIR: config.dataDir, QUEUE_PREFIX: config.queuePrefix };

  const migrated = spawnSync(process.execPath, [SERVICE_ENTRY_POINTS.migrate()], { env: childEnv, stdio: "inherit" });
  if (migrated.status !== 0) {
    redis.process?.kill("SIGTERM");
    // Its configuration was checked above, so this is rare; a configuration error keeps its exit code all the same.
    return migrated.status === EXIT.config ? EXIT.config : 1;
  }

  const services: RunningService[] = [];
  if (redis.process) services.push({ name: "redis", process: redis.process });
  for (const name of ["worker", "ingest", "runner"] as const) {
    // Own process group: a Ctrl-C reaches only this supervisor, which stops the services in order.
    const child = spawn(process.execPath, [SERVICE_ENTRY_POINTS[name]()], { env: childEnv, stdio: "inherit", detached: true });
    services.push({ name, process: child });
  }

  process.once("exit", () => services.forEach((service) => service.process.kill("SIGTERM")));
  let stopping = false;
  const stopAll = async (reason: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info("stopping flowmeter", { reason });
    // Order matters: no new data in, then drain the queue into ClickHouse, then Redis.
    const stop = (name: RunningService["name"]) => {
      const service = services.find((candidate) => candidate.name === name);
      return service ? stopService(service, logger) : Promise.resolve();
    };
    await Promise.all([stop("ingest"), stop("runner")]);
    await stop("worker");
    await stop("redis");
  };

  const outcome = new Promise<number>((resolve) => {
    for (const service of services) {
      service.process.once("exit", (code, signal) => {
        if (stopping) return;
        logger.error("a service stopped unexpectedly; stopping the rest", { service: service.name, code, signal });
        void stopAll(`${service.name} exited`).then(() => resolve(1));
      });
    }
    const onSignal = (signal: NodeJS.Signals) => void stopAll(signal).then(() => resolve(0));
    // `on`, not `once`: under `npm start` a Ctrl-C arrives twice (from the terminal and forwarded by npm), and a second
    // signal without a handler would kill this supervisor before it has stopped the services.
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });

  const serving = waitHealthy(
    [
      `http://127.0.0.1:${config.ingestPort}/healthz`,
      `http://127.0.0.1:${config.workerMetricsPort}/healthz`,
      `http://127.0.0.1:${config.runnerPort}/v1/health`,
    ],
    READY_TIMEOUT_MS,
  );
  const ready = await Promise.race([serving, outcome.then(() => false)]);
  if (!ready) {
    if (stopping) return outcome;
    logger.error(`the services did not all answer within ${READY_TIMEOUT_MS / 1000} s; stopping`);
    await stopAll("not ready");
    return 1;
  }
  logger.info("flowmeter is running", {
    ingest: `http://127.0.0.1:${config.ingestPort}/ingest`,
    runner: `http://127.0.0.1:${config.runnerPort}/v1/health`,
    worker_metrics: `http://127.0.0.1:${config.workerMetricsPort}/metrics`,
    query: `http://127.0.0.1:${config.workerMetricsPort}/query`,
    data: config.dataDir,
    queue_prefix: config.queuePrefix,
  });
  return outcome.catch((error: unknown) => {
    logger.error("start failed", { error: errorMessage(error) });
    return 1;
  });
}
