import { fileURLToPath } from "node:url";
import { resolve } from "node:path";
import { DEFAULT_REDIS_URL, EnvReader, readDataDir, readRedisConfig, type EnvSource, type LogLevel } from "@flowmeter/platform";

export interface ClickHouseConfig {
  /** http(s) URL of a ClickHouse server; undefined means embedded chDB under `dataDir`. */
  url: string | undefined;
  /** Directory chDB keeps its data in (embedded mode only). */
  dataDir: string;
  migrationsDir: string;
  /** Migrations only, with a server: how long to retry one that does not answer yet. */
  waitSeconds: number;
  /**
   * The cluster (a `remote_servers` name) the schema lives on: migrations run ON CLUSTER in their cluster form
   * (clickhouse/cluster-ddl.ts), inserts wait for a quorum and reads see every acknowledged insert. Undefined: one server.
   */
  cluster: string | undefined;
}

export interface WorkerConfig {
  redisUrl: string;
  queuePrefix: string;
  /** FLOWMETER_PARTITIONS: the client-telemetry stream's partition count, the same for ingest and every worker. */
  partitions: number;
  /** WORKER_PARTITIONS: the partitions this worker writes when it holds their lease (default: all). */
  ownPartitions: number[];
  clickhouse: ClickHouseConfig;
  /** Applied by the migrations runner (migrate-main); read here too so `flowmeter start` checks it up front. */
  retention: RetentionConfig;
  http: { host: string; port: number };
  /** Limits of every /query statement. */
  query: QueryLimits;
  batch: { maxRows: number; maxWaitMs: number };
  /** Jobs held in flight at once; each waits for the batch that contains its rows. */
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** How long a table's write lock, or a partition's lease, outlives a worker that died holding it (both are renewed while held). */
  writeLockTtlMs: number;
  /** Longest wait between two attempts of a job that failed (they retry for as long as they fail). */
  retryMaxDelayMs: number;
  shutdownTimeoutMs: number;
  /** Test-only fault injection (failpoint.ts). */
  failpoint: (typeof FAILPOINTS)[number];
  logLevel: LogLevel;
}

/** Limits of every /query statement (query/query-engine.ts applies them). */
export interface QueryLimits {
  /** max_execution_time, in seconds, and the wall-clock limit of a statement. */
  timeoutSeconds: number;
  /** max_memory_usage of one query. */
  maxMemoryBytes: number;
  /** max_result_rows. */
  maxResultRows: number;
  /** Bytes of formatted output one answer may have. */
  maxResultBytes: number;
  /** Queries run at once; more are answered 429. */
  concurrency: number;
  /** max_threads of one query: what a query may take of the cores the inserts need. */
  maxThreads: number;
}

const FAILPOINTS = ["none", "kill-after-insert", "kill-after-raw-part"] as const;

/** A `remote_servers` cluster name the DDL can quote as it is (clickhouse/cluster-names.ts). */
export const CLUSTER_NAME = /^[A-Za-z0-9_]+$/;

/** The longest WORKER_RETRY_MAX_DELAY_MS allowed; a cluster's deduplication window is sized from it (cluster-ddl.ts). */
export const RETRY_MAX_DELAY_MS_LIMIT = 86_400_000;

const DEFAULT_MIGRATIONS_DIR = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../../infra/clickhouse/migrations");

/** How long each table keeps its rows, in days (FLOWMETER_*_TTL_DAYS; clickhouse/retention.ts applies them); 0 keeps them forever. */
export interface RetentionConfig {
  /** Raw client entries, runner events and ingestion warnings. 0: keep forever. */
  rawDays: number;
  /** run_telemetry: one row per second per running stage. */
  telemetryDays: number;
  /** run_logs: every line stages wrote. */
  logsDays: number;
  /** The 1-minute rollups; kept at least as long as raw rows. */
  rollupDays: number;
  /**
   * How long a client entry's id is remembered (cli_invocation_ids): a re-send within it is counted once, one after it
   * is stored again (docs/operations.md). The real swamp CLI gives an entry up after 7 days.
   */
  dedupHorizonDays: number;
  /** The OpenTelemetry tables (otel_logs, otel_traces and its trace-id lookup, otel_metrics_*). */
  otelDays: number;
}

export function readRetentionConfig(reader: EnvReader): RetentionConfig {
  const config: RetentionConfig = {
    rawDays: reader.int("FLOWMETER_RAW_TTL_DAYS", 0, { min: 0, max: 36_500 }),
    telemetryDays: reader.int("FLOWMETER_TELEMETRY_TTL_DAYS", 30, { min: 0, max: 36_500 }),
    logsDays: reader.int("FLOWMETER_LOGS_TTL_DAYS", 30, { min: 0, max: 36_500 }),
    rollupDays: reader.int("FLOWMETER_ROLLUP_TTL_DAYS", 0, { min: 0, max: 36_500 }),
    dedupHorizonDays: reader.int("FLOWMETER_DEDUP_HORIZON_DAYS", 8, { min: 1, max: 366 }),
    otelDays: reader.int("FLOWMETER_OTEL_TTL_DAYS", 30, { min: 0, max: 36_500 }),
  };
  if (config.rawDays > 0 && config.rollupDays > 0 && config.rollupDays < config.rawDays) {
    reader.problem(
      `FLOWMETER_ROLLUP_TTL_DAYS (${config.rollupDays}) must be 0 (forever) or at least FLOWMETER_RAW_TTL_DAYS (${config.rawDays}): rollups outlive the rows they sum`,
    );
  }
  return config;
}

