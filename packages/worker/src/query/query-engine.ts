/**
 * Runs /query statements on connections of their own, with limits a statement cannot lift, off the worker's event
 * loop, so a heavy query never holds up the inserts or /healthz.
 *
 * Embedded: chDB reader sessions on the worker's data directory, opened apart from the writer's (chDB runs separate
 * sessions in parallel). Every call is chDB's `queryAsync`, which runs on a libuv pool thread: measured with a
 * statement that computes for 7.6 s, the event loop's longest pause was 17 ms (chDB's `queryStream`, used before,
 * holds the event loop while the engine works: 7.6 s). chDB cannot interrupt a call once started (ClickHouse checks
 * max_execution_time and cancellation between blocks, never while it folds constants), so the time limit is kept on
 * the wall clock: past it the statement is answered as timed out, and its reader stays taken (new statements are
 * told 429) until the engine lets go of it; the reader count therefore bounds what /query can ever hold.
 *
 * Server (CLICKHOUSE_URL): a client of its own; the server enforces max_execution_time and cancels a read-only query
 * whose HTTP request is closed, which the wall clock does at the limit.
 */
import { createClient, type ClickHouseClient, type ClickHouseSettings } from "@clickhouse/client";
import { errorMessage } from "@flowmeter/platform";
import { ApiError } from "@flowmeter/shared";
import type { Session } from "chdb";
import { loadChdb } from "../clickhouse/load-chdb.js";
import type { QueryLimits } from "../config.js";
import { checkQueryAst, checkQueryTokens, foreignDatabaseSet, lexSql, parseExplainAst, QUERY_DATABASE } from "./query-guard.js";

export type { QueryLimits };

/** One connection to ClickHouse held for one statement. Each call refuses to start once `signal` has fired. */
export interface QueryReader {
  /**
   * ClickHouse's own formatting of exactly one statement (formatQuerySingleLine, the SQL bound as a parameter so it
   * is never executed): comments gone, one statement or an error. What is checked and run is this text.
   */
  canonical(sql: string): Promise<string>;
  /** ClickHouse's own parse of a canonical statement, as the text of `EXPLAIN AST`. */
  explainAst(canonicalSql: string): Promise<string>;
  /** The statement's whole output in `format` (unless the statement names its own FORMAT). */
  run(canonicalSql: string, format: string): Promise<Buffer>;
}

export interface QueryEngine {
  readonly limits: QueryLimits;
  /**
   * Takes a reader (429 when all are taken) for `use`, and answers when `use` does or when `signal` fires (client
   * gone, time limit), whichever is first. The reader is free again only once its last call has returned.
   */
  withReader<T>(signal: AbortSignal, use: (reader: QueryReader) => Promise<T>): Promise<T>;
  /** Databases other than flowmeter that ClickHouse has, lower-cased (listed once, on first use). */
  foreignDatabases(): Promise<ReadonlySet<string>>;
  close(): Promise<void>;
}

/**
 * How long past max_execution_time the wall clock waits before answering: the engine stops what it can interrupt at
 * the limit with its own error; the wall clock answers what it cannot.
 */
const WALL_CLOCK_GRACE_MS = 1000;

const CANONICAL_SQL = "SELECT formatQuerySingleLine({sql:String})";
const DATABASES_SQL = "SELECT name FROM system.databases";

/** Settings every query runs under; none of them can be changed by a statement (readonly = 1, SETTINGS refused). */
function limitSettings(limits: QueryLimits): Record<string, string> {
  return {
    max_execution_time: String(limits.timeoutSeconds),
    max_memory_usage: String(limits.maxMemoryBytes),
    max_result_rows: String(limits.maxResultRows),
    max_threads: String(limits.maxThreads),
    result_overflow_mode: "throw",
    output_format_pretty_color: "0",
    // On by default in chDB: addressToLine, demangle, … read the worker's own binary.
    allow_introspection_functions: "0",
    readonly: "1",
  };
}

