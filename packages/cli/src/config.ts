import { resolve } from "node:path";
import { DEFAULT_REDIS_URL, EnvReader, type EnvSource, type LogLevel } from "@flowmeter/shared";

export interface StartConfig {
  dataDir: string;
  /** undefined: use 127.0.0.1:6379 if it answers, else launch a private redis-server. */
  redisUrl: string | undefined;
  ingestPort: number;
  runnerPort: number;
  workerMetricsPort: number;
  logLevel: LogLevel;
}

export function parseStartConfig(env: EnvSource): StartConfig {
  const reader = new EnvReader(env);
  return reader.finish({
    dataDir: resolve(reader.string("FLOWMETER_DATA_DIR", "./.flowmeter")),
    redisUrl: reader.url("REDIS_URL", ["redis:", "rediss:"]),
    ingestPort: reader.port("INGEST_PORT", 7070),
    runnerPort: reader.port("RUNNER_PORT", 7071),
    workerMetricsPort: reader.port("WORKER_METRICS_PORT", 7072),
    logLevel: reader.logLevel(),
  });
}

export { DEFAULT_REDIS_URL };
