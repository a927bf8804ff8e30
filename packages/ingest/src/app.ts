import {
  browserRequestRefusal,
  createErrorHandler,
  errorMessage,
  methodNotAllowed,
  notFound,
  redisAnswers,
  serveMetrics,
  type Logger,
  type SpoolFile,
} from "@flowmeter/platform";
import { ApiError, REPAIRS_KEY, type CliInvocationEvent, type EntryRepairs } from "@flowmeter/shared";
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { OtelJob } from "@flowmeter/shared";
import type { IngestConfig } from "./config.js";
import { createAuthenticate } from "./ingest/authenticate.js";
import { checkEntries, type EntryRejection } from "./ingest/check-entries.js";
import { createEnqueue, type ClientTelemetryQueue, type IngestSpool } from "./ingest/client-telemetry-queue.js";
import { UNAVAILABLE_RETRY_AFTER_SECONDS } from "./ingest/queue-availability.js";
import { ByteBudget } from "./ingest/byte-budget.js";
import { contentTypeRefusal, parseBody } from "./ingest/parse-body.js";
import { createRateLimiter } from "./ingest/rate-limiter.js";
import { createIngestMetrics, METRIC_ROUTES, type IngestMetrics } from "./metrics.js";
import { createOtlpReceiver, OTLP_PATHS, type OtlpPath } from "./otlp/otlp-receiver.js";

export interface IngestAppOptions {
  config: Pick<
    IngestConfig,
    "host" | "bodyBytesInFlight" | "apiKeys" | "maxBodyBytes" | "maxEntriesPerRequest" | "maxEntryBytes" | "rateLimitEntriesPerSecond"
  > &
    Partial<Pick<IngestConfig, "otlpMaxBodyBytes" | "otlpMaxQueuedJobs" | "enqueueLingerMs">>;
  /** Queue from createIngestQueue(); the caller owns it and closes it. */
  queue: ClientTelemetryQueue;
  /** The queue's connection, used for the fast "disconnected" check and /healthz; the caller owns it. */
  redis: Redis;
  logger: Logger;
  /** Where accepted entries go while Redis is away; without one, such requests are answered 503. */
  spool?: Omit<IngestSpool, "onChange" | "onWriteFailed" | "onLinesDropped" | "logger">;
  /** The otel queue (otlp-receiver.ts createOtlpQueue) for POST /v1/logs, /v1/traces and /v1/metrics; without it they answer 404. */
  otlpQueue?: Queue<OtelJob>;
  /** Where OTLP exports go while Redis is away (spool owner `otlp`); without one they are answered 503 then. */
  otlpSpool?: { file: SpoolFile<OtelJob>; maxBytes: number };
}

export interface IngestApp {
  /**
   * The request listener (`http.createServer(app)`); it does not listen (see startIngestServer). `POST /ingest` is
   * served without express's per-request machinery (see serveIngest); every other request goes to the express app.
   */
  app: RequestListener;
  metrics: IngestMetrics;
  /** Opens the spool and starts replaying what an earlier process left in it. */
  open(): Promise<void>;
  /** Waits for enqueues in flight, then drops the metrics. Does not close the queue or Redis. */
  close(): Promise<void>;
}

const HEALTH_PING_TIMEOUT_MS = 1000;

