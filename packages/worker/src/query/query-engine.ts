/**
 * Runs /query statements on a connection of their own, with limits a statement cannot lift, so a heavy query never
 * holds up the inserts: embedded, chDB sessions on the worker's data directory opened apart from the writer's (chDB
 * runs separate sessions in parallel); with a server, a client of its own.
 */
import { createClient, type ClickHouseClient, type ClickHouseSettings } from "@clickhouse/client";
import { errorMessage } from "@flowmeter/platform";
import { ApiError } from "@flowmeter/shared";
import type { Session } from "chdb";
import { loadChdb } from "../clickhouse/load-chdb.js";
import { checkQueryAst, parseExplainAst, QUERY_DATABASE } from "./query-guard.js";

export interface QueryLimits {
  /** max_execution_time, in seconds. */
  timeoutSeconds: number;
  /** max_memory_usage of one query. */
  maxMemoryBytes: number;
  /** max_result_rows. */
  maxResultRows: number;
  /** Bytes of formatted output the worker holds for one answer; the query is cancelled beyond it. */
  maxResultBytes: number;
  /** Queries run at once; more are answered 429. */
  concurrency: number;
  /** max_threads of one query: what a query may take of the cores the inserts need. */
  maxThreads: number;
}

export interface QueryEngine {
  /**
   * ClickHouse's own formatting of exactly one statement (formatQuerySingleLine, the SQL bound as a parameter so it
   * is never executed): comments gone, one statement or an error. What is checked and run is this text.
   */
  canonical(sql: string): Promise<string>;
  /** ClickHouse's own parse of a canonical statement, as the text of `EXPLAIN AST`. */
  explainAst(canonicalSql: string): Promise<string>;
  /** The statement's whole output in `format` (unless the statement names its own FORMAT). */
  run(canonicalSql: string, format: string, signal: AbortSignal): Promise<Buffer>;
  close(): Promise<void>;
}

const CANONICAL_SQL = "SELECT formatQuerySingleLine({sql:String})";

/** Settings every query runs under; none of them can be changed by a statement (readonly = 1, SETTINGS refused). */
function limitSettings(limits: QueryLimits): Record<string, string> {
  return {
    max_execution_time: String(limits.timeoutSeconds),
    max_memory_usage: String(limits.maxMemoryBytes),
    max_result_rows: String(limits.maxResultRows),
    max_threads: String(limits.maxThreads),
    result_overflow_mode: "throw",
    output_format_pretty_color: "0",
    readonly: "1",
  };
}

const LIMIT_HINTS: Record<string, string> = {
  TIMEOUT_EXCEEDED: "WORKER_QUERY_TIMEOUT_SECONDS",
  TOO_MANY_ROWS_OR_BYTES: "WORKER_QUERY_MAX_RESULT_ROWS",
  MEMORY_LIMIT_EXCEEDED: "WORKER_QUERY_MAX_MEMORY_BYTES",
};

/** A ClickHouse error as the client's 400, naming the limit that stopped the query where one did. */
export function queryFailure(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const message = errorMessage(error)
    .replace(/^(Code: \d+\. DB::Exception: )+/, "")
    .replace(/ \(version [^)]*\)/g, "")
    .replace(/(\. \([A-Z_]+\))+$/, "$1");
  const limit = Object.entries(LIMIT_HINTS).find(([type]) => message.includes(`(${type})`));
  return new ApiError("INVALID_PARAMS", limit === undefined ? message : `${message}; the limit is set by ${limit[1]}`);
}

function tooLarge(limits: QueryLimits): ApiError {
  return new ApiError("INVALID_PARAMS", `the result is larger than ${limits.maxResultBytes} bytes (WORKER_QUERY_MAX_RESULT_BYTES); add a LIMIT or aggregate`);
}

function busy(limits: QueryLimits): ApiError {
  return new ApiError("TOO_MANY_REQUESTS", `${limits.concurrency} queries are running (WORKER_QUERY_CONCURRENCY); try again shortly`, { retryAfterSeconds: 1 });
}

