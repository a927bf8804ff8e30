/**
 * ClickHouse away for longer than the old retry budget (12 attempts): the job keeps retrying with capped backoff and
 * its entries are stored once ClickHouse is back. "Away" is a real client pointed at a port nothing listens on;
 * the backoff cap is 50 ms here so the test sees more than 12 attempts in a second. And an insert that fails for a
 * reason of ClickHouse's (not a row's) never sets rows aside as dead letters, even while the warnings table takes
 * inserts (ClickHouse coming back in the middle of a job).
 */
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { Queue } from "bullmq";
import { createLogger, createRedis } from "@flowmeter/platform";
import { JOB_CATALOG, type ClientTelemetryJob } from "@flowmeter/shared";
import { deleteQueuePrefix, openScratchDatabase, parentEntry, type ScratchDatabase, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertBlockThroughClient, type BlockWriter } from "../clickhouse/block-writer.js";
import * as worker from "../index.js";
import { parseWorkerConfig } from "../config.js";
import { createWorkerMetrics } from "../metrics.js";
import { createExactlyOnceState } from "./insert-once.js";
import { startPartitionConsumers, type PartitionConsumers } from "./partition-consumers.js";

describe("ClickHouse unavailable, then back", () => {
  const prefix = testQueuePrefix("clickhouse-outage");
  const redis = createRedis(testRedisUrl(), "worker");
  const unreachable = createClient({ url: "http://127.0.0.1:1", request_timeout: 1000, log: { level: ClickHouseLogLevel.OFF } });
  let available = true;
  /** While set, inserts into cli_invocations alone fail as a refused connection would. */
  let rawTableDown = false;
  let refusedInserts = 0;
  let database: ScratchDatabase<BlockWriter>;
  let consumer: PartitionConsumers;
  let queue: Queue<ClientTelemetryJob>;

  beforeAll(async () => {
    database = await openScratchDatabase("clickhouse-outage", worker);
    const real = database.clickhouse;
    // Every call goes to the unreachable server until `available`, then to chDB.
    const clickhouse = new Proxy(real, { get: (_target, name) => Reflect.get(available ? real : unreachable, name) as unknown });
    const logger = createLogger("test", "error", () => {});
    const config = { ...parseWorkerConfig({ QUEUE_PREFIX: prefix, WORKER_RETRY_MAX_DELAY_MS: "50" }), batch: { maxRows: 5000, maxWaitMs: 20 } };
    const writer: BlockWriter = {
      insert: (block) => {
        if (rawTableDown && block.table === "flowmeter.cli_invocations") {
          refusedInserts += 1;
          return Promise.reject(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8123"), { code: "ECONNREFUSED" }));
        }
        return available ? database.writer.insert(block) : insertBlockThroughClient(unreachable, block);
      },
      close: async () => undefined,
    };
    consumer = startPartitionConsumers(
      {
        config,
        redis,
        clickhouse,
        writer,
        ...createExactlyOnceState(redis, config, logger),
        metrics: createWorkerMetrics(),
        logger,
      },
      { ...config, horizonDays: 8 },
      logger,
    );
    queue = new Queue(JOB_CATALOG.clientTelemetry.queue, { connection: redis, prefix });
    // ClickHouse goes away once the partition is taken over (taking over reads the stored ids).
    await waitFor(async () => (consumer.held().length === 1 ? true : undefined), { what: "partition 0 taken over" });
    available = false;
  });

  afterAll(async () => {
    await consumer.close();
    await queue.close();
    redis.disconnect();
    await unreachable.close();
    await database.close();
    await deleteQueuePrefix(prefix);
  });

  it("retries past 12 attempts and stores every entry once ClickHouse answers", async () => {
    const entries = [parentEntry(), parentEntry()];
    const job = await queue.add(JOB_CATALOG.clientTelemetry.jobName, { entries, receivedAtMs: Date.now() }, JOB_CATALOG.clientTelemetry.options);
    await waitFor(async () => (((await queue.getJob(job.id ?? ""))?.attemptsMade ?? 0) > 12 ? true : undefined), {
      timeoutMs: 30_000,
      what: "more than 12 failed attempts",
    });
    expect((await queue.getFailed()).map((failed) => failed.failedReason)).toEqual([]);
    available = true;
    await waitFor(async () => ((await queue.getJobState(job.id ?? "")) === "unknown" ? true : undefined), {
      timeoutMs: 30_000,
      what: "the job written and removed",
    });
    const [row] = await database.rows<{ n: string }>(
      `SELECT count() AS n FROM flowmeter.cli_invocations WHERE insert_id IN ('${entries.map((entry) => entry.insert_id).join("','")}')`,
    );
    expect(Number(row?.n)).toBe(2);
  });

  it("retries a job whose rows fail for ClickHouse's reasons, never dead-lettering them while the warnings table takes inserts", async () => {
    available = true;
    rawTableDown = true;
    const entries = [parentEntry(), parentEntry()];
    const job = await queue.add(JOB_CATALOG.clientTelemetry.jobName, { entries, receivedAtMs: Date.now() }, JOB_CATALOG.clientTelemetry.options);
    await waitFor(async () => (((await queue.getJob(job.id ?? ""))?.attemptsMade ?? 0) > 3 ? true : undefined), { what: "a few failed attempts" });
    rawTableDown = false;
    await waitFor(async () => ((await queue.getJobState(job.id ?? "")) === "unknown" ? true : undefined), { what: "the job written and removed" });
    const ids = `'${entries.map((entry) => entry.insert_id).join("','")}'`;
    const [stored] = await database.rows<{ n: string }>(`SELECT count() AS n FROM flowmeter.cli_invocations WHERE insert_id IN (${ids})`);
    const [dead] = await database.rows<{ n: string }>(`SELECT count() AS n FROM flowmeter.ingestion_warnings WHERE entry_id IN (${ids})`);
    expect([Number(stored?.n), Number(dead?.n)]).toEqual([2, 0]);
    expect(refusedInserts).toBeGreaterThan(3);
  });
});