export function createIngestApp({ config, queue, redis, logger, spool, otlpQueue, otlpSpool }: IngestAppOptions): IngestApp {
  const metrics = createIngestMetrics();
  const authenticate = createAuthenticate(config.apiKeys);
  const rateLimiter = createRateLimiter({ ratePerSecond: config.rateLimitEntriesPerSecond });
  const inFlight = new Set<Promise<unknown>>();
  const bodyBudget = new ByteBudget(config.bodyBytesInFlight);
  const enqueuer = createEnqueue(queue, redis, {
    lingerMs: config.enqueueLingerMs ?? 0,
    spool:
      spool === undefined
        ? undefined
        : {
            ...spool,
            logger,
            onChange: ({ items, bytes }) => {
              metrics.spooledRequests.set(items);
              metrics.spoolBytes.set(bytes);
            },
            onWriteFailed: (reason, requests) => metrics.spoolWriteFailedRequests.inc({ reason }, requests),
            onLinesDropped: (lines) => metrics.spoolLinesDropped.inc(lines),
          },
  });
  const otlp =
    otlpQueue === undefined
      ? undefined
      : createOtlpReceiver({
          queue: otlpQueue,
          redis,
          host: config.host,
          maxBodyBytes: config.otlpMaxBodyBytes ?? 20 * 1024 * 1024,
          maxQueuedJobs: config.otlpMaxQueuedJobs ?? 10_000,
          authenticate,
          metrics,
          logger,
          spool: otlpSpool,
        });
  // Queue errors mirror the connection's; without a listener an EventEmitter "error" would crash the process.
  for (const partition of queue.partitions) partition.on("error", (error) => logger.debug("queue error", { error: errorMessage(error) }));

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

  app.use(function refuseBrowsers(req: Request, _res: Response, next: NextFunction) {
    next(browserRequestRefusal(req.headers, config.host));
  });

  const readBody = express.raw({ type: () => true, limit: config.maxBodyBytes, inflate: true });
  const errorHandler = createErrorHandler(logger);

  /** The work of POST /ingest once the caller is authenticated and the body read: the 202 answer, or throws. */
  async function ingest(body: unknown, contentType: string | undefined, client: string, source: string, clientVersion: string): Promise<IngestAnswer> {
    const receivedAtMs = Date.now();
    if (Buffer.isBuffer(body)) metrics.requestBodyBytes.observe(body.length);
    const { entries, invalidUtf8Excerpt, mayHaveLoneSurrogates } = parseBody(Buffer.isBuffer(body) ? body : undefined, contentType);
    if (entries.length > config.maxEntriesPerRequest) {
      throw new ApiError("PAYLOAD_TOO_LARGE", `request has ${entries.length} entries; at most ${config.maxEntriesPerRequest} are accepted per request`);
    }
    const limit = rateLimiter.take(client, entries.length);
    if (!limit.ok) {
      metrics.entriesRejected.inc({ reason: "TOO_MANY_REQUESTS" }, entries.length);
      throw new ApiError("TOO_MANY_REQUESTS", `rate limit of ${config.rateLimitEntriesPerSecond} entries per second exceeded`, {
        retryAfterSeconds: limit.retryAfterSeconds,
      });
    }
    const checked = checkEntries(entries, { maxEntryBytes: config.maxEntryBytes, receivedAtMs, source, invalidUtf8Excerpt, mayHaveLoneSurrogates });
    if (clientVersion !== "") for (const entry of checked.unique) stampClientVersion(entry, clientVersion);
    if (checked.unique.length > 0 || checked.warnings.length > 0) {
      const stopTimer = metrics.enqueueDuration.startTimer();
      const enqueue = enqueuer.enqueue({ entries: checked.unique, warnings: checked.warnings }, receivedAtMs);
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
    for (const warning of checked.warnings) if (warning.reason !== "rejected") metrics.entriesRepaired.inc({ reason: warning.reason });
    logger.debug("ingested", { accepted: checked.accepted, enqueued: checked.unique.length, rejected: checked.rejected.length });
    return { accepted: checked.accepted, rejected: checked.rejected };
  }

  /**
   * POST /ingest without express: count, authenticate, read the body with express's body-parser, ingest, answer or
   * hand the error to the shared error handler, on the bare node request and response. Express's per-request work
   * (prototype swaps, router, response helpers) cost more CPU than the whole ingest of a single entry, on 2 cores that
   * ingest shares with Redis, the worker and ClickHouse.
   */
  function serveIngest(req: IncomingMessage, res: ServerResponse): void {
    res.on("finish", () => metrics.requests.inc({ route: "/ingest", status: String(res.statusCode) }));
    const fail = (error: unknown): void => errorHandler(error, { path: "/ingest", socket: req.socket }, errorResponseOf(res), () => {});
    let client: string;
    try {
      const refusal = browserRequestRefusal(req.headers, config.host) ?? contentTypeRefusal(req.headers["content-type"]);
      if (refusal !== undefined) throw refusal;
      client = authenticate(req.headers, req.socket.remoteAddress);
    } catch (error) {
      fail(error);
      return;
    }
    // Without a Content-Length (chunked), a request is counted at 1 MiB.
    const declared = Number(req.headers["content-length"] ?? 1 << 20);
    void bodyBudget.reserve(Number.isFinite(declared) && declared > 0 ? declared : 1 << 20).then((release) => {
      res.once("close", release);
      readBody(req, res, (error?: unknown) => {
        if (error) {
          fail(error);
          return;
        }
        ingest(
          (req as IncomingMessage & { body?: unknown }).body,
          req.headers["content-type"],
          client,
          req.socket.remoteAddress ?? "",
          clientVersionOf(req.headers["user-agent"]),
        )
          .then((answer) => sendJson(res, 202, answer))
          .catch(fail);
      });
    });
  }

  app.route("/ingest").all(methodNotAllowed("POST"));

  app
    .route("/healthz")
    .get(async function healthz(_req: Request, res: Response) {
      if (!(await redisAnswers(redis, HEALTH_PING_TIMEOUT_MS))) {
        throw new ApiError("UNAVAILABLE", "redis is not reachable", { retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS });
      }
      res.json({ status: "ok", redis: "up" });
    })
    .all(methodNotAllowed("GET, HEAD"));

  app.route("/metrics").get(serveMetrics(metrics.registry)).all(methodNotAllowed("GET, HEAD"));

  app.use(notFound);
  app.use(errorHandler);

  function serve(req: IncomingMessage, res: ServerResponse): void {
    const path = req.method === "POST" ? pathnameOf(req.url) : "";
    if (path === "/ingest") serveIngest(req, res);
    else if (otlp !== undefined && Object.hasOwn(OTLP_PATHS, path)) otlp.serve(req, res, path as OtlpPath);
    else app(req, res);
  }

  return {
    app: serve,
    metrics,
    async open() {
      await enqueuer.open();
      await otlp?.open();
    },
    async close() {
      await Promise.allSettled([...inFlight]);
      await otlp?.close();
      await enqueuer.close();
      metrics.registry.clear();
    },
  };
}

/**
 * The path of a request target in any form (`/ingest?x`, `http://host/ingest`); "" when it does not parse. Repeated
 * and trailing slashes are dropped: the real client builds `${endpoint}/ingest`, so an endpoint set with a trailing
 * slash posts to `//ingest`.
 */
function pathnameOf(target: string | undefined): string {
  if (target === "/ingest") return target;
  let pathname: string;
  if (target?.startsWith("/") === true) pathname = target.split("?", 1)[0] ?? "";
  else {
    try {
      pathname = new URL(target ?? "").pathname;
    } catch {
      return "";
    }
  }
  return pathname.replace(/\/{2,}/g, "/").replace(/(.)\/$/, "$1");
}

interface IngestAnswer {
  accepted: number;
  rejected: EntryRejection[];
}

/** What express's `res.status(status).json(body)` sends: the same status, headers and bytes. */
function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Content-Length", String(Buffer.byteLength(json)));
  res.end(json);
}

/** The bare response in the shape createErrorHandler writes to (express's `res.set` and `res.status().json`). */
function errorResponseOf(res: ServerResponse) {
  return {
    get headersSent() {
      return res.headersSent;
    },
    set(headers: Record<string, string>) {
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    },
    status(status: number) {
      return { json: (body: unknown) => sendJson(res, status, body) };
    },
  };
}

/** The sender's version from its User-Agent, `swamp-cli/<VERSION>` (docs/swamp-telemetry.md §2); "" for any other sender. */
export function clientVersionOf(userAgent: string | undefined): string {
  return /^swamp-cli\/([0-9A-Za-z.+-]{1,64})(?:[\s;]|$)/.exec(userAgent ?? "")?.[1] ?? "";
}

/** Records the sender's version in the entry's `$flowmeter` record, which becomes its row's client_version. */
function stampClientVersion(entry: CliInvocationEvent, clientVersion: string): void {
  const added = entry[REPAIRS_KEY] as EntryRepairs | undefined;
  entry[REPAIRS_KEY] = { ...(added ?? { repairs: [] }), clientVersion } satisfies EntryRepairs;
}
