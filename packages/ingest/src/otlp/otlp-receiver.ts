/**
 * The OTLP/HTTP receiver: POST /v1/logs, /v1/traces and /v1/metrics, protobuf (application/x-protobuf) or JSON
 * (application/json), gzip or deflate, the size limit applied after decompression (413). Records become rows of
 * otel_logs, otel_traces and otel_metrics_sum, _gauge, _histogram (otel-rows.ts), go onto the otel queue (shared's JOB_CATALOG.otel) and are answered 200
 * only once they are durable: on the queue, or, while Redis is away or slow, in ingest's local spool (the `otlp`
 * spool file beside the client-telemetry one, replayed into the queue on its own: platform's DurableProducer);
 * records that cannot be stored are counted in partial_success with a message. When neither the queue nor the spool
 * takes an export the answer is 503, when the queue's backlog is over INGEST_OTLP_MAX_QUEUED_JOBS 429, both with
 * Retry-After, which OTLP exporters honour. Every answer is in the request's encoding; errors are google.rpc.Status.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import {
  DurableProducer,
  browserRequestRefusal,
  errorMessage,
  redisAnswers,
  toErrorResponse,
  withTimeout,
  type Logger,
  type SpoolFile,
} from "@flowmeter/platform";
import { ApiError, JOB_CATALOG, type OtelJob } from "@flowmeter/shared";
import { Queue } from "bullmq";
import express from "express";
import type { Redis } from "ioredis";
import type { IngestMetrics } from "../metrics.js";
import { ENQUEUE_TIMEOUT_MS, REPLAY, redisIsAway, unavailable } from "../ingest/queue-availability.js";
import { decodeLogsJson, decodeMetricsJson, decodeTracesJson } from "./decode-json.js";
import { decodeLogsRequest, decodeMetricsRequest, decodeTracesRequest } from "./decode-protobuf.js";
import { logRows, metricRows, spanRows, type MappedRows } from "./otel-rows.js";
import { OtlpDecodeError, ProtobufWriter } from "./protobuf-reader.js";

export const OTLP_PATHS = { "/v1/logs": "logs", "/v1/traces": "traces", "/v1/metrics": "metrics" } as const;
export type OtlpPath = keyof typeof OTLP_PATHS;
type Signal = (typeof OTLP_PATHS)[OtlpPath];

/** Rows per queue job; a larger export becomes several jobs added in one round trip. */
const MAX_ROWS_PER_JOB = 1000;
const BACKLOG_RETRY_AFTER_SECONDS = 2;
/** How often the queue's backlog is read (never on a request's path). */
const BACKLOG_SAMPLE_MS = 1000;

export function createOtlpQueue(connection: Redis, prefix: string): Queue<OtelJob> {
  return new Queue<OtelJob>(JOB_CATALOG.otel.queue, { connection, prefix });
}

export interface OtlpReceiverOptions {
  queue: Queue<OtelJob>;
  redis: Redis;
  /** INGEST_HOST, for the browser-request check. */
  host: string;
  /** Limit on the body after decompression (INGEST_OTLP_MAX_BODY_BYTES). */
  maxBodyBytes: number;
  /** Above this many jobs waiting on the otel queue, exports are answered 429 (INGEST_OTLP_MAX_QUEUED_JOBS). */
  maxQueuedJobs: number;
  /** The ingest API's key check (authenticate.ts). */
  authenticate: (headers: IncomingHttpHeaders, remoteAddress: string | undefined) => string;
  metrics: IngestMetrics;
  logger: Logger;
  /** Where exports go while Redis is away or slow (owner `otlp`), at most `maxBytes`; without one they are answered 503. */
  spool?: { file: SpoolFile<OtelJob>; maxBytes: number };
}

export interface OtlpReceiver {
  serve(req: IncomingMessage, res: ServerResponse, path: OtlpPath): void;
  /** Opens the spool and replays what an earlier process left in it. */
  open(): Promise<void>;
  /** Waits for exports in flight; stops sampling the backlog and replaying. Does not close the queue. */
  close(): Promise<void>;
}

type Encoding = "protobuf" | "json";

