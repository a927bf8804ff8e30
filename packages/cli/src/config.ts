import { createHash } from "node:crypto";
import { DEFAULT_REDIS_URL, EnvReader, readDataDir, type EnvSource, type LogLevel } from "@flowmeter/platform";

export interface StartConfig {
  dataDir: string;
  /** undefined: use 127.0.0.1:6379 if it answers, else launch a private redis-server. */
  redisUrl: string | undefined;
  /** QUEUE_PREFIX, else one derived from the data directory (see embeddedQueuePrefix). */
  queuePrefix: string;
  ingestPort: number;
  runnerPort: number;
  workerMetricsPort: number;
  logLevel: LogLevel;
}

/**
 * The queue prefix of the embedded default: private to its data directory, so two `npm start`s in two checkouts
 * sharing the Redis on 127.0.0.1:6379 never take each other's jobs. `flowmeter run` from the same directory derives
 * the same prefix. QUEUE_PREFIX overrides it (services run alone default to "flowmeter").
 */
export function embeddedQueuePrefix(env: EnvSource): string {
  const explicit = env["QUEUE_PREFIX"];
  if (explicit !== undefined && explicit !== "") return explicit;
  return `flowmeter-${createHash("sha256")
    .update(readDataDir(new EnvReader(env)))
    .digest("hex")
    .slice(0, 10)}`;
}

export function parseStartConfig(env: EnvSource): StartConfig {
  const reader = new EnvReader(env);
  return reader.finish({
    dataDir: readDataDir(reader),
    redisUrl: reader.url("REDIS_URL", ["redis:", "rediss:"]),
    queuePrefix: embeddedQueuePrefix(env),
    ingestPort: reader.port("INGEST_PORT", 7070),
    runnerPort: reader.port("RUNNER_PORT", 7071),
    workerMetricsPort: reader.port("WORKER_METRICS_PORT", 7072),
    logLevel: reader.logLevel(),
  });
}

/** Where `flowmeter query` and the README's curl find the worker. */
export function workerUrl(env: EnvSource): string {
  return env["WORKER_URL"] ?? `http://127.0.0.1:${env["WORKER_METRICS_PORT"] ?? "7072"}`;
}

export { DEFAULT_REDIS_URL };
