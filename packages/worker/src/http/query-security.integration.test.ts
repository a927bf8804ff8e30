/**
 * The security corpus of /query: every attack found against it (and variants), each refused with a clear error, and
 * the limits that keep a heavy query from costing the worker its memory, its event loop or its inserts. Against real
 * chDB.
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

const LIMITS: QueryLimits = { timeoutSeconds: 2, maxMemoryBytes: 512 << 20, maxResultRows: 1_000_000, maxResultBytes: 4 << 20, concurrency: 2, maxThreads: 1 };
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
      unhealthyBecause: async () => ((await database.clickhouse.ping()).success ? undefined : "ClickHouse is not reachable"),
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
    expect(await query("SHOW TABLES FROM flowmeter LIKE 'query_probe' FORMAT TSV")).toMatchObject({ status: 200, body: "query_probe" });
    expect(await query("EXPLAIN SYNTAX SELECT id FROM query_probe")).toMatchObject({ status: 200 });
  });

  it("answers what a dashboard asks: aggregates with combinators, windows, dates, strings, conditionals, readable aliases", async () => {
    const dashboard = `
      SELECT toStartOfInterval(toDateTime('2025-01-01 00:00:30'), INTERVAL 60 second) AS \`minute start\`,
             countIf(id != '') AS n, uniqExactIf(id, id = 'a') AS u, argMax(id, length(id)) AS longest,
             multiIf(n > 1, 'many', n = 1, 'one', 'none') AS how, greatest(toInt64(n), 0) AS g,
             concat(upper(any(id)), '-', formatDateTime(toDate('2025-01-02'), '%Y')) AS label,
             arrayStringConcat(arrayMap(x -> toString(x * 2), [1, 2]), ',') AS doubled, round(avg(length(id)) * 1.5, 1) AS r
      FROM flowmeter.query_probe GROUP BY \`minute start\` ORDER BY \`minute start\` FORMAT JSONEachRow`;
    const answer = await query(dashboard, "TSV");
    expect(answer.status, answer.body).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({
      "minute start": "2025-01-01 00:00:00",
      n: 1,
      u: 1,
      longest: "a",
      how: "one",
      g: 1,
      label: "A-2025",
      doubled: "2,4",
      r: 1.5,
    });
    const window = await query("SELECT id, lagInFrame(id) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS previous FROM query_probe");
    expect(window).toMatchObject({ status: 200, body: "a" });
    expect(await query("SELECT count() FROM numbers(3) WHERE number IN (SELECT generate_series FROM generate_series(1, 2))")).toMatchObject({
      status: 200,
      body: "2",
    });
    expect(await query("SELECT * FROM values('a UInt8', 7)")).toMatchObject({ status: 200, body: "7" });
  });

  it("prints pretty output without terminal colour codes", async () => {
    const answer = await query("SELECT id FROM query_probe", "PrettyCompact");
    expect(answer.status).toBe(200);
    expect(answer.body).not.toContain("\u001b[");
    expect(answer.body).toContain("│ a  │");
  });

  const ATTACKS: Array<[string, string]> = [
    ["SELECT file('/etc/passwd')", "function file() is not allowed"],
    ["SELECT FILE('/etc/passwd')", "function FILE() is not allowed"],
    ["SELECT arrayMap(x -> file(x), ['/etc/passwd'])", "function file() is not allowed"],
    ["SELECT * FROM (SELECT * FROM file('/etc/passwd','LineAsString') SETTINGS readonly=0)", "SETTINGS clauses are not allowed"],
    ["SELECT * FROM (SELECT * FROM url('http://127.0.0.1:1/healthz','LineAsString') SETTINGS readonly=0)", "SETTINGS clauses are not allowed"],
    ["SELECT * FROM (SELECT * FROM file('/etc/passwd','LineAsString'))", "table function file() is not allowed"],
    ["SELECT * FROM (SELECT * FROM flowmeter.query_probe SETTINGS readonly=0)", "SETTINGS clauses are not allowed"],
    ["SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function file() is not allowed"],
    ["SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')", "table function url() is not allowed"],
    ["DESCRIBE TABLE url('http://127.0.0.1:1/healthz','LineAsString')", "table function url() is not allowed"],
    ["SELECT * FROM remote('127.0.0.1', system.one)", "only tables of the flowmeter database can be read"],
    ["SELECT * FROM remote('127.0.0.1', flowmeter.query_probe)", "table function remote() is not allowed"],
    ["SELECT * FROM s3('http://127.0.0.1:1/b/k', 'CSV')", "table function s3() is not allowed"],
    ["SELECT * FROM executable('id', 'TSV', 'x String')", "table function executable() is not allowed"],
    ["SELECT * FROM merge('system', '.*')", "table function merge() is not allowed"],
    [`SELECT 'x' INTO/**/OUTFILE '${OUTFILE}' APPEND`, "INTO OUTFILE is not allowed"],
    [`SELECT 'x' INTO OUTFILE '${OUTFILE}' TRUNCATE`, "INTO OUTFILE is not allowed"],
    [`DESCRIBE flowmeter.query_probe INTO OUTFILE '${OUTFILE}'`, "INTO OUTFILE is not allowed"],
    ["SELECT 1 SETTINGS max_execution_time = 1000", "SETTINGS clauses are not allowed"],
    ["SELECT * FROM system.users", "only tables of the flowmeter database can be read"],
    ["SELECT 1 WHERE 1 IN system.users", "only tables of the flowmeter database can be read"],
    ["SHOW TABLES FROM system", "only tables of the flowmeter database can be read"],
    ["SELECT 1 SETTINGS readonly = 0", "SETTINGS clauses are not allowed"],
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
    // Issue 20: a line break in a back-quoted alias split EXPLAIN AST's line and hid file(); every quoting of it.
    ["SELECT file('/etc/hostname') AS `x\n        y`", "quoted names with escapes"],
    ["SELECT file('/etc/hostname') AS \"x\n y\"", "quoted names with escapes"],
    ["SELECT file('/etc/hostname') AS `x\r y`", "quoted names with escapes"],
    ["SELECT file('/etc/hostname') AS `x\ty`", "quoted names with escapes"],
    ["SELECT file('/etc/hostname') AS `x\\n y`", "quoted names with escapes"],
    ["SELECT file('/etc/hostname') AS `x\\x0A y`", "quoted names with escapes"],
    ["SELECT file('/etc/hostname') AS `x\u2028y`", "quoted names may hold"],
    ["SELECT file('/etc/hostname') AS `a) (children 1`", "quoted names may hold"],
    ["SELECT file('/etc/hostname') AS `a.b`", "quoted names may hold"],
    ["SELECT file('/etc/hostname') AS `é`", "quoted names may hold"],
    ["SELECT 1 AS `x\n Function file`, file('/etc/hostname')", "quoted names with escapes"],
    ["SELECT url('http://127.0.0.1:1/') AS `x\n y`", "quoted names with escapes"],
    ["SELECT dictHas('d', 1) AS `x\n y`", "quoted names with escapes"],
    // Functions outside the allow-list, however they are written.
    ["SELECT file('/etc/hostname')", "function file() is not allowed"],
    ["SELECT `file`('/etc/hostname')", "function file() is not allowed"],
    ["SELECT file/* x */('/etc/hostname')", "function file() is not allowed"],
    ["SELECT file -- x\n('/etc/hostname')", "function file() is not allowed"],
    ["SELECT \"file\"('/etc/hostname')", "function file() is not allowed"],
    ["WITH file('/etc/hostname') AS h SELECT h", "function file() is not allowed"],
    ["SELECT * FROM (SELECT (SELECT file('/etc/hostname')) AS h)", "function file() is not allowed"],
    ["SELECT * APPLY(file) FROM (SELECT '/etc/hostname' AS p)", "cannot check this statement"],
    ["SELECT url('http://127.0.0.1:1/')", "function url() is not allowed"],
    ["SELECT catboostEvaluate('/tmp/m.bin', 1)", "function catboostEvaluate() is not allowed"],
    ["SELECT dictHas('d', 1)", "function dictHas() is not allowed"],
    ["SELECT dictGetString('d', 'a', 1)", "function dictGetString() is not allowed"],
    ["SELECT joinGet('flowmeter.query_probe', 'id', 1)", "function joinGet() is not allowed"],
    ["SELECT nullIn(0, query_probe)", "function nullIn() is not allowed"],
    ["SELECT notNullIn('a', flowmeter.query_probe)", "function notNullIn() is not allowed"],
    ["SELECT globalNullIn('a', query_probe)", "function globalNullIn() is not allowed"],
    ["SELECT globalNotNullIn('a', query_probe)", "function globalNotNullIn() is not allowed"],
    ["SELECT getServerSetting('path')", "function getServerSetting() is not allowed"],
    ["SELECT getSetting('max_execution_time')", "function getSetting() is not allowed"],
    ["SELECT hasColumnInTable('system', 'users', 'name')", "function hasColumnInTable() is not allowed"],
    ["SELECT hostName(), currentUser()", "function hostName() is not allowed"],
    ["SELECT addressToLine(toUInt64(1))", "function addressToLine() is not allowed"],
    ["SELECT regionToName(toUInt32(1))", "function regionToName() is not allowed"],
    ["SELECT aiGenerate('hello')", "function aiGenerate() is not allowed"],
    ["SELECT filesystemAvailable()", "function filesystemAvailable() is not allowed"],
    [`SELECT ${Array.from({ length: 14 }, () => "editDistance(repeat('a',65535),repeat('b',65535))").join(" + ")}`, "function editDistance() is not allowed"],
    ["SELECT levenshteinDistance('a', 'b')", "function levenshteinDistance() is not allowed"],
    // Other databases, wherever a table can be named.
    ["SELECT nullIn(0, system.one)", "only tables of the flowmeter database can be read"],
    ["SELECT * FROM INFORMATION_SCHEMA.TABLES", "only tables of the flowmeter database can be read"],
    ["SELECT * FROM `system`.`one`", "only tables of the flowmeter database can be read"],
    ["SELECT * FROM (SELECT * FROM (SELECT * FROM system.one))", "only tables of the flowmeter database can be read"],
    ["WITH (SELECT count() FROM system.tables) AS n SELECT n", "only tables of the flowmeter database can be read"],
    ["WITH x AS (SELECT * FROM system.users) SELECT * FROM x", "only tables of the flowmeter database can be read"],
    ["SELECT 1 WHERE 1 IN (SELECT dummy FROM system.one)", "only tables of the flowmeter database can be read"],
    ["SELECT * FROM query_probe AS a JOIN default.x AS b ON 1", "only tables of the flowmeter database can be read"],
    ["DESCRIBE TABLE system.users", "only tables of the flowmeter database can be read"],
    ["EXISTS TABLE system.users", "only tables of the flowmeter database can be read"],
    ["SELECT * FROM view(SELECT * FROM system.one)", "only tables of the flowmeter database can be read"],
    // Table functions beyond the generators (zeros() needs readonly = 0).
    ["SELECT * FROM zeros(3)", "table function zeros() is not allowed"],
    ["SELECT * FROM view(SELECT 1)", "table function view() is not allowed"],
    ["SELECT * FROM input('a UInt8')", "table function input() is not allowed"],
    ["SELECT * FROM mergeTreeIndex(flowmeter, query_probe)", "table function mergeTreeIndex() is not allowed"],
    ["SELECT * FROM `file`('/etc/hostname', 'LineAsString')", "table function file() is not allowed"],
    // SHOW is SHOW TABLES of flowmeter.
    ["SHOW DATABASES", "SHOW is limited to SHOW TABLES"],
    ["SHOW CHANGED SETTINGS ILIKE '%'", "SHOW is limited to SHOW TABLES"],
    ["SHOW CLUSTERS", "SHOW is limited to SHOW TABLES"],
    ["SHOW MERGES", "SHOW is limited to SHOW TABLES"],
    ["SHOW PROCESSLIST", "SHOW is limited to SHOW TABLES"],
    ["SHOW CREATE TABLE query_probe", "SHOW is limited to SHOW TABLES"],
    ["SHOW TABLES FROM INFORMATION_SCHEMA", "only tables of the flowmeter database can be read"],
    // What the formatted text never holds.
    ["SELECT {p:String}", "does not accept outside quotes"],
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

  it("returns to its memory level after large answers and refused ones", async () => {
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
      for (let i = 0; i < 2; i += 1) {
        const answer = await query("SELECT repeat('x', 100) FROM numbers(35000)");
        expect(answer.status).toBe(200);
        expect(answer.body.length).toBe(35000 * 101 - 1);
      }
      // Beyond WORKER_QUERY_MAX_RESULT_BYTES (4 MiB here): refused once the engine has produced it.
      const refused = await query("SELECT repeat('x', 1000) FROM numbers(5000)");
      expect(refused.status).toBe(400);
      expect(refused.body).toContain("WORKER_QUERY_MAX_RESULT_BYTES");
    };
    await round();
    const level = held();
    for (let i = 0; i < 8; i += 1) await round();
    // Sixteen 3.5 MB answers and eight refused 5 MB results later, nothing of them is held: one kept answer would be 3.5 MB.
    expect(held() - level).toBeLessThan(3 << 20);
  });

  it("keeps /healthz and the inserts at their normal pace while a heavy statement runs", async () => {
    const heavyEngine = await createEmbeddedQueryEngine(`${database.dir}/clickhouse`, { ...LIMITS, timeoutSeconds: 6 });
    const heavyBase = await serve(heavyEngine);
    /** Milliseconds from writing an entry (the worker's insert path) to reading it back. */
    const freshness = async (id: string): Promise<number> => {
      const started = performance.now();
      await database.writer.insert(toBlock("flowmeter.query_probe", ["id"], [{ id }]));
      await waitFor(
        async () =>
          Number((await database.rows<{ n: string }>(`SELECT count() AS n FROM flowmeter.query_probe WHERE id = '${id}'`))[0]?.n) === 1 ? true : undefined,
        {
          what: `entry ${id} visible`,
          intervalMs: 20,
          timeoutMs: 20_000,
        },
      );
      return performance.now() - started;
    };
    try {
      const baselineMs = await freshness("before-heavy");
      const started = performance.now();
      // CPU-bound until the engine's own limit (6 s); through chDB's queryStream it held the event loop throughout.
      const heavy = send(heavyBase, "/query?format=TSV", { body: "SELECT count() FROM numbers(1e12) WHERE cityHash64(number) % 7 = 1" });
      let heavyDone = false;
      void heavy.finally(() => {
        heavyDone = true;
      });
      let worstHealthzMs = 0;
      let probes = 0;
      const probing = (async () => {
        while (!heavyDone) {
          const probeStarted = performance.now();
          expect((await send(base, "/healthz", { method: "GET" })).status).toBe(200);
          worstHealthzMs = Math.max(worstHealthzMs, performance.now() - probeStarted);
          probes += 1;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const duringMs = await freshness("during-heavy");
      const answer = await heavy;
      await probing;
      const heavyMs = performance.now() - started;
      expect(heavyDone).toBe(true);
      // The heavy statement ran its course and was stopped at its limit...
      expect(answer.status).toBe(400);
      expect(answer.body).toContain("Timeout exceeded");
      expect(heavyMs).toBeGreaterThan(4000);
      expect(heavyMs).toBeLessThan(9000);
      // ...while the entry written during it was visible about as fast as before, and /healthz kept answering.
      expect(duringMs).toBeLessThan(Math.max(3000, baselineMs * 5));
      expect(probes).toBeGreaterThan(10);
      expect(worstHealthzMs).toBeLessThan(1000);
    } finally {
      await heavyEngine.close();
    }
  });

  it("is not served when the worker listens beyond loopback", async () => {
    const answer = await send(await serve(undefined), "/query", { body: "SELECT 1" });
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.body)).toMatchObject({ code: "NOT_FOUND" });
  });
});