/** An error's message without ClickHouse's repeated prefixes and version. */
function cleanMessage(error: unknown): string {
  return errorMessage(error)
    .replace(/^(Code: \d+\. DB::Exception: )+/, "")
    .replace(/ \(version [^)]*\)/g, "")
    .replace(/(\. \([A-Z_]+\))+$/, "$1");
}

/** A ClickHouse error as the client's 400, naming the limit that stopped the query where one did. */
export function queryFailure(error: unknown, limits: QueryLimits): ApiError {
  if (error instanceof ApiError) return error;
  const message = cleanMessage(error);
  if (message.includes("(TIMEOUT_EXCEEDED)")) return new ApiError("INVALID_PARAMS", `${message}; the limit is set by WORKER_QUERY_TIMEOUT_SECONDS`);
  if (message.includes("(MEMORY_LIMIT_EXCEEDED)")) return new ApiError("INVALID_PARAMS", `${message}; the limit is set by WORKER_QUERY_MAX_MEMORY_BYTES`);
  if (message.includes("(TOO_MANY_ROWS_OR_BYTES)")) {
    return message.includes("max bytes") ? tooLarge(limits) : new ApiError("INVALID_PARAMS", `${message}; the limit is set by WORKER_QUERY_MAX_RESULT_ROWS`);
  }
  return new ApiError("INVALID_PARAMS", message);
}

function tooLarge(limits: QueryLimits): ApiError {
  return new ApiError("INVALID_PARAMS", `the result is larger than ${limits.maxResultBytes} bytes (WORKER_QUERY_MAX_RESULT_BYTES); add a LIMIT or aggregate`);
}

function busy(limits: QueryLimits): ApiError {
  return new ApiError("TOO_MANY_REQUESTS", `${limits.concurrency} queries are running (WORKER_QUERY_CONCURRENCY); try again shortly`, { retryAfterSeconds: 1 });
}

/** What a statement cut off by the wall clock is answered. */
export function timedOut(limits: QueryLimits): ApiError {
  return new ApiError(
    "INVALID_PARAMS",
    `Timeout exceeded: the statement ran past the ${limits.timeoutSeconds} s limit and was cut off; the limit is set by WORKER_QUERY_TIMEOUT_SECONDS`,
  );
}

function stopIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error("the request was cancelled");
}

