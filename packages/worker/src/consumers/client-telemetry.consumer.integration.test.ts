import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { createLogger, createRedis, uuidV7 } from "@flowmeter/platform";
import {
  JOB_CATALOG,
  REPAIRS_KEY,
  type CliInvocationEvent,
  type ClientTelemetryJob,
  type IngestionWarning,
  toClickHouseTime,
  rowLine,
} from "@flowmeter/shared";
import {
  childEntry,
  deleteQueuePrefix,
  legacyEntry,
  openScratchDatabase,
  parentEntry,
  type ScratchDatabase,
  testQueuePrefix,
  testRedisUrl,
  waitFor,
} from "@flowmeter/test-utils";
import * as worker from "../index.js";
import { parseWorkerConfig } from "../config.js";
import { createWorkerMetrics } from "../metrics.js";
import { createExactlyOnceState } from "./insert-once.js";
import { startPartitionConsumers, type PartitionConsumers } from "./partition-consumers.js";
import { partitionJournal, partitionWriteOf } from "./partition-writer.js";

const logger = createLogger("test", "error");

describe("client telemetry consumer (real Redis, chDB)", () => {
  const prefix = testQueuePrefix("consumer");
  const redis = createRedis(testRedisUrl(), "worker");
  const metrics = createWorkerMetrics();
  let database: ScratchDatabase<worker.BlockWriter>;
  let consumer: PartitionConsumers;
  let queue: Queue<ClientTelemetryJob>;

  beforeAll(async () => {
    database = await openScratchDatabase("consumer", worker);
    const { clickhouse } = database;
    const config = { ...parseWorkerConfig({ QUEUE_PREFIX: prefix }), batch: { maxRows: 5000, maxWaitMs: 100 } };
    consumer = startPartitionConsumers(
      {
        config,
        redis,
        clickhouse,
        writer: database.writer,
        ...createExactlyOnceState(redis, config, logger),
        metrics,
        logger,
      },
      { ...config, horizonDays: 8 },
      logger,
    );
    queue = new Queue(JOB_CATALOG.clientTelemetry.queue, { connection: redis, prefix });
  });

  afterAll(async () => {
    await consumer.close();
    await queue.close();
    redis.disconnect();
    await database.close();
    await deleteQueuePrefix(prefix);
  });

  const rows = <T>(query: string) => database.rows<T>(query);

  async function enqueue(entries: CliInvocationEvent[], warnings?: IngestionWarning[]): Promise<void> {
    const data: ClientTelemetryJob = warnings === undefined ? { entries, receivedAtMs: Date.now() } : { entries, receivedAtMs: Date.now(), warnings };
    const job = await queue.add(JOB_CATALOG.clientTelemetry.jobName, data, JOB_CATALOG.clientTelemetry.options);
    await waitFor(async () => ((await queue.getJobState(job.id ?? "")) === "unknown" ? true : undefined), { what: `job ${job.id} written and removed` });
  }

  async function countRaw(where: string): Promise<number> {
    const [row] = await rows<{ n: string }>(`SELECT count() AS n FROM flowmeter.cli_invocations WHERE ${where}`);
    return Number(row?.n);
  }

  it("stores a repaired entry with its repairs and the client's time, and its warnings once, also when delivered twice", async () => {
    const sent = parentEntry({ startedAt: new Date(Date.now() + 2 * 86_400_000) });
    const receivedAtMs = Date.now();
    // The entry as ingest's repair leaves it: both timestamps ahead, so it completed at the receive time, the client's kept.
    const repaired = {
      event: {
        ...sent,
        properties: {
          ...sent.properties,
          startedAt: new Date(receivedAtMs - sent.properties.durationMs).toISOString(),
          completedAt: new Date(receivedAtMs).toISOString(),
        },
        [REPAIRS_KEY]: { repairs: ["timestamp_replaced"], clientStartedAt: sent.properties.startedAt, clientCompletedAt: sent.properties.completedAt },
      } satisfies CliInvocationEvent,
    };
    const warning: IngestionWarning = {
      warning_id: uuidV7(),
      received_at_ms: receivedAtMs,
      reason: "timestamp_replaced",
      entry_id: sent.insert_id ?? "",
      distinct_id: sent.distinct_id,
      source: "127.0.0.1",
      detail: "properties.startedAt and properties.completedAt lie ahead of the receive time: replaced",
      excerpt: JSON.stringify(sent).slice(0, 1024),
    };
    const refused: IngestionWarning = {
      ...warning,
      warning_id: uuidV7(),
      reason: "rejected",
      entry_id: "",
      detail: "entry is not a JSON object",
      excerpt: '"text"',
    };
    await enqueue([repaired.event], [warning, refused]);
    await enqueue([repaired.event], [warning, refused]);

    const stored = await rows<{ repairs: string[]; client_started_at: string; extra: string; started_at: string }>(
      `SELECT repairs, client_started_at, extra, toString(started_at) AS started_at FROM flowmeter.cli_invocations WHERE insert_id = '${sent.insert_id}'`,
    );
    expect(stored).toEqual([
      // Both timestamps were ahead: it completed at the receive time and started durationMs before.
      {
        repairs: ["timestamp_replaced"],
        client_started_at: sent.properties.startedAt,
        extra: "{}",
        started_at: toClickHouseTime(receivedAtMs - sent.properties.durationMs),
      },
    ]);
    const warnings = await rows<{ reason: string; entry_id: string; source: string; detail: string }>(
      `SELECT reason, entry_id, source, detail FROM flowmeter.ingestion_warnings WHERE warning_id IN ('${warning.warning_id}', '${refused.warning_id}') ORDER BY reason`,
    );
    expect(warnings).toEqual([
      { reason: "rejected", entry_id: "", source: "127.0.0.1", detail: "entry is not a JSON object" },
      { reason: "timestamp_replaced", entry_id: sent.insert_id, source: "127.0.0.1", detail: warning.detail },
    ]);
  });

  it("writes a job that holds only warnings", async () => {
    const refused: IngestionWarning = {
      warning_id: uuidV7(),
      received_at_ms: Date.now(),
      reason: "rejected",
      entry_id: "",
      distinct_id: "",
      source: "::1",
      detail: "entry is not a JSON object",
      excerpt: "42",
    };
    await enqueue([], [refused]);
    const [row] = await rows<{ n: string }>(`SELECT count() AS n FROM flowmeter.ingestion_warnings WHERE warning_id = '${refused.warning_id}'`);
    expect(Number(row?.n)).toBe(1);
  });

  it("stores parent, children (executor and driver) and legacy entries, unknown fields kept", async () => {
    const workflow = `wf-${randomUUID()}`;
    const parent = parentEntry();
    const child = childEntry(parent.properties.id, { workflowName: workflow, driver: "loopback" });
    const oldChild = childEntry(parent.properties.id, { workflowName: workflow, driverKey: "driver", driver: "local", status: "success" });
    const legacy = legacyEntry();
    const withExtras = parentEntry();
    withExtras.properties["datastoreType"] = "s3";
    withExtras.properties.result["retryHint"] = "later";
    withExtras["sent_by"] = "proxy";
    await enqueue([parent, child, oldChild, legacy, withExtras]);

    const stored = await rows<{ insert_id: string; is_child: boolean; driver: string; workflow_name: string; extra: string; parent_invocation_id: string }>(
      `SELECT insert_id, is_child, driver, workflow_name, extra, parent_invocation_id FROM flowmeter.cli_invocations
       WHERE insert_id IN ('${[parent, child, oldChild, withExtras].map((e) => e.insert_id).join("','")}', '${legacy.properties.id}')`,
    );
    const byId = new Map(stored.map((row) => [row.insert_id, row]));
    expect(byId.size).toBe(5);
    expect(byId.get(child.insert_id ?? "")).toMatchObject({
      is_child: true,
      driver: "loopback",
      workflow_name: workflow,
      parent_invocation_id: parent.properties.id,
    });
    expect(byId.get(oldChild.insert_id ?? "")).toMatchObject({ driver: "local" });
    expect(byId.get(parent.insert_id ?? "")).toMatchObject({ is_child: false, driver: "" });
    expect(byId.has(legacy.properties.id)).toBe(true);
    expect(JSON.parse(byId.get(withExtras.insert_id ?? "")?.extra ?? "")).toEqual({
      sent_by: "proxy",
      properties: { datastoreType: "s3", result: { retryHint: "later" } },
    });

    const drivers = await rows<{ driver: string; status: string; count: string }>(
      `SELECT driver, status, count FROM flowmeter.stage_stats WHERE workflow = '${workflow}' ORDER BY driver`,
    );
    expect(drivers.map((row) => [row.driver, row.status, Number(row.count)])).toEqual([
      ["local", "succeeded", 1],
      ["loopback", "failed", 1],
    ]);
  });

  it("writes a re-sent entry, a job delivered twice and a duplicate within a batch once, in raw and rollups", async () => {
    const command = `cmd-${randomUUID()}`;
    const workflow = `wf-${randomUUID()}`;
    const parent = parentEntry();
    parent.properties.invocation.command = command;
    const children = Array.from({ length: 20 }, (_, index) => {
      const child = childEntry(parent.properties.id, {
        workflowName: workflow,
        driver: workflow,
        stepName: `step-${index % 3}`,
        status: index % 4 === 0 ? "error" : "success",
        durationMs: 100 + index,
      });
      child.properties.invocation.command = command;
      return child;
    });
    const batch = [parent, ...children];
    await enqueue([...batch, children[0] as CliInvocationEvent]);
    await enqueue(batch);
    await enqueue(children.slice(5, 10));

    expect(await countRaw(`command = '${command}'`)).toBe(21);
    const [rollup] = await rows<{ n: string }>(`SELECT sum(count) AS n FROM flowmeter.command_stats WHERE command = '${command}'`);
    expect(Number(rollup?.n)).toBe(21);

    // Rollup counts equal a GROUP BY over the raw rows, group by group (client words mapped to the outcome vocabulary).
    const fromRaw = await rows<{ stage: string; status: string; n: string }>(
      `SELECT step_name AS stage, if(status = 'success', 'succeeded', 'failed') AS status, count() AS n FROM flowmeter.cli_invocations WHERE workflow_name = '${workflow}' GROUP BY stage, status ORDER BY stage, status`,
    );
    const fromRollup = await rows<{ stage: string; status: string; n: string }>(
      `SELECT stage, status, sum(count) AS n FROM flowmeter.stage_stats WHERE workflow = '${workflow}' GROUP BY stage, status ORDER BY stage, status`,
    );
    expect(fromRollup).toEqual(fromRaw);
    const driverRaw = await rows<{ n: string }>(`SELECT count() AS n FROM flowmeter.cli_invocations WHERE workflow_name = '${workflow}' AND is_child`);
    const driverRollup = await rows<{ n: string }>(`SELECT sum(count) AS n FROM flowmeter.driver_stats WHERE source = 'client' AND driver = '${workflow}'`);
    expect(Number(driverRaw[0]?.n)).toBe(20);
    expect(Number(driverRollup[0]?.n)).toBe(20);
  });

  it("a batch already written before its worker died is not written again when its jobs come back", async () => {
    const command = `crash-${randomUUID()}`;
    const entries = Array.from({ length: 50 }, () => {
      const entry = parentEntry();
      entry.properties.invocation.command = command;
      return entry;
    });
    // The first delivery wrote its rows, but the worker died before it wrote their ids and acknowledged the jobs:
    // what it left is its journal and the rows' block; the same entries then come back as the retried jobs.
    const write = partitionWriteOf(
      entries.slice(0, 30).map((entry) => ({ insertId: entry.insert_id ?? "", line: rowLine(entry, toClickHouseTime(Date.now())) })),
      Date.now(),
    );
    await partitionJournal(redis, prefix, 0).record(write);
    await database.writer.insert(write.rows);
    await enqueue(entries);
    expect(await countRaw(`command = '${command}'`)).toBe(50);
    const [rollup] = await rows<{ n: string }>(`SELECT sum(count) AS n FROM flowmeter.command_stats WHERE command = '${command}'`);
    expect(Number(rollup?.n)).toBe(50);
  });

  it("quantiles in the rollup follow the raw durations", async () => {
    const command = `q-${randomUUID()}`;
    // One minute for all, start and end: entries across a minute boundary would fall in two rollup rows. 10 s into
    // the current minute, so start + duration (at most 1 s) stays in it.
    const startedAt = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 10_000);
    const entries = Array.from({ length: 101 }, (_, index) => {
      const entry = parentEntry({ durationMs: index * 10, startedAt });
      entry.properties.invocation.command = command;
      return entry;
    });
    await enqueue(entries);
    const [stats] = await rows<{ p50_ms: number; p99_ms: number; count: string }>(
      `SELECT sum(count) AS count, max(p50_ms) AS p50_ms, max(p99_ms) AS p99_ms FROM flowmeter.command_stats WHERE command = '${command}'`,
    );
    expect(Number(stats?.count)).toBe(101);
    expect(stats?.p50_ms).toBeGreaterThan(450);
    expect(stats?.p50_ms).toBeLessThan(550);
    expect(stats?.p99_ms).toBeGreaterThan(950);
  });

  it("a row ClickHouse refuses costs no other row its place: the rest of its job and of its batch are written, it is dead-lettered", async () => {
    const command = `poison-${randomUUID()}`;
    const good = [parentEntry(), parentEntry(), parentEntry(), parentEntry()].map((entry) => {
      entry.properties.invocation.command = command;
      return entry;
    });
    const poison = parentEntry();
    // Only a producer that skipped ingest's repair could send this; the worker must survive it.
    poison.properties.startedAt = "2026-13-45T25:61:61.000Z";
    const jobs = await Promise.all(
      [[good[0]], [good[1], poison, good[2]], [good[3]]].map((entries) =>
        queue.add(
          JOB_CATALOG.clientTelemetry.jobName,
          { entries: entries as CliInvocationEvent[], receivedAtMs: Date.now() },
          JOB_CATALOG.clientTelemetry.options,
        ),
      ),
    );
    await waitFor(async () => ((await countRaw(`command = '${command}'`)) === 4 ? true : undefined), { what: "every good entry written" });
    const mixed = await queue.getJob(jobs[1]?.id ?? "");
    await waitFor(async () => (mixed === undefined || (await mixed.getState()) === "unknown" ? true : undefined), {
      what: "the job with the poison row completed",
    });
    const [dead] = await rows<{ reason: string; entry_id: string; detail: string }>(
      `SELECT reason, entry_id, detail FROM flowmeter.ingestion_warnings WHERE entry_id = '${poison.insert_id}'`,
    );
    expect(dead).toMatchObject({ reason: "dead_letter", entry_id: poison.insert_id });
    expect(dead?.detail).not.toBe("");
    expect(await countRaw(`insert_id = '${poison.insert_id}'`)).toBe(0);
  });

  it("dead-letters every refused row however many come first, and a job of one refused row, instead of retrying them", async () => {
    const command = `poison-first-${randomUUID()}`;
    const poisoned = () => {
      const entry = parentEntry();
      entry.properties.startedAt = "2026-13-45T25:61:61.000Z";
      return entry;
    };
    const poisons = [poisoned(), poisoned(), poisoned()];
    const good = parentEntry();
    good.properties.invocation.command = command;
    const alone = poisoned();
    const jobs = await Promise.all(
      [[...poisons, good], [alone]].map((entries) =>
        queue.add(JOB_CATALOG.clientTelemetry.jobName, { entries: entries, receivedAtMs: Date.now() }, JOB_CATALOG.clientTelemetry.options),
      ),
    );
    for (const job of jobs) {
      await waitFor(async () => ((await queue.getJobState(job.id ?? "")) === "unknown" ? true : undefined), { what: "each job completed" });
    }
    expect(await countRaw(`command = '${command}'`)).toBe(1);
    const ids = [...poisons, alone].map((entry) => `'${entry.insert_id}'`).join(",");
    const [dead] = await rows<{ n: string }>(`SELECT count() AS n FROM flowmeter.ingestion_warnings WHERE reason = 'dead_letter' AND entry_id IN (${ids})`);
    expect(Number(dead?.n)).toBe(4);
  });

  it("identifies an entry by insert_id alone: a re-send with another startedAt is stored and counted once", async () => {
    const command = `resend-${randomUUID()}`;
    const first = parentEntry({ startedAt: new Date(Date.now() - 3_600_000) });
    first.properties.invocation.command = command;
    const resent = structuredClone(first);
    resent.properties.startedAt = new Date().toISOString();
    await enqueue([first]);
    await enqueue([resent]);
    await enqueue([structuredClone(first), structuredClone(resent)]);
    expect(await countRaw(`insert_id = '${first.insert_id}'`)).toBe(1);
    const [stats] = await rows<{ n: string }>(`SELECT sum(count) AS n FROM flowmeter.command_stats WHERE command = '${command}'`);
    expect(Number(stats?.n)).toBe(1);
  });

  it("sends a job of another shape to the failed set at once, without retries, and writes the jobs beside it", async () => {
    const malformed = await queue.add(
      JOB_CATALOG.clientTelemetry.jobName,
      { entries: "not a list", receivedAtMs: Date.now() } as unknown as ClientTelemetryJob,
      JOB_CATALOG.clientTelemetry.options,
    );
    const entry = parentEntry();
    await enqueue([entry]);
    await waitFor(async () => ((await queue.getJobState(malformed.id ?? "")) === "failed" ? true : undefined), { what: "the malformed job failed" });
    const failed = await queue.getJob(malformed.id ?? "");
    expect(failed?.attemptsMade).toBe(1);
    expect(failed?.failedReason).toBe("clientTelemetry payload/entries must be array");
    expect(await countRaw(`insert_id = '${entry.insert_id}'`)).toBe(1);
    await failed?.remove();
  });

  it("leaves no lock and no recorded block behind once rows are written", async () => {
    await enqueue([parentEntry(), parentEntry()]);
    expect(await redis.keys(`${prefix}:lock:*`)).toEqual([]);
    expect(await redis.keys(`${prefix}:block*`)).toEqual([]);
    expect(await redis.keys(`${prefix}:partition-journal:*`)).toEqual([]);
  });

  it("reports what it wrote and dropped in its metrics", async () => {
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/flowmeter_worker_rows_inserted_total\{table="cli_invocations"\} \d+/);
    expect(text).toMatch(/flowmeter_worker_duplicates_dropped_total\{table="cli_invocations",reason="stored"\} [1-9]/);
    expect(text).toMatch(/flowmeter_worker_duplicates_dropped_total\{table="cli_invocations",reason="in_batch"\} [1-9]/);
    expect(text).toMatch(/flowmeter_worker_dead_letters_total\{table="cli_invocations"\} [1-9]/);
    await Promise.all(consumer.held().map((held) => held.sampleQueue()));
    expect(await metrics.registry.getSingleMetricAsString("flowmeter_worker_queue_depth")).toContain('state="failed"');
  });
});
