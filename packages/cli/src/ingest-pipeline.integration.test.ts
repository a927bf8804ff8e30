/**
 * Nothing a client sends is lost: ingest → BullMQ → worker → ClickHouse, all real. A burst of concurrent requests
 * carrying what ClickHouse would refuse or what ingest must repair is stored whole, with its warnings; and Redis
 * SIGKILLed under steady load and restarted costs nothing: every request is answered 202 (ingest spools to disk while
 * Redis is away), and every entry answered 202 is stored exactly once, in cli_invocations and in command_stats.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, createRedis } from "@flowmeter/platform";
import { parseIngestConfig, startIngestServer, type IngestServer } from "@flowmeter/ingest";
import { createExactlyOnceState, createWorkerMetrics, parseWorkerConfig, startPartitionConsumers, type PartitionConsumers } from "@flowmeter/worker";
import * as worker from "@flowmeter/worker";
import {
  postIngest,
  freePort,
  parentEntry,
  startPrivateRedis,
  tempDir,
  waitFor,
  type PrivateRedis,
  openScratchDatabase,
  type ScratchDatabase,
} from "@flowmeter/test-utils";

const logger = createLogger("test", "error");

describe("ingest to ClickHouse, through bad entries and a Redis outage", () => {
  const data = tempDir("redis-outage");
  const prefix = "fmtest-outage";
  let redisServer: PrivateRedis;
  let database: ScratchDatabase<worker.BlockWriter>;
  let consumer: PartitionConsumers;
  let ingest: IngestServer;
  let workerRedis: ReturnType<typeof createRedis>;

  beforeAll(async () => {
    const port = await freePort();
    redisServer = await startPrivateRedis(port, data.path);
    database = await openScratchDatabase("redis-outage", worker);
    workerRedis = createRedis(redisServer.url, "worker");
    workerRedis.on("error", () => {});
    const workerConfig = { ...parseWorkerConfig({ QUEUE_PREFIX: prefix }), batch: { maxRows: 5000, maxWaitMs: 100 } };
    consumer = startPartitionConsumers(
      {
        config: workerConfig,
        redis: workerRedis,
        metrics: createWorkerMetrics(),
        logger,
        clickhouse: database.clickhouse,
        writer: database.writer,
        ...createExactlyOnceState(workerRedis, workerConfig, logger),
      },
      { ...workerConfig, horizonDays: 8 },
      logger,
    );
    ingest = await startIngestServer(
      parseIngestConfig({
        INGEST_PORT: "0",
        REDIS_URL: redisServer.url,
        QUEUE_PREFIX: prefix,
        FLOWMETER_DATA_DIR: `${data.path}/ingest`,
        INGEST_RATE_LIMIT_ENTRIES_PER_SECOND: "0",
      }),
      logger,
    );
  }, 60_000);

  afterAll(async () => {
    await ingest.stop();
    await consumer.close();
    workerRedis.disconnect();
    await redisServer.kill();
    await database.close();
    data.remove();
  });

  it("stores every entry of a concurrent burst, the repaired ones included, and leaves a warning for each repair", async () => {
    const command = `burst-${Date.now()}`;
    const entries = Array.from({ length: 40 }, () => {
      const entry = parentEntry();
      entry.properties.invocation.command = command;
      return entry;
    });
    // What the real client can send: a lone surrogate (valid JSON ClickHouse refuses), a clock two days ahead, a
    // megabyte error line.
    const surrogate = JSON.stringify(entries[3]).replace('"args":[', '"args":["\\ud800",');
    const bodies = entries.map((entry) => JSON.stringify(entry));
    bodies[3] = surrogate;
    (entries[7] as { properties: { startedAt: string } }).properties.startedAt = new Date(Date.now() + 2 * 86_400_000).toISOString();
    bodies[7] = JSON.stringify(entries[7]);
    (entries[11] as { properties: { result: { errorMessage?: string } } }).properties.result.errorMessage = "x".repeat(1_100_000);
    bodies[11] = JSON.stringify(entries[11]);
    const statuses = await Promise.all(bodies.map((body) => postIngest(ingest.port, body)));
    expect(statuses).toEqual(bodies.map(() => 202));
    await waitFor(
      async () => {
        const [row] = await database.rows<{ n: string }>(`SELECT count() AS n FROM flowmeter.cli_invocations WHERE command = '${command}'`);
        return Number(row?.n) === 40 ? true : undefined;
      },
      { timeoutMs: 30_000, what: "all 40 entries in cli_invocations" },
    );
    const repaired = await database.rows<{ insert_id: string; repairs: string[] }>(
      `SELECT insert_id, repairs FROM flowmeter.cli_invocations WHERE command = '${command}' AND notEmpty(repairs) ORDER BY insert_id`,
    );
    expect(new Map(repaired.map((row) => [row.insert_id, row.repairs]))).toEqual(
      new Map([
        [entries[3]?.insert_id, ["lone_surrogate"]],
        [entries[7]?.insert_id, ["timestamp_replaced"]],
        [entries[11]?.insert_id, ["truncated"]],
      ]),
    );
    const [args] = await database.rows<{ args: string[] }>(`SELECT args FROM flowmeter.cli_invocations WHERE insert_id = '${entries[3]?.insert_id}'`);
    expect(args?.args[0]).toBe("\uFFFD");
    const warnings = await database.rows<{ entry_id: string; reason: string }>(
      `SELECT entry_id, reason FROM flowmeter.ingestion_warnings WHERE entry_id IN ('${entries[3]?.insert_id}', '${entries[7]?.insert_id}', '${entries[11]?.insert_id}') ORDER BY reason`,
    );
    expect(warnings.map((warning) => warning.reason)).toEqual(["lone_surrogate", "timestamp_replaced", "truncated"]);
  }, 60_000);

  it("answers every request 202 and stores every entry once, in raw and in the rollup", async () => {
    const command = `outage-${Date.now()}`;
    const statuses: number[] = [];
    let sending = true;
    const sender = async (): Promise<void> => {
      while (sending) {
        const entry = parentEntry();
        entry.properties.invocation.command = command;
        statuses.push(await postIngest(ingest.port, JSON.stringify(entry)));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    const senders = [sender(), sender()];
    await waitFor(() => (statuses.length >= 100 ? true : undefined), { what: "100 requests before the outage" });
    await redisServer.kill();
    const atKill = statuses.length;
    await waitFor(() => (statuses.length >= atKill + 100 ? true : undefined), { what: "100 requests during the outage" });
    redisServer = await startPrivateRedis(redisServer.port, data.path);
    const atRestart = statuses.length;
    await waitFor(() => (statuses.length >= atRestart + 100 ? true : undefined), { timeoutMs: 30_000, what: "100 requests after the restart" });
    sending = false;
    await Promise.all(senders);

    expect(statuses.filter((status) => status !== 202)).toEqual([]);
    const acked = statuses.length;
    // Raw rows first, then the rollup: a block's raw part is visible a moment before the parts of the views under it.
    for (const [what, sql] of [
      ["cli_invocations", `SELECT count() AS n FROM flowmeter.cli_invocations FINAL WHERE command = '${command}'`],
      ["command_stats", `SELECT sum(count) AS n FROM flowmeter.command_stats WHERE command = '${command}'`],
    ] as const) {
      await waitFor(
        async () => {
          const [row] = await database.rows<{ n: string }>(sql);
          return Number(row?.n) >= acked ? true : undefined;
        },
        { timeoutMs: 60_000, what: `all ${acked} acknowledged entries in ${what}` },
      );
    }
    const [raw] = await database.rows<{ n: string }>(`SELECT count() AS n FROM flowmeter.cli_invocations WHERE command = '${command}'`);
    const [rollup] = await database.rows<{ n: string }>(`SELECT sum(count) AS n FROM flowmeter.command_stats WHERE command = '${command}'`);
    expect(Number(raw?.n)).toBe(acked);
    expect(Number(rollup?.n)).toBe(acked);
  }, 120_000);
});