/** chDB: `concurrency` reader sessions, each read-only with the limits as session settings, in the flowmeter database. */
export async function createEmbeddedQueryEngine(dataDir: string, limits: QueryLimits): Promise<QueryEngine> {
  const connectionArgs = Object.entries(limitSettings(limits)).map(([name, value]) => `--${name}=${value}`);
  const { Session } = await loadChdb(() => import("chdb"));
  const idle: Session[] = [];
  for (let i = 0; i < limits.concurrency; i += 1) {
    const session = new Session(dataDir, { connectionArgs });
    await session.queryAsync(`USE ${QUERY_DATABASE}`);
    idle.push(session);
  }
  const all = [...idle];
  async function withSession<T>(use: (session: Session) => Promise<T>): Promise<T> {
    const session = idle.pop();
    if (session === undefined) throw busy(limits);
    try {
      return await use(session);
    } finally {
      idle.push(session);
    }
  }
  return {
    canonical: (sql) => withSession(async (session) => (await session.queryBindAsync(CANONICAL_SQL, { sql }, { format: "TSVRaw" })).text().trimEnd()),
    explainAst: (sql) => withSession(async (session) => (await session.queryAsync(`EXPLAIN AST ${sql}`, { format: "TSVRaw" })).text()),
    run: (sql, format, signal) =>
      withSession(async (session) => {
        // chDB streams SELECTs only; the other statements allowed (DESCRIBE, SHOW, EXISTS, EXPLAIN) answer little.
        if (!/^(SELECT|WITH)\b/i.test(sql)) {
          const result = (await session.queryAsync(sql, { format, signal })).bytes();
          if (result.length > limits.maxResultBytes) throw tooLarge(limits);
          return Buffer.from(result);
        }
        const chunks: Buffer[] = [];
        let size = 0;
        const stream = session.queryStream(sql, { format, signal });
        try {
          for await (const chunk of stream) {
            size += chunk.numBytes;
            if (size > limits.maxResultBytes) throw tooLarge(limits);
            chunks.push(Buffer.from(chunk.raw()));
          }
        } finally {
          stream.cancel();
        }
        return Buffer.concat(chunks);
      }),
    async close() {
      for (const session of all) session.close();
    },
  };
}

/** A ClickHouse server: a client of its own, the limits sent with every query. */
export function createServerQueryEngine(url: string, limits: QueryLimits): QueryEngine {
  const client: ClickHouseClient = createClient({
    url,
    database: QUERY_DATABASE,
    request_timeout: (limits.timeoutSeconds + 10) * 1000,
    max_open_connections: limits.concurrency,
    clickhouse_settings: limitSettings(limits),
  });
  let running = 0;
  async function limited<T>(work: () => Promise<T>): Promise<T> {
    if (running >= limits.concurrency) throw busy(limits);
    running += 1;
    try {
      return await work();
    } finally {
      running -= 1;
    }
  }
  async function collect(sql: string, format: string, signal: AbortSignal | undefined): Promise<Buffer> {
    const result = await client.exec({ query: sql, abort_signal: signal, clickhouse_settings: { default_format: format } as ClickHouseSettings });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of result.stream) {
      const bytes = Buffer.from(chunk as Uint8Array);
      size += bytes.length;
      if (size > limits.maxResultBytes) {
        result.stream.destroy();
        throw tooLarge(limits);
      }
      chunks.push(bytes);
    }
    return Buffer.concat(chunks);
  }
  return {
    canonical: (sql) =>
      limited(async () => {
        const result = await client.query({ query: CANONICAL_SQL, query_params: { sql }, format: "TabSeparatedRaw" });
        return (await result.text()).trimEnd();
      }),
    explainAst: (sql) => limited(async () => (await collect(`EXPLAIN AST ${sql}`, "TSVRaw", undefined)).toString("utf8")),
    run: (sql, format, signal) => limited(() => collect(sql, format, signal)),
    close: () => client.close(),
  };
}

/** One statement through the guard (query-guard.ts) and the engine's limits: its output, or an ApiError saying why not. */
export async function runReadOnlyQuery(engine: QueryEngine, sql: string, format: string, signal: AbortSignal): Promise<Buffer> {
  if (sql.trim() === "") throw new ApiError("INVALID_PARAMS", "send a query: POST /query with the SQL as the body, or GET /query?query=…");
  try {
    const canonical = await engine.canonical(sql);
    checkQueryAst(parseExplainAst(await engine.explainAst(canonical)));
    return await engine.run(canonical, format, signal);
  } catch (error) {
    throw queryFailure(error);
  }
}