/** `work`'s outcome, or `signal`'s reason as soon as it fires. `work` runs on; its outcome is then dropped. */
function untilAborted<T>(signal: AbortSignal, work: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error("the request was cancelled"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error("the request was cancelled"));
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** A pool of `size` readers: one is taken per statement and comes back only when the statement's work has settled. */
function readerPool<R>(readers: R[], limits: QueryLimits): <T>(signal: AbortSignal, use: (reader: R) => Promise<T>) => Promise<T> {
  const idle = [...readers];
  return async (signal, use) => {
    stopIfAborted(signal);
    const reader = idle.pop();
    if (reader === undefined) throw busy(limits);
    const work = (async () => use(reader))();
    void work.then(
      () => idle.push(reader),
      () => idle.push(reader),
    );
    return untilAborted(signal, work);
  };
}

function listedDatabases(text: string): ReadonlySet<string> {
  return foreignDatabaseSet(text.split("\n").filter((line) => line !== ""));
}

/** chDB: `concurrency` reader sessions, each read-only with the limits as session settings, in the flowmeter database. */
export async function createEmbeddedQueryEngine(dataDir: string, limits: QueryLimits): Promise<QueryEngine> {
  const connectionArgs = Object.entries(limitSettings(limits)).map(([name, value]) => `--${name}=${value}`);
  const { Session } = await loadChdb(() => import("chdb"));
  const sessions: Session[] = [];
  for (let i = 0; i < limits.concurrency; i += 1) {
    const session = new Session(dataDir, { connectionArgs });
    await session.queryAsync(`USE ${QUERY_DATABASE}`);
    sessions.push(session);
  }
  const databases = listedDatabases((await (sessions[0] as Session).queryAsync(DATABASES_SQL, { format: "TSVRaw" })).text());
  const withSession = readerPool(sessions, limits);
  return {
    limits,
    withReader: (signal, use) =>
      withSession(signal, (session) =>
        use({
          async canonical(sql) {
            stopIfAborted(signal);
            return (await session.queryBindAsync(CANONICAL_SQL, { sql }, { format: "TSVRaw" })).text().trimEnd();
          },
          async explainAst(sql) {
            stopIfAborted(signal);
            return (await session.queryAsync(`EXPLAIN AST ${sql}`, { format: "TSVRaw" })).text();
          },
          async run(sql, format) {
            stopIfAborted(signal);
            // queryAsync hands back the whole answer. The engine bounds it: its rows by max_result_rows, its formatted
            // bytes by max_memory_usage (the output buffer counts; chDB does not apply max_result_bytes to it). What
            // comes back beyond WORKER_QUERY_MAX_RESULT_BYTES is refused.
            const result = (await session.queryAsync(sql, { format })).bytes();
            if (result.length > limits.maxResultBytes) throw tooLarge(limits);
            return Buffer.from(result.buffer, result.byteOffset, result.length);
          },
        }),
      ),
    foreignDatabases: async () => databases,
    async close() {
      for (const session of sessions) session.close();
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
    // readonly comes last (limitSettings), after every setting sent with it.
    clickhouse_settings: { cancel_http_readonly_queries_on_client_close: 1, ...limitSettings(limits) },
  });
  async function collect(sql: string, format: string, signal: AbortSignal): Promise<Buffer> {
    stopIfAborted(signal);
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
  // The readers are slots: the server runs each statement on a connection of the client's pool.
  const withSlot = readerPool(
    Array.from({ length: limits.concurrency }, (_, slot) => slot),
    limits,
  );
  let databases: Promise<ReadonlySet<string>> | undefined;
  return {
    limits,
    withReader: (signal, use) =>
      withSlot(signal, () =>
        use({
          async canonical(sql) {
            stopIfAborted(signal);
            const result = await client.query({ query: CANONICAL_SQL, query_params: { sql }, format: "TabSeparatedRaw", abort_signal: signal });
            return (await result.text()).trimEnd();
          },
          explainAst: async (sql) => (await collect(`EXPLAIN AST ${sql}`, "TSVRaw", signal)).toString("utf8"),
          run: (sql, format) => collect(sql, format, signal),
        }),
      ),
    foreignDatabases() {
      databases ??= collect(DATABASES_SQL, "TSVRaw", new AbortController().signal).then(
        (text) => listedDatabases(text.toString("utf8")),
        (error: unknown) => {
          databases = undefined;
          throw error;
        },
      );
      return databases;
    },
    close: () => client.close(),
  };
}

/**
 * One statement through the guard (query-guard.ts) and the engine's limits: its output, or an ApiError saying why
 * not. `signal` is the client's request: when it closes, the statement's answer is dropped.
 */
export async function runReadOnlyQuery(engine: QueryEngine, sql: string, format: string, signal: AbortSignal): Promise<Buffer> {
  const { limits } = engine;
  if (sql.trim() === "") throw new ApiError("INVALID_PARAMS", "send a query: POST /query with the SQL as the body, or GET /query?query=…");
  const deadline = AbortSignal.timeout(limits.timeoutSeconds * 1000 + WALL_CLOCK_GRACE_MS);
  const stop = AbortSignal.any([signal, deadline]);
  try {
    const foreignDatabases = await engine.foreignDatabases();
    return await engine.withReader(stop, async (reader) => {
      const canonical = await reader.canonical(sql);
      // The text is checked before ClickHouse parses it again: EXPLAIN AST applies a top-level SETTINGS clause.
      checkQueryTokens(lexSql(canonical), foreignDatabases);
      checkQueryAst(parseExplainAst(await reader.explainAst(canonical)), foreignDatabases);
      return reader.run(canonical, format);
    });
  } catch (error) {
    if (deadline.aborted) throw timedOut(limits);
    throw queryFailure(error, limits);
  }
}
