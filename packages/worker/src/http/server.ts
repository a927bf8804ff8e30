/**
 * The worker's small HTTP surface: /metrics for Prometheus, /healthz, and /query, a read-only window onto
 * ClickHouse. In the embedded default the worker is the only process that may open chDB's directory, so
 * everything else (the README's example, the bench, tests) reads through here. /query answers only when the worker
 * listens on loopback, and runs each statement with readonly = 1 (no writes, no table functions such as file() or
 * url()) in the statement's own SETTINGS clause, never as a chDB session setting.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { ClickHouseClient } from "@clickhouse/client";
import { ApiError, errorMessage, type Logger } from "@flowmeter/shared";
import type { Registry } from "prom-client";

const MAX_QUERY_BYTES = 1 << 20;
const READ_ONLY_STATEMENT = /^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b/i;

export interface WorkerHttpDeps {
  registry: Registry;
  clickhouse: ClickHouseClient;
  logger: Logger;
  /** Refreshes gauges that are sampled, not pushed (queue depth and lag). */
  beforeScrape: () => Promise<void>;
  isHealthy: () => Promise<boolean>;
  /** Serve /query: only when listening on loopback. */
  queryEnabled: boolean;
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  response.end(body);
}

function sendError(response: ServerResponse, error: ApiError): void {
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

/** One read-only statement, ending at an optional `;`. */
export function checkReadOnlyQuery(sql: string): string {
  const statement = sql.trim().replace(/;\s*$/, "");
  if (statement === "") throw new ApiError("INVALID_PARAMS", "send a query: POST /query with the SQL as the body, or GET /query?query=…");
  if (!READ_ONLY_STATEMENT.test(statement)) throw new ApiError("INVALID_PARAMS", "only read-only statements (SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN) are allowed");
  if (statement.includes(";")) throw new ApiError("INVALID_PARAMS", "send one statement at a time");
  // readonly = 1 does not cover INTO OUTFILE, which chDB writes in-process.
  if (/\bINTO\s+OUTFILE\b/i.test(statement)) throw new ApiError("INVALID_PARAMS", "INTO OUTFILE is not allowed");
  return statement;
}

export function createWorkerHttpServer({ registry, clickhouse, logger, beforeScrape, isHealthy, queryEnabled }: WorkerHttpDeps): Server {
  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://worker");
    if (url.pathname === "/metrics" && request.method === "GET") {
      await beforeScrape().catch((error: unknown) => logger.warn("queue sampling failed", { error: errorMessage(error) }));
      send(response, 200, registry.contentType, await registry.metrics());
      return;
    }
    if (url.pathname === "/healthz" && request.method === "GET") {
      if (await isHealthy()) send(response, 200, "application/json", JSON.stringify({ status: "ok" }));
      else sendError(response, new ApiError("UNAVAILABLE", "Redis or ClickHouse is not reachable"));
      return;
    }
    if (url.pathname === "/query" && (request.method === "GET" || request.method === "POST")) {
      if (!queryEnabled) throw new ApiError("NOT_FOUND", "/query is served only when the worker listens on loopback (WORKER_HOST); query ClickHouse directly");
      const sql = checkReadOnlyQuery(request.method === "GET" ? (url.searchParams.get("query") ?? "") : await readBody(request));
      const format = url.searchParams.get("format") ?? "PrettyCompactMonoBlock";
      if (!/^[A-Za-z]+$/.test(format)) throw new ApiError("INVALID_PARAMS", "format must be a ClickHouse output format name");
      const result = await clickhouse.exec({ query: `${sql}\nSETTINGS readonly = 1\nFORMAT ${format}` }).catch((error: unknown) => {
        throw new ApiError("INVALID_PARAMS", errorMessage(error));
      });
      const chunks: Buffer[] = [];
      for await (const chunk of result.stream) chunks.push(Buffer.from(chunk as Uint8Array));
      send(response, 200, "text/plain; charset=utf-8", Buffer.concat(chunks).toString("utf8"));
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