export function createOtlpReceiver(options: OtlpReceiverOptions): OtlpReceiver {
  const { queue, redis, metrics, logger } = options;
  const readBody = express.raw({ type: () => true, limit: options.maxBodyBytes, inflate: true });
  const inFlight = new Set<Promise<unknown>>();
  let queuedJobs = 0;
  const backlogTimer = setInterval(() => {
    if (redis.status !== "ready") return;
    queue.getWaitingCount().then(
      (count) => (queuedJobs = count),
      () => undefined,
    );
  }, BACKLOG_SAMPLE_MS);
  backlogTimer.unref();
  queue.on("error", (error) => logger.debug("otel queue error", { error: errorMessage(error) }));
  const { jobName, options: jobOptions } = JOB_CATALOG.otel;
  const addJobs = async (jobs: OtelJob[]): Promise<void> => {
    await queue.addBulk(jobs.map((data) => ({ name: jobName, data, opts: jobOptions })));
  };
  const producer =
    options.spool === undefined
      ? undefined
      : new DurableProducer<OtelJob>({
          spool: options.spool.file,
          deliver: addJobs,
          logger,
          itemsName: "otel jobs",
          replayTimeoutMs: REPLAY.timeoutMs,
          replayChunk: REPLAY.chunk,
          retryMinMs: REPLAY.retryMinMs,
          retryMaxMs: REPLAY.retryMaxMs,
          reachable: () => redisAnswers(redis, REPLAY.timeoutMs),
          maxBytes: options.spool.maxBytes,
        });

  async function enqueue(rows: Omit<OtelJob, "receivedAtMs">, receivedAtMs: number): Promise<void> {
    if (queuedJobs > options.maxQueuedJobs) {
      throw new ApiError("TOO_MANY_REQUESTS", `the otel queue holds over ${options.maxQueuedJobs} jobs; retry later`, {
        retryAfterSeconds: BACKLOG_RETRY_AFTER_SECONDS,
      });
    }
    const jobs: OtelJob[] = [];
    for (const [key, list] of Object.entries(rows) as [keyof typeof rows, unknown[] | undefined][]) {
      for (let start = 0; start < (list?.length ?? 0); start += MAX_ROWS_PER_JOB) {
        jobs.push({ [key]: list?.slice(start, start + MAX_ROWS_PER_JOB), receivedAtMs });
      }
    }
    if (jobs.length === 0) return;
    try {
      if (producer === undefined) {
        if (redisIsAway(redis)) throw new Error(`redis is ${redis.status}`);
        await withTimeout(addJobs(jobs), ENQUEUE_TIMEOUT_MS);
      } else if (redisIsAway(redis)) {
        // Between Redis's reconnect attempts: straight to the spool, without waiting for a send to time out.
        await producer.spoolItems(jobs);
      } else {
        await producer.send(jobs, { timeoutMs: ENQUEUE_TIMEOUT_MS });
      }
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** Decodes, maps and enqueues one export; resolves with its answer's rejected count and message. */
  async function receive(signal: Signal, encoding: Encoding, body: Buffer): Promise<MappedRows<unknown>> {
    const receivedAtMs = Date.now();
    metrics.requestBodyBytes.observe(body.length);
    let mapped: MappedRows<unknown>;
    try {
      if (signal === "logs") {
        const logs = logRows(encoding === "protobuf" ? decodeLogsRequest(body) : decodeLogsJson(body), receivedAtMs);
        await enqueue({ logs: logs.rows }, receivedAtMs);
        mapped = logs;
      } else if (signal === "metrics") {
        const points = metricRows(encoding === "protobuf" ? decodeMetricsRequest(body) : decodeMetricsJson(body));
        await enqueue({ metricSums: points.sums, metricGauges: points.gauges, metricHistograms: points.histograms }, receivedAtMs);
        mapped = points;
      } else {
        const spans = spanRows(encoding === "protobuf" ? decodeTracesRequest(body) : decodeTracesJson(body));
        await enqueue({ spans: spans.rows }, receivedAtMs);
        mapped = spans;
      }
    } catch (error) {
      if (error instanceof OtlpDecodeError) throw new ApiError("INVALID_PARAMS", `${signal} request: ${error.message}`);
      throw error;
    }
    metrics.otlpRecords.inc({ signal, outcome: "accepted" }, mapped.rows.length);
    metrics.otlpRecords.inc({ signal, outcome: "rejected" }, mapped.rejected);
    return mapped;
  }

  function serve(req: IncomingMessage, res: ServerResponse, path: OtlpPath): void {
    const signal = OTLP_PATHS[path];
    res.on("finish", () => metrics.requests.inc({ route: path, status: String(res.statusCode) }));
    const encoding = encodingOf(req.headers["content-type"]);
    const fail = (error: unknown): void => sendError(res, encoding ?? "json", error, logger);
    try {
      const refusal = browserRequestRefusal(req.headers, options.host);
      if (refusal !== undefined) throw refusal;
      options.authenticate(req.headers, req.socket.remoteAddress);
      if (encoding === undefined) {
        throw new ApiError("INVALID_PARAMS", "Content-Type must be application/x-protobuf or application/json", { status: 415 });
      }
    } catch (error) {
      fail(error);
      return;
    }
    readBody(req, res, (error?: unknown) => {
      if (error) {
        fail(error);
        return;
      }
      const body = (req as IncomingMessage & { body?: unknown }).body;
      const receiving = receive(signal, encoding, Buffer.isBuffer(body) ? body : Buffer.alloc(0));
      inFlight.add(receiving);
      receiving
        .then((mapped) => sendSuccess(res, encoding, signal, mapped))
        .catch(fail)
        .finally(() => inFlight.delete(receiving));
    });
  }

  return {
    serve,
    async open() {
      await producer?.open();
    },
    async close() {
      clearInterval(backlogTimer);
      await Promise.allSettled([...inFlight]);
      // What is still spooled stays for the next start.
      await producer?.close();
    },
  };
}

function encodingOf(contentType: string | undefined): Encoding | undefined {
  const mediaType = (contentType ?? "").split(";", 1)[0]?.trim().toLowerCase();
  if (mediaType === "application/x-protobuf") return "protobuf";
  if (mediaType === "application/json") return "json";
  return undefined;
}

/** The partial_success field of each signal's Export*ServiceResponse (its rejected count, by JSON name). */
const REJECTED_FIELD: Record<Signal, string> = { logs: "rejectedLogRecords", traces: "rejectedSpans", metrics: "rejectedDataPoints" };

function sendSuccess(res: ServerResponse, encoding: Encoding, signal: Signal, mapped: MappedRows<unknown>): void {
  const message = mapped.rejected === 0 ? "" : `${mapped.rejected} record(s) refused; the first: ${mapped.firstProblem ?? "unknown"}`;
  if (encoding === "protobuf") {
    // Export*ServiceResponse { Export*PartialSuccess partial_success = 1 }, PartialSuccess { int64 rejected_* = 1; string error_message = 2 }.
    const partial = new ProtobufWriter().varintField(1, mapped.rejected).stringField(2, message).finish();
    send(res, 200, "application/x-protobuf", new ProtobufWriter().bytesField(1, partial).finish());
    return;
  }
  const answer = mapped.rejected === 0 ? {} : { partialSuccess: { [REJECTED_FIELD[signal]]: String(mapped.rejected), errorMessage: message } };
  send(res, 200, "application/json", Buffer.from(JSON.stringify(answer)));
}

/** gRPC status codes (google.rpc.Code) for the HTTP statuses ingest answers with. */
function grpcCode(status: number): number {
  if (status === 401) return 16; // UNAUTHENTICATED
  if (status === 413 || status === 429) return 8; // RESOURCE_EXHAUSTED
  if (status === 503) return 14; // UNAVAILABLE
  if (status >= 400 && status < 500) return 3; // INVALID_ARGUMENT
  return 13; // INTERNAL
}

function sendError(res: ServerResponse, encoding: Encoding, error: unknown, logger: Logger): void {
  if (res.headersSent) return;
  const { status, body, headers } = toErrorResponse(error);
  if (status >= 500 && status !== 503) logger.error("otlp request failed", { error: errorMessage(error) });
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  const code = grpcCode(status);
  if (encoding === "protobuf") {
    // google.rpc.Status { int32 code = 1; string message = 2 }.
    send(res, status, "application/x-protobuf", new ProtobufWriter().varintField(1, code).stringField(2, body.message).finish());
  } else {
    send(res, status, "application/json", Buffer.from(JSON.stringify({ code, message: body.message })));
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: Buffer): void {
  res.statusCode = status;
  res.setHeader("Content-Type", contentType);
  res.setHeader("Content-Length", String(body.length));
  res.end(body);
}
