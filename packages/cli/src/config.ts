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

/** The Redis and queue prefix of the `npm start` that `flowmeter run`, `logs` and `failed` talk to. */
export interface RedisClientConfig {
  redisUrl: string;
  queuePrefix: string;
}

export function parseRedisClientConfig(env: EnvSource): RedisClientConfig {
  const reader = new EnvReader(env);
  return reader.finish({
    redisUrl: reader.url("REDIS_URL", ["redis:", "rediss:"]) ?? DEFAULT_REDIS_URL,
    queuePrefix: embeddedQueuePrefix(env),
  });
}

/** Where `flowmeter query` and the README's curl find the worker: WORKER_URL, else 127.0.0.1:WORKER_METRICS_PORT. */
export function parseWorkerUrl(env: EnvSource): string {
  const reader = new EnvReader(env);
  const explicit = reader.url("WORKER_URL", ["http:", "https:"]);
  const port = reader.port("WORKER_METRICS_PORT", 7072);
  return reader.finish(explicit ?? `http://127.0.0.1:${port}`).replace(/\/+$/, "");
}

export { DEFAULT_REDIS_URL };
