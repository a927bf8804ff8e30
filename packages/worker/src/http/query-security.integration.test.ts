/**
 * The security corpus of /query: every attack found against it, each refused with a clear error, and the limits
 * that keep a heavy query from costing the worker its memory or its inserts. Against real chDB.
 */
import { existsSync, rmSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { createLogger } from "@flowmeter/platform";
import { openScratchDatabase, type ScratchDatabase, waitFor } from "@flowmeter/test-utils";
import { insertBlockThroughClient, toBlock } from "../clickhouse/block-writer.js";
import * as worker from "../index.js";
import { createEmbeddedQueryEngine, type QueryEngine, type QueryLimits } from "../query/query-engine.js";
import { createWorkerHttpServer } from "./server.js";

const LIMITS: QueryLimits = { timeoutSeconds: 2, maxMemoryBytes: 512 << 20, maxResultRows: 1_000_000, maxResultBytes: 32 << 20, concurrency: 2, maxThreads: 1 };
const OUTFILE = "/tmp/flowmeter-query-attack.txt";

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A raw HTTP request, so Host and Origin are exactly what an attacker's browser would send. */
function send(base: string, path: string, options: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method: options.method ?? "POST", headers: options.headers ?? {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), headers: res.headers }));
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

describe("worker /query security", () => {
  let database: ScratchDatabase<worker.BlockWriter>;
  let engine: QueryEngine;
  let base: string;
  const servers: Server[] = [];

  async function serve(queryEngine: QueryEngine | undefined): Promise<string> {
    const server = createWorkerHttpServer({
      registry: new Registry(),
      logger: createLogger("test", "error", () => {}),
      listenHost: "127.0.0.1",
      beforeScrape: async () => {},
      isHealthy: async () => true,
      queryEngine,
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const query = async (sql: string, format = "TabSeparated"): Promise<Answer> => {
    const answer = await send(base, `/query?format=${format}`, { body: sql });
    return { ...answer, body: answer.body.trim() };
  };

  beforeAll(async () => {
    rmSync(OUTFILE, { force: true });
    database = await openScratchDatabase("worker-query", worker);
    await database.clickhouse.command({ query: "CREATE TABLE flowmeter.query_probe (id String) ENGINE = MergeTree ORDER BY id" });
    engine = await createEmbeddedQueryEngine(`${database.dir}/clickhouse`, LIMITS);
    base = await serve(engine);
  });
  afterAll(async () => {
    for (const server of servers) server.close();
    await engine.close();
    await database.close();
  });

  it("answers read-only statements over flowmeter tables, unqualified names included, and sees later inserts", async () => {
    expect(await query("SELECT count() FROM flowmeter.query_probe")).toMatchObject({ status: 200, body: "0" });
    expect(await query("SHOW TABLES FROM flowmeter LIKE 'query_probe'")).toMatchObject({ status: 200, body: "query_probe" });
    await insertBlockThroughClient(database.clickhouse, toBlock("flowmeter.query_probe", ["id"], [{ id: "a" }]));
    expect(await query("SELECT id FROM query_probe -- a comment; DROP TABLE x")).toMatchObject({ status: 200, body: "a" });
    expect(await query("WITH q AS (SELECT id FROM query_probe) SELECT count() FROM q;")).toMatchObject({ status: 200, body: "1" });
    expect(await query("SELECT id FROM query_probe FORMAT Vertical")).toMatchObject({ status: 200, body: "Row 1:\n──────\nid: a" });
    expect(await query("DESCRIBE TABLE flowmeter.query_probe", "TSV")).toMatchObject({ status: 200, body: "id\tString" });
    expect(await query("EXISTS TABLE flowmeter.query_probe")).toMatchObject({ status: 200, body: "1" });
  });

  it("prints pretty output without terminal colour codes", async () => {
    const answer = await query("SELECT id FROM query_probe", "PrettyCompact");
    expect(answer.status).toBe(200);
    expect(answer.body).not.toContain("\u001b[");
    expect(answer.body).toContain("│ a  │");
  });

  const ATTACKS: Array<[string, string]> = [
    ["SELECT file('/etc/passwd')", "function file() is not allowed"],
    ["SELECT FILE('/etc/passwd')", "function file() is not allowed"],
    ["SELECT arrayMap(x -> file(x), ['/etc/passwd'])", "function file() is not allowed"],
    ["SELECT * FROM (SELECT * FROM file('/etc/passwd','LineAsString') SETTINGS readonly=0)", "table function file() is not allowed"],
    ["SELECT * FROM (SELECT * FROM url('http://127.0.0.1:1/healthz','LineAsString') SETTINGS readonly=0)", "table function url() is not allowed"],
    ["SELECT * FROM (SELECT * FROM flowmeter.query_probe SETTINGS readonly=0)", "SETTINGS clauses are not allowed"],
    ["SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function file() is not allowed"],
    ["SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')", "table function url() is not allowed"],
    ["DESCRIBE TABLE url('http://127.0.0.1:1/healthz','LineAsString')", "table function url() is not allowed"],
    ["SELECT * FROM remote('127.0.0.1', system.one)", "table function remote() is not allowed"],
    ["SELECT * FROM s3('http://127.0.0.1:1/b/k', 'CSV')", "table function s3() is not allowed"],
    ["SELECT * FROM executable('id', 'TSV', 'x String')", "table function executable() is not allowed"],
    ["SELECT * FROM merge('system', '.*')", "table function merge() is not allowed"],
    [`SELECT 'x' INTO/**/OUTFILE '${OUTFILE}' APPEND`, "INTO OUTFILE is not allowed"],
    [`SELECT 'x' INTO OUTFILE '${OUTFILE}' TRUNCATE`, "INTO OUTFILE is not allowed"],
    [`DESCRIBE flowmeter.query_probe INTO OUTFILE '${OUTFILE}'`, "INTO OUTFILE is not allowed"],
    ["SELECT 1 SETTINGS readonly = 0", "Cannot modify 'readonly' setting in readonly mode. (READONLY)"],
    ["SELECT 1 SETTINGS max_execution_time = 1000", "Cannot modify 'max_execution_time' setting in readonly mode. (READONLY)"],
    ["SELECT * FROM system.users", "only tables of the flowmeter database can be read"],
    ["SELECT 1 WHERE 1 IN system.users", "only tables of the flowmeter database can be read"],
    ["SHOW TABLES FROM system", "only tables of the flowmeter database can be read"],
    ["INSERT INTO flowmeter.query_probe VALUES ('x')", "only read-only statements"],
    ["CREATE TABLE flowmeter.x (a UInt8) ENGINE = Memory", "only read-only statements"],
    ["DROP TABLE flowmeter.query_probe", "only read-only statements"],
    ["TRUNCATE TABLE flowmeter.query_probe", "only read-only statements"],
    ["ALTER TABLE flowmeter.query_probe DELETE WHERE 1", "only read-only statements"],
    ["OPTIMIZE TABLE flowmeter.query_probe", "only read-only statements"],
    ["SYSTEM SHUTDOWN", "only read-only statements"],
    ["KILL QUERY WHERE 1", "only read-only statements"],
    ["SET readonly = 0", "only read-only statements"],
    ["SELECT 1; DROP TABLE flowmeter.query_probe", "Multi-statements are not allowed"],
    ["SELECT 1; SELECT file('/etc/passwd')", "Multi-statements are not allowed"],
    ["SELECT count() FROM numbers(1e11)", "Timeout exceeded"],
    ["SELECT repeat('x', 1000) FROM numbers(100000)", "the result is larger than 33554432 bytes (WORKER_QUERY_MAX_RESULT_BYTES)"],
  ];

  it.each(ATTACKS)("refuses %s", async (sql, reason) => {
    const answer = await query(sql);
    expect(answer.status).toBe(400);
    const body = JSON.parse(answer.body) as { code: string; message: string; retryable: boolean };
    expect(body.code).toBe("INVALID_PARAMS");
    expect(body.retryable).toBe(false);
    expect(body.message).toContain(reason);
  });

  it("wrote no file and lost no data to the attacks", async () => {
    expect(existsSync(OUTFILE)).toBe(false);
    expect(await query("SELECT count() FROM flowmeter.query_probe")).toMatchObject({ status: 200, body: "1" });
  });

  it("names the limit that stopped a query", async () => {
    const answer = JSON.parse((await query("SELECT count() FROM numbers(1e11)")).body) as { message: string };
    expect(answer.message).toContain("the limit is set by WORKER_QUERY_TIMEOUT_SECONDS");
  });

  it("refuses what a web page could send: a foreign Origin, a rebound Host, cross-site fetch metadata", async () => {
    const sql = `SELECT 'x' INTO OUTFILE '${OUTFILE}'`;
    const headers: Array<Record<string, string>> = [
      { origin: "http://evil.example", "content-type": "text/plain" },
      { host: "evil.example:7072" },
      { "sec-fetch-site": "cross-site" },
    ];
    for (const header of headers) {
      for (const path of ["/query", "/metrics", "/healthz"]) {
        const answer = await send(base, path, { method: path === "/query" ? "POST" : "GET", body: path === "/query" ? sql : undefined, headers: header });
        expect(answer.status, `${path} ${JSON.stringify(header)}`).toBe(403);
        expect(JSON.parse(answer.body)).toMatchObject({ code: "UNAUTHORIZED", retryable: false });
      }
    }
    expect(existsSync(OUTFILE)).toBe(false);
  });

  it("runs at most WORKER_QUERY_CONCURRENCY queries at once; the next is told to retry", async () => {
    // Just under the test's 2 s query timeout. Once both slow queries hold their slots, the next one is refused.
    const slow = [query("SELECT sleep(1.8)"), query("SELECT sleep(1.8)")];
    const third = await waitFor(
      async () => {
        const answer = await query("SELECT 1");
        return answer.status === 429 ? answer : undefined;
      },
      { what: "a query refused while two run", intervalMs: 20, timeoutMs: 1500 },
    );
    expect(third.status).toBe(429);
    expect(third.headers["retry-after"]).toBe("1");
    expect(JSON.parse(third.body)).toMatchObject({ code: "TOO_MANY_REQUESTS", retryable: true });
    expect((await Promise.all(slow)).map((answer) => answer.status)).toEqual([200, 200]);
  });

  it("returns to its memory level after large results, and refuses results beyond the limit before holding them", async () => {
    setFlagsFromString("--expose_gc");
    const gc = runInNewContext("gc") as () => void;
    // What the worker holds of answers: JS heap and buffers, after a full collection. (RSS also counts chDB's own
    // allocator and caches, which move by hundreds of MB with load and say nothing about what is held.)
    const held = (): number => {
      gc();
      const usage = process.memoryUsage();
      return usage.heapUsed + usage.arrayBuffers;
    };
    const round = async (): Promise<void> => {
      for (let i = 0; i < 3; i += 1) {
        const answer = await query("SELECT repeat('x', 100) FROM numbers(250000)");
        expect(answer.status).toBe(200);
        expect(answer.body.length).toBe(250000 * 101 - 1);
      }
      // The attack's 529 MB result, refused once 32 MB (WORKER_QUERY_MAX_RESULT_BYTES here) has been read.
      const refused = await query("SELECT repeat('x', 1000) FROM numbers(529000)");
      expect(refused.status).toBe(400);
    };
    await round();
    const level = held();
    for (let i = 0; i < 4; i += 1) await round();
    // Twelve 25 MB answers and four refused 529 MB results later, nothing of them is held: one kept answer would be 25 MB.
    expect(held() - level).toBeLessThan(8 << 20);
  });

  it("is not served when the worker listens beyond loopback", async () => {
    const answer = await send(await serve(undefined), "/query", { body: "SELECT 1" });
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.body)).toMatchObject({ code: "NOT_FOUND" });
  });
});
