import { resolve, join } from "node:path";
import { DEFAULT_STAGE_OUTPUT_LIMITS } from "./execution/stage-output.js";
import { DEFAULT_REDIS_URL, EnvReader, isLoopbackHost, readDataDir, readRedisConfig, type EnvSource, type LogLevel } from "@flowmeter/platform";

export interface RunnerConfig {
  /** HTTP server: the run API, health, metrics, OpenAPI. */
  host: string;
  port: number;
  /** Bearer tokens the run API accepts; empty: no auth, which is only allowed on a loopback host. */
  apiTokens: readonly string[];
  /** Absolute; `POST /v1/runs {"file": …}` paths resolve under it and may not leave it. */
  workflowsDir: string;
  /** Active runs (queued and running) of the fleet past which the run API refuses new ones with 429 TOO_MANY_REQUESTS. */
  apiMaxActiveRuns: number;
  /** Runs executed at once by this process (BullMQ worker concurrency on the `runs` queue). */
  maxRuns: number;
  /** Stages running at once in one run, unless the workflow or the submitted run sets `concurrency`. */
  stageConcurrency: number;
  /** Host sample interval per run. */
  sampleIntervalMs: number;
  /** Heartbeat interval per running stage. */
  heartbeatIntervalMs: number;
  /** Time between SIGTERM and SIGKILL when a stage times out or is cancelled. */
  stageKillGraceMs: number;
  /** On SIGTERM/SIGINT, how long active runs may go on before they are cancelled ("runner shutting down"). */
  shutdownTimeoutMs: number;
  /** How long a run's record, events and samples stay readable in Redis (followRun, the run API) after it ends. */
  eventRetentionSeconds: number;
  /** Telemetry samples kept in Redis per run for `GET /v1/runs/{id}/telemetry` (newest win); 0 keeps none. */
  telemetryBufferSize: number;
  /** Stage log lines kept per run in Redis for the run API and `flowmeter logs` (ClickHouse keeps them all); 0 keeps none. */
  logBufferLines: number;
  /** Lines kept of each stage attempt's output from its start, and from its end (stage-output.ts); the rest is counted. */
  logHeadLines: number;
  logTailLines: number;
  /** A running run's lease: its runner renews it every third of this; once it runs out, the run is failed (runner_restarted). */
  leaseMs: number;
  /** How often each runner looks for runs whose lease ran out (also once at start). */
  reconcileIntervalMs: number;
  /** Absolute. */
  dataDir: string;
  /** Absolute; where events are spooled while Redis is unreachable. */
  spoolDir: string;
  logLevel: LogLevel;
  redis: { url: string; queuePrefix: string };
}

export const DEFAULT_API_MAX_ACTIVE_RUNS = 10_000;

/** Reads the runner configuration; throws one ConfigError listing every problem. `cwd` resolves relative directories. */
export function parseRunnerConfig(env: EnvSource, cwd: string = process.cwd()): RunnerConfig {
  const reader = new EnvReader(env);
  const redis = readRedisConfig(reader);
  const dataDir = readDataDir(reader, cwd);
  const spoolDir = resolve(cwd, reader.optionalString("RUNNER_SPOOL_DIR") ?? join(dataDir, "spool"));
  const host = reader.string("RUNNER_HOST", "127.0.0.1");
  const apiTokens = reader.list("RUNNER_API_TOKENS");
  if (!isLoopbackHost(host) && apiTokens.length === 0) {
    reader.problem(`RUNNER_HOST=${host}: listening beyond loopback needs RUNNER_API_TOKENS (comma-separated bearer tokens)`);
  }
  const config: RunnerConfig = {
    host,
    port: reader.port("RUNNER_PORT", 7071),
    apiTokens,
    workflowsDir: resolve(cwd, reader.string("RUNNER_WORKFLOWS_DIR", ".")),
    apiMaxActiveRuns: reader.int("RUNNER_API_MAX_ACTIVE_RUNS", DEFAULT_API_MAX_ACTIVE_RUNS, { min: 1, max: 10_000_000 }),
    maxRuns: reader.int("RUNNER_MAX_RUNS", 4, { min: 1, max: 1000 }),
    stageConcurrency: reader.int("RUNNER_STAGE_CONCURRENCY", 4, { min: 1, max: 1000 }),
    sampleIntervalMs: reader.int("RUNNER_SAMPLE_INTERVAL_MS", 1000, { min: 100, max: 3_600_000 }),
    heartbeatIntervalMs: reader.int("RUNNER_HEARTBEAT_INTERVAL_MS", 30_000, { min: 100, max: 3_600_000 }),
    stageKillGraceMs: reader.int("RUNNER_STAGE_KILL_GRACE_MS", 5000, { min: 0, max: 600_000 }),
    shutdownTimeoutMs: reader.int("RUNNER_SHUTDOWN_TIMEOUT_MS", 30_000, { min: 0, max: 3_600_000 }),
    eventRetentionSeconds: reader.int("RUNNER_EVENT_RETENTION_SECONDS", 7 * 86_400, { min: 60, max: 365 * 86_400 }),
    telemetryBufferSize: reader.int("RUNNER_TELEMETRY_BUFFER_SIZE", 5000, { min: 0, max: 1_000_000 }),
    logBufferLines: reader.int("RUNNER_LOG_BUFFER_LINES", 20_000, { min: 0, max: 1_000_000 }),
    logHeadLines: reader.int("RUNNER_LOG_HEAD_LINES", DEFAULT_STAGE_OUTPUT_LIMITS.headLines, { min: 0, max: 1_000_000 }),
    logTailLines: reader.int("RUNNER_LOG_TAIL_LINES", DEFAULT_STAGE_OUTPUT_LIMITS.tailLines, { min: 0, max: 100_000 }),
    leaseMs: reader.int("RUNNER_LEASE_MS", 30_000, { min: 300, max: 3_600_000 }),
    reconcileIntervalMs: reader.int("RUNNER_RECONCILE_INTERVAL_MS", 10_000, { min: 100, max: 3_600_000 }),
    dataDir,
    spoolDir,
    logLevel: reader.logLevel(),
    redis: { url: redis.url ?? DEFAULT_REDIS_URL, queuePrefix: redis.queuePrefix },
  };
  return reader.finish(config);
}
