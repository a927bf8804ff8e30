import { join } from "node:path";
import { DEFAULT_REDIS_URL, EnvReader, readDataDir, isLoopbackHost, readRedisConfig, type EnvSource, type LogLevel } from "@flowmeter/platform";

export interface IngestConfig {
  port: number;
  /** Address to bind: INGEST_HOST when API keys are configured, always 127.0.0.1 without them. */
  host: string;
  /** INGEST_HOST as set, when it was not used because no API keys are configured (main.ts warns about it). */
  ignoredHost: string | undefined;
  /** Accepted API keys; empty means unauthenticated, and loopback-only unless `public`. */
  apiKeys: readonly string[];
  /**
   * INGEST_PUBLIC: a telemetry endpoint any CLI user may send to, without keys, on INGEST_HOST (default 0.0.0.0).
   * The real client's x-api-key is its user's own key, not one the operator hands out, so it is ignored.
   */
  public: boolean;
  /** Limit on the request body, after gzip/deflate decoding. */
  maxBodyBytes: number;
  /** Request bytes (Content-Length) held at once; further requests wait their turn (INGEST_BODY_BYTES_IN_FLIGHT). */
  bodyBytesInFlight: number;
  maxEntriesPerRequest: number;
  /** Limit on one entry's JSON; larger entries are rejected on their own. */
  maxEntryBytes: number;
  /** Token bucket refill rate per API key (or remote address); burst is twice this. 0 disables rate limiting. */
  rateLimitEntriesPerSecond: number;
  logLevel: LogLevel;
  /** `partitions`: FLOWMETER_PARTITIONS, the queues the client-telemetry stream is cut into (shared's queues.ts). */
  redis: { url: string; queuePrefix: string; partitions: number };
  /** Where accepted entries are spooled while Redis is away: FLOWMETER_DATA_DIR/spool. */
  spoolDir: string;
  /** INGEST_SPOOL_MAX_BYTES: above it, requests get 503 instead of being spooled. */
  spoolMaxBytes: number;
  /** INGEST_OTLP_MAX_BODY_BYTES: limit on an OTLP export's body after decompression (413 above it). */
  otlpMaxBodyBytes: number;
  /** INGEST_OTLP_MAX_QUEUED_JOBS: above this many jobs waiting on the otel queue, OTLP exports are answered 429. */
  otlpMaxQueuedJobs: number;
  /**
   * How long a request that finds no Redis add in flight waits for others to share its add (and its worker job):
   * fewer, larger jobs when requests come one entry at a time, for a few ms of latency.
   */
  enqueueLingerMs: number;
}

export const LOOPBACK_HOST = "127.0.0.1";

/** Reads the ingest configuration; throws one ConfigError listing every problem. */
export function parseIngestConfig(env: EnvSource): IngestConfig {
  const reader = new EnvReader(env);
  const apiKeys = reader.list("INGEST_API_KEYS");
  const requestedHost = reader.optionalString("INGEST_HOST");
  const isPublic = reader.bool("INGEST_PUBLIC", false);
  if (isPublic && apiKeys.length > 0) reader.problem("INGEST_PUBLIC=true and INGEST_API_KEYS are exclusive: a public endpoint takes no keys; unset one");
  const authenticated = apiKeys.length > 0 || isPublic;
  const redis = readRedisConfig(reader);
  const config: IngestConfig = {
    port: reader.port("INGEST_PORT", 7070),
    host: authenticated ? (requestedHost ?? "0.0.0.0") : requestedHost !== undefined && isLoopbackHost(requestedHost) ? requestedHost : LOOPBACK_HOST,
    ignoredHost: !authenticated && requestedHost !== undefined && !isLoopbackHost(requestedHost) ? requestedHost : undefined,
    apiKeys: isPublic ? [] : apiKeys,
    public: isPublic,
    maxBodyBytes: reader.int("INGEST_MAX_BODY_BYTES", 32 * 1024 * 1024, { min: 1024, max: 1024 * 1024 * 1024 }),
    bodyBytesInFlight: reader.int("INGEST_BODY_BYTES_IN_FLIGHT", 128 * 1024 * 1024, { min: 1024 * 1024, max: 64 * 1024 * 1024 * 1024 }),
    maxEntriesPerRequest: reader.int("INGEST_MAX_ENTRIES_PER_REQUEST", 10_000, { min: 1, max: 1_000_000 }),
    // 16 KiB holds any entry cut to fit (repairCliInvocation): its ids, timestamps and repair record, whatever they hold.
    maxEntryBytes: reader.int("INGEST_MAX_ENTRY_BYTES", 65_536, { min: 16_384, max: 1024 * 1024 * 1024 }),
    rateLimitEntriesPerSecond: reader.int("INGEST_RATE_LIMIT_ENTRIES_PER_SECOND", 100_000, { min: 0, max: 1_000_000_000 }),
    logLevel: reader.logLevel(),
    redis: { url: redis.url ?? DEFAULT_REDIS_URL, queuePrefix: redis.queuePrefix, partitions: redis.partitions },
    spoolDir: join(readDataDir(reader), "spool"),
    spoolMaxBytes: reader.int("INGEST_SPOOL_MAX_BYTES", 1024 * 1024 * 1024, { min: 0, max: Number.MAX_SAFE_INTEGER }),
    // The OTLP specification's recommended limit: 20 MiB after decompression.
    otlpMaxBodyBytes: reader.int("INGEST_OTLP_MAX_BODY_BYTES", 20 * 1024 * 1024, { min: 1024, max: 1024 * 1024 * 1024 }),
    otlpMaxQueuedJobs: reader.int("INGEST_OTLP_MAX_QUEUED_JOBS", 10_000, { min: 1, max: 100_000_000 }),
    enqueueLingerMs: reader.int("INGEST_ENQUEUE_LINGER_MS", 1, { min: 0, max: 100 }),
  };
  return reader.finish(config);
}
