/**
 * The worker's small HTTP surface: /metrics for Prometheus, /healthz, and /query, a read-only window onto
 * ClickHouse. In the embedded default the worker is the only process that may open chDB's directory, so
 * everything else (the README's example, the bench, tests) reads through here. /query answers only when the worker
 * listens on loopback; what a statement may do is decided in src/query/query-guard.ts and its limits are set in
 * src/query/query-engine.ts, which runs it off this event loop (a heavy statement never delays /healthz or the
 * inserts) and answers it at the time limit at the latest. Requests a web page could make (foreign Origin or Host)
 * are refused on every route.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { browserRequestRefusal, errorMessage, type Logger } from "@flowmeter/platform";
import { ApiError } from "@flowmeter/shared";
import type { Registry } from "prom-client";
import { runReadOnlyQuery, type QueryEngine } from "../query/query-engine.js";

const MAX_QUERY_BYTES = 1 << 20;
const DEFAULT_FORMAT = "PrettyCompactMonoBlock";

export interface WorkerHttpDeps {
  registry: Registry;
  logger: Logger;
  /** The address the server listens on (WORKER_HOST). */
  listenHost: string;
  /** Refreshes gauges that are sampled, not pushed (queue depth and lag). */
  beforeScrape: () => Promise<void>;
  /** What keeps the worker from working (e.g. "Redis is not reachable"), or undefined when it is healthy. */
  unhealthyBecause: () => Promise<string | undefined>;
  /** Runs /query statements; undefined when the worker listens beyond loopback (then /query is not served). */
  queryEngine: QueryEngine | undefined;
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  response.end(body);
}

function sendError(response: ServerResponse, error: ApiError): void {
  if (error.retryAfterSeconds !== undefined) response.setHeader("retry-after", String(error.retryAfterSeconds));
  send(response, error.status, "application/json", JSON.stringify(error.toBody()));
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_QUERY_BYTES) throw new ApiError("PAYLOAD_TOO_LARGE", `query is larger than ${MAX_QUERY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function createWorkerHttpServer({ registry, logger, listenHost, beforeScrape, unhealthyBecause, queryEngine }: WorkerHttpDeps): Server {
  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const refusal = browserRequestRefusal(request.headers, listenHost);
    if (refusal !== undefined) throw refusal;
    const url = new URL(request.url ?? "/", "http://worker");
    if (url.pathname === "/metrics" && request.method === "GET") {
      await beforeScrape().catch((error: unknown) => logger.warn("queue sampling failed", { error: errorMessage(error) }));
      send(response, 200, registry.contentType, await registry.metrics());
      return;
    }
    if (url.pathname === "/healthz" && request.method === "GET") {
      const problem = await unhealthyBecause();
      if (problem === undefined) send(response, 200, "application/json", JSON.stringify({ status: "ok" }));
      else sendError(response, new ApiError("UNAVAILABLE", problem));
      return;
    }
    if (url.pathname === "/query" && (request.method === "GET" || request.method === "POST")) {
      if (queryEngine === undefined)
        throw new ApiError("NOT_FOUND", "/query is served only when the worker listens on loopback (WORKER_HOST); query ClickHouse directly");
      const sql = request.method === "GET" ? (url.searchParams.get("query") ?? "") : await readBody(request);
      const format = url.searchParams.get("format") ?? DEFAULT_FORMAT;
      if (!/^[A-Za-z]+$/.test(format)) throw new ApiError("INVALID_PARAMS", "format must be a ClickHouse output format name");
      const abort = new AbortController();
      response.on("close", () => abort.abort());
      const output = await runReadOnlyQuery(queryEngine, sql, format, abort.signal);
      response.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": output.length });
      response.end(output);
      return;
    }
    sendError(response, new ApiError("NOT_FOUND", `no route ${request.method ?? "GET"} ${url.pathname}; try /metrics, /healthz or /query`));
  }

  return createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      const apiError = error instanceof ApiError ? error : new ApiError("INTERNAL_ERROR", "internal error", { cause: error });
      if (!(error instanceof ApiError)) logger.error("worker http error", { error: errorMessage(error) });
      if (!response.headersSent) sendError(response, apiError);
      else response.end();
    });
  });
}
