import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SpoolFile, createRedis, errorMessage, partitionCountProblem, type Logger } from "@flowmeter/platform";
import { createIngestApp, type IngestApp } from "./app.js";
import type { IngestConfig } from "./config.js";
import { closeIngestQueue, createIngestQueue, type AcceptedRequest } from "./ingest/client-telemetry-queue.js";
import type { OtelJob } from "@flowmeter/shared";
import { createOtlpQueue } from "./otlp/otlp-receiver.js";

export interface IngestServer {
  host: string;
  port: number;
  ingest: IngestApp;
  /**
   * Resolves, once Redis answers, with why this ingest must not produce (FLOWMETER_PARTITIONS differs from the count
   * the queues were made with: platform's partitionCountProblem), or undefined.
   */
  partitionCheck: Promise<string | undefined>;
  /** Stops accepting connections, lets requests in flight finish, then closes the queue and Redis. */
  stop(): Promise<void>;
}

/** After this long, connections still open at shutdown are cut. */
const SHUTDOWN_GRACE_MS = 10_000;

/**
 * How long an idle keep-alive connection stays open (node's default is 5 s). A request a client sends on a pooled
 * connection at the instant the server closes it for idleness reaches a closed socket and is reset unread
 * (ECONNRESET; issue 21 item 9: 2 of 22,767 requests of a load generator using node's keep-alive agent). A long
 * timeout makes that race rare: clients that honour the `Keep-Alive: timeout=65` hint close first, and pools that
 * do not (node's agent, Deno's 90 s pool) meet a server-side close once a minute at most instead of every 5 s.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** Connects to Redis, builds the app and listens on config.host:config.port. */
export async function startIngestServer(config: IngestConfig, logger: Logger): Promise<IngestServer> {
  const redis = createRedis(config.redis.url, "producer");
  let redisDown = false;
  // Log state changes only: the producer connection retries every ~2 s while Redis is away.
  redis.on("error", (error) => {
    if (redisDown) return;
    redisDown = true;
    logger.warn("redis unreachable; accepted entries go to the local spool until it is back", {
      redis: redactUrl(config.redis.url),
      error: errorMessage(error),
      spool: config.spoolDir,
    });
  });
  redis.on("ready", () => {
    if (!redisDown) return;
    redisDown = false;
    logger.info("redis reachable again", { redis: redactUrl(config.redis.url) });
  });
  const queue = createIngestQueue(redis, config.redis.queuePrefix, config.redis.partitions);
  const spool =
    config.spoolMaxBytes === 0
      ? undefined
      : { file: new SpoolFile<AcceptedRequest>(config.spoolDir, logger, { owner: "ingest", fsync: true }), maxBytes: config.spoolMaxBytes };
  const otlpQueue = createOtlpQueue(redis, config.redis.queuePrefix);
  // OTLP exports share INGEST_SPOOL_MAX_BYTES's budget size, in a spool file of their own.
  const otlpSpool =
    config.spoolMaxBytes === 0
      ? undefined
      : { file: new SpoolFile<OtelJob>(config.spoolDir, logger, { owner: "otlp", fsync: true }), maxBytes: config.spoolMaxBytes };
  const ingest = createIngestApp({ config, queue, redis, logger, spool, otlpQueue, otlpSpool });
  const server = createServer(ingest.app);
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Above the keep-alive timeout, as proxies advise, so the two never race on a reused connection.
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000;

  const closeConnections = async (): Promise<void> => {
    await ingest.close();
    await closeIngestQueue(queue, redis);
    // As closeIngestQueue does for its queues: the queue's connection setup settles before close() drops its listeners.
    await Promise.race([otlpQueue.waitUntilReady().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 500).unref())]);
    await otlpQueue.close();
  };

  try {
    await ingest.open();
    await listen(server, config.port, config.host);
  } catch (error) {
    await closeConnections();
    throw error;
  }
  const address = server.address() as AddressInfo;
  if (config.public) {
    logger.warn(
      "INGEST_PUBLIC=true: a public telemetry endpoint; anyone who reaches this address may send entries (rate limited per address, x-api-key ignored)",
      {
        host: config.host,
        rate_limit_entries_per_second: config.rateLimitEntriesPerSecond,
      },
    );
  } else if (config.apiKeys.length === 0) {
    logger.warn("INGEST_API_KEYS is not set: accepting unauthenticated requests, listening on loopback only", {
      host: config.host,
      ignored_ingest_host: config.ignoredHost,
    });
  }
  logger.info("listening", {
    host: address.address,
    port: address.port,
    auth: config.public ? "public" : config.apiKeys.length > 0 ? "on" : "off",
    redis: redactUrl(config.redis.url),
  });

  const partitionCheck = new Promise<string | undefined>((resolve) => {
    const check = (): void => {
      partitionCountProblem(redis, config.redis.queuePrefix, config.redis.partitions).then(resolve, () => redis.once("ready", check));
    };
    if (redis.status === "ready") check();
    else redis.once("ready", check);
  });

  let stopping: Promise<void> | undefined;
  return {
    host: address.address,
    port: address.port,
    ingest,
    partitionCheck,
    stop() {
      stopping ??= (async () => {
        const forceClose = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        forceClose.unref();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        clearTimeout(forceClose);
        await closeConnections();
      })();
      return stopping;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(invalid url)";
  }
}
