import { ApiError, errorMessage, type Logger } from "@flowmeter/shared";
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import type { Redis } from "ioredis";
import type { IngestConfig } from "./config.js";
import { createErrorHandler, MethodNotAllowedError } from "./error-handler.js";
import { createAuthenticate } from "./ingest/authenticate.js";
import { checkEntries } from "./ingest/check-entries.js";
import { enqueueEntries, UNAVAILABLE_RETRY_AFTER_SECONDS, type ClientTelemetryQueue } from "./ingest/client-telemetry-queue.js";
import { parseBody } from "./ingest/parse-body.js";
import { createRateLimiter } from "./ingest/rate-limiter.js";
import { createIngestMetrics, METRIC_ROUTES, type IngestMetrics } from "./metrics.js";

export interface IngestAppOptions {
  config: Pick<IngestConfig, "apiKeys" | "maxBodyBytes" | "maxEntriesPerRequest" | "maxEntryBytes" | "rateLimitEntriesPerSecond">;
  /** Queue from createIngestQueue(); the caller owns it and closes it. */
  queue: ClientTelemetryQueue;
  /** The queue's connection, used for the fast "disconnected" check and /healthz; the caller owns it. */
  redis: Redis;
  logger: Logger;
}

export interface IngestApp {
  /** The express app; it does not listen (see startIngestServer). */
  app: Express;
  metrics: IngestMetrics;
  /** Waits for enqueues in flight, then drops the metrics. Does not close the queue or Redis. */
  close(): Promise<void>;
}

const HEALTH_PING_TIMEOUT_MS = 1000;

export function createIngestApp({ config, queue, redis, logger }: IngestAppOptions): IngestApp {
  const metrics = createIngestMetrics();
  const authenticate = createAuthenticate(config.apiKeys);
  const rateLimiter = createRateLimiter({ ratePerSecond: config.rateLimitEntriesPerSecond });
  const inFlight = new Set<Promise<unknown>>();
  // Queue errors mirror the connection's; without a listener an EventEmitter "error" would crash the process.
  queue.on("error", (error) => logger.debug("queue error", { error: errorMessage(error) }));

  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  app.set("strict routing", true);
  app.set("case sensitive routing", true);

  app.use(function countRequest(req: Request, res: Response, next: NextFunction) {
    res.on("finish", () => {
      const route = (METRIC_ROUTES as readonly string[]).includes(req.path) ? req.path : "other";
      metrics.requests.inc({ route, status: String(res.statusCode) });
    });
    next();
  });

  app
    .route("/ingest")
    .post(
      function authenticateRequest(req: Request, res: Response, next: NextFunction) {
        res.locals["client"] = authenticate(req.headers, req.socket.remoteAddress);
        next();
      },
      express.raw({ type: () => true, limit: config.maxBodyBytes, inflate: true }),
      async function ingest(req: Request, res: Response) {
        const receivedAtMs = Date.now();
        const body: unknown = req.body;
        if (Buffer.isBuffer(body)) metrics.requestBodyBytes.observe(body.length);
        const entries = parseBody(Buffer.isBuffer(body) ? body : undefined, req.get("content-type"));
        if (entries.length > config.maxEntriesPerRequest) {
          throw new ApiError("PAYLOAD_TOO_LARGE", `request has ${entries.length} entries; at most ${config.maxEntriesPerRequest} are accepted per request`);
        }
        const limit = rateLimiter.take(String(res.locals["client"]), entries.length);
        if (!limit.ok) {
          metrics.entriesRejected.inc({ reason: "TOO_MANY_REQUESTS" }, entries.length);
          throw new ApiError("TOO_MANY_REQUESTS", `rate limit of ${config.rateLimitEntriesPerSecond} entries per second exceeded`, { retryAfterSeconds: limit.retryAfterSeconds });
        }
        const checked = checkEntries(entries, config.maxEntryBytes);
        if (checked.unique.length > 0) {
          const stopTimer = metrics.enqueueDuration.startTimer();
          const enqueue = enqueueEntries(queue, redis, checked.unique, receivedAtMs);
          inFlight.add(enqueue);
          try {
            await enqueue;
            stopTimer({ outcome: "ok" });
          } catch (error) {
            stopTimer({ outcome: "error" });
            metrics.entriesRejected.inc({ reason: "UNAVAILABLE" }, checked.accepted);
            throw error;
          } finally {
            inFlight.delete(enqueue);
          }
        }
        metrics.entriesAccepted.inc(checked.accepted);
        for (const rejection of checked.rejected) metrics.entriesRejected.inc({ reason: rejection.code });
        logger.debug("ingested", { accepted: checked.accepted, enqueued: checked.unique.length, rejected: checked.rejected.length });
        res.status(202).json({ accepted: checked.accepted, rejected: checked.rejected });
      },
    )
    .all(methodNotAllowed("POST"));

  app
    .route("/healthz")
    .get(async function healthz(_req: Request, res: Response) {
      if (!(await redisAnswers(redis))) {
        throw new ApiError("UNAVAILABLE", "redis is not reachable", { retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS });
      }
      res.json({ status: "ok", redis: "up" });
    })
    .all(methodNotAllowed("GET, HEAD"));

  app
    .route("/metrics")
    .get(async function serveMetrics(_req: Request, res: Response) {
      const text = await metrics.registry.metrics();
      res.set("Content-Type", metrics.registry.contentType).send(text);
    })
    .all(methodNotAllowed("GET, HEAD"));

  app.use(function notFound(req: Request) {
    throw new ApiError("NOT_FOUND", `no route ${req.method} ${req.path.slice(0, 200)}`);
  });
  app.use(createErrorHandler(logger));

  return {
    app,
    metrics,
    async close() {
      await Promise.allSettled([...inFlight]);
      metrics.registry.clear();
    },
  };
}

function methodNotAllowed(allow: string) {
  return function wrongMethod(req: Request) {
    throw new MethodNotAllowedError(req.method, req.path, allow);
  };
}

async function redisAnswers(redis: Redis): Promise<boolean> {
  if (redis.status !== "ready") return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve("timeout"), HEALTH_PING_TIMEOUT_MS);
    });
    return (await Promise.race([redis.ping(), timeout])) === "PONG";
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