export function readClickHouseConfig(reader: EnvReader): ClickHouseConfig {
  const dataDir = readDataDir(reader);
  const cluster = reader.optionalString("CLICKHOUSE_CLUSTER");
  if (cluster !== undefined && !CLUSTER_NAME.test(cluster)) {
    reader.problem(`CLICKHOUSE_CLUSTER=${JSON.stringify(cluster)}: expected a cluster name from remote_servers (letters, digits and _)`);
  }
  if (cluster !== undefined && reader.optionalString("CLICKHOUSE_URL") === undefined) {
    reader.problem("CLICKHOUSE_CLUSTER needs CLICKHOUSE_URL: a cluster is ClickHouse servers, embedded chDB is one process");
  }
  return {
    url: reader.url("CLICKHOUSE_URL", ["http:", "https:"]),
    dataDir: resolve(dataDir, "clickhouse"),
    migrationsDir: resolve(reader.string("CLICKHOUSE_MIGRATIONS_DIR", DEFAULT_MIGRATIONS_DIR)),
    waitSeconds: reader.int("CLICKHOUSE_WAIT_SECONDS", 60, { min: 0, max: 3600 }),
    cluster,
  };
}

export function parseWorkerConfig(env: EnvSource): WorkerConfig {
  const reader = new EnvReader(env);
  const redis = readRedisConfig(reader);
  const config: WorkerConfig = {
    redisUrl: redis.url ?? DEFAULT_REDIS_URL,
    queuePrefix: redis.queuePrefix,
    partitions: redis.partitions,
    ownPartitions: readOwnPartitions(reader, redis.partitions),
    clickhouse: readClickHouseConfig(reader),
    retention: readRetentionConfig(reader),
    http: { host: reader.string("WORKER_HOST", "127.0.0.1"), port: reader.port("WORKER_METRICS_PORT", 7072) },
    query: {
      timeoutSeconds: reader.int("WORKER_QUERY_TIMEOUT_SECONDS", 30, { min: 1, max: 3600 }),
      maxMemoryBytes: reader.int("WORKER_QUERY_MAX_MEMORY_BYTES", 1 << 30, { min: 1 << 20 }),
      maxResultRows: reader.int("WORKER_QUERY_MAX_RESULT_ROWS", 1_000_000, { min: 1 }),
      maxResultBytes: reader.int("WORKER_QUERY_MAX_RESULT_BYTES", 64 << 20, { min: 1024, max: 1 << 30 }),
      concurrency: reader.int("WORKER_QUERY_CONCURRENCY", 2, { min: 1, max: 64 }),
      maxThreads: reader.int("WORKER_QUERY_MAX_THREADS", 1, { min: 1, max: 256 }),
    },
    batch: {
      maxRows: reader.int("WORKER_BATCH_MAX_ROWS", 50_000, { min: 1, max: 1_000_000 }),
      maxWaitMs: reader.int("WORKER_BATCH_MAX_WAIT_MS", 1000, { min: 1, max: 60_000 }),
    },
    concurrency: reader.int("WORKER_CONCURRENCY", 1000, { min: 1, max: 100_000 }),
    lockDurationMs: reader.int("WORKER_LOCK_DURATION_MS", 10_000, { min: 1000 }),
    stalledIntervalMs: reader.int("WORKER_STALLED_INTERVAL_MS", 5_000, { min: 1000 }),
    writeLockTtlMs: reader.int("WORKER_WRITE_LOCK_TTL_MS", 10_000, { min: 1000, max: 600_000 }),
    retryMaxDelayMs: reader.int("WORKER_RETRY_MAX_DELAY_MS", 300_000, { min: 10, max: RETRY_MAX_DELAY_MS_LIMIT }),
    shutdownTimeoutMs: reader.int("WORKER_SHUTDOWN_TIMEOUT_MS", 30_000, { min: 0 }),
    failpoint: reader.oneOf("FLOWMETER_FAILPOINT", FAILPOINTS, "none"),
    logLevel: reader.logLevel(),
  };
  if (config.failpoint === "kill-after-raw-part" && config.clickhouse.url !== undefined) {
    reader.problem("FLOWMETER_FAILPOINT=kill-after-raw-part watches chDB's own directory; it needs the embedded default (unset CLICKHOUSE_URL)");
  }
  if (config.stalledIntervalMs > config.lockDurationMs) {
    reader.problem(`WORKER_STALLED_INTERVAL_MS (${config.stalledIntervalMs}) must not exceed WORKER_LOCK_DURATION_MS (${config.lockDurationMs})`);
  }
  return reader.finish(config);
}

/** WORKER_PARTITIONS: comma-separated partition numbers, each below FLOWMETER_PARTITIONS; unset: every partition. */
function readOwnPartitions(reader: EnvReader, partitions: number): number[] {
  const all = Array.from({ length: partitions }, (_, partition) => partition);
  const listed = reader.list("WORKER_PARTITIONS");
  if (listed.length === 0) return all;
  const own = [...new Set(listed.map(Number))].sort((a, b) => a - b);
  const wrong = listed.filter((item) => !/^\d+$/.test(item) || Number(item) >= partitions);
  if (wrong.length > 0)
    reader.problem(
      `WORKER_PARTITIONS=${listed.join(",")}: ${wrong.join(", ")} is not a partition (0 to ${partitions - 1}, FLOWMETER_PARTITIONS=${partitions})`,
    );
  return own;
}
