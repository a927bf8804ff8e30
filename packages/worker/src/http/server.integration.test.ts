import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { createLogger } from "@flowmeter/shared";
import { insertJsonRows } from "../clickhouse/insert-json-rows.js";
import { openScratchDatabase, type ScratchDatabase } from "../clickhouse/scratch-database.js";
import { createWorkerHttpServer } from "./server.js";

describe("worker /query", () => {
  let database: ScratchDatabase;
  const servers: Server[] = [];

  async function serve(queryEnabled: boolean): Promise<string> {
    const server = createWorkerHttpServer({
      registry: new Registry(),
      clickhouse: database.clickhouse,
      logger: createLogger("test", "error", () => {}),
      beforeScrape: async () => {},
      isHealthy: async () => true,
      queryEnabled,
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async function query(base: string, sql: string): Promise<{ status: number; body: string }> {
    const response = await fetch(`${base}/query?format=TabSeparated`, { method: "POST", body: sql });
    return { status: response.status, body: (await response.text()).trim() };
  }

  beforeAll(async () => {
    database = await openScratchDatabase("worker-query");
    await database.clickhouse.command({ query: "CREATE TABLE flowmeter.query_probe (id String) ENGINE = MergeTree ORDER BY id" });
  });
  afterAll(async () => {
    for (const server of servers) server.close();
    await database.close();
  });

  it("answers read-only statements, and later inserts still land (readonly does not stick to the chDB session)", async () => {
    const base = await serve(true);
    expect(await query(base, "SELECT count() FROM flowmeter.query_probe")).toEqual({ status: 200, body: "0" });
    expect(await query(base, "SHOW TABLES FROM flowmeter LIKE 'query_probe'")).toEqual({ status: 200, body: "query_probe" });
    await insertJsonRows(database.clickhouse, "flowmeter.query_probe", ["id"], [{ id: "a" }]);
    expect(await query(base, "SELECT id FROM flowmeter.query_probe")).toEqual({ status: 200, body: "a" });
  });

  it("refuses writes, table functions that reach files or the network, INTO OUTFILE and several statements", async () => {
    const base = await serve(true);
    for (const sql of [
      "INSERT INTO flowmeter.query_probe VALUES ('x')",
      "SELECT * FROM file('/etc/hostname', 'LineAsString')",
      "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
      "SELECT 1 INTO OUTFILE '/tmp/flowmeter-query-probe.txt'",
      "SELECT 1; DROP TABLE flowmeter.query_probe",
    ]) {
      const answer = await query(base, sql);
      expect(answer.status, sql).toBe(400);
      expect(JSON.parse(answer.body)).toMatchObject({ code: "INVALID_PARAMS", retryable: false });
    }
    expect(await query(base, "SELECT count() FROM flowmeter.query_probe")).toEqual({ status: 200, body: "1" });
  });

  it("is not served when the worker listens beyond loopback", async () => {
    const answer = await query(await serve(false), "SELECT 1");
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.body)).toMatchObject({ code: "NOT_FOUND" });
  });
});
