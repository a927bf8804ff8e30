import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { createLogger, createRedis, uuidV7 } from "@flowmeter/platform";
import { JOB_CATALOG, RUN_EVENT_V2_NAMES, type RunEvent, type RunEventsJob, type StageLogLine, type TelemetrySample } from "@flowmeter/shared";
import { deleteQueuePrefix, openScratchDatabase, type ScratchDatabase, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";
import * as worker from "../index.js";
import { parseWorkerConfig } from "../config.js";
import { createWorkerMetrics } from "../metrics.js";
import type { QueueConsumer } from "./queue-consumer.js";
import { createExactlyOnceState } from "./insert-once.js";
import { createRunEventsConsumer } from "./worker-handlers.js";

const logger = createLogger("test", "error");

function stageEvents(runId: string, workflow: string): RunEvent[] {
  const attemptId = randomUUID();
  const now = Date.now();
  const base = (seq: number) => ({
    event_id: uuidV7(now + seq),
    run_id: runId,
    attempt_id: attemptId,
    seq,
    ts_ms: now + seq,
    timestamp: new Date(now + seq).toISOString(),
    level: "info" as const,
    message: "",
  });
  const stage = { stage_name: "test", group_id: "g0" };
  return [
    {
      ...base(0),
      event_type: "run.started",
      event_type_v2: RUN_EVENT_V2_NAMES["run.started"],
      stage_name: null,
      group_id: null,
      payload: { workflow, stage_count: 1, concurrency: 1 },
    },
    {
      ...base(1),
      ...stage,
      event_type: "stage.started",
      event_type_v2: "StageStarted",
      payload: { workflow, driver: "shell", stage_attempt: 1, max_attempts: 2 },
    },
    {
      ...base(2),
      ...stage,
      level: "warn",
      event_type: "stage.failed",
      event_type_v2: "StageFailed",
      payload: {
        workflow,
        driver: "shell",
        stage_attempt: 1,
        duration_ms: 40,
        exit_code: 1,
        error: "exit 1",
        will_retry: true,
        timed_out: false,
        cancelled: false,
        allowed_failure: false,
      },
    },
    {
      ...base(3),
      ...stage,
      event_type: "stage.started",
      event_type_v2: "StageStarted",
      payload: { workflow, driver: "shell", stage_attempt: 2, max_attempts: 2 },
    },
    {
      ...base(4),
      ...stage,
      event_type: "stage.completed",
      event_type_v2: "StageSucceeded",
      payload: { workflow, driver: "shell", stage_attempt: 2, duration_ms: 55, exit_code: 0 },
    },
    { ...base(5), event_type: "run.finished", event_type_v2: "RunCompleted", stage_name: null, group_id: null, payload: { workflow, duration_ms: 120 } },
  ];
}

describe("run events consumer (real Redis, chDB)", () => {
  const prefix = testQueuePrefix("run-events");
  const redis = createRedis(testRedisUrl(), "worker");
  let database: ScratchDatabase<worker.BlockWriter>;
  let consumer: QueueConsumer;
  let queue: Queue<RunEventsJob>;

  beforeAll(async () => {
    database = await openScratchDatabase("run-events", worker);
    const { clickhouse } = database;
    const config = { ...parseWorkerConfig({ QUEUE_PREFIX: prefix }), batch: { maxRows: 5000, maxWaitMs: 100 } };
    consumer = createRunEventsConsumer({
      config,
      redis,
      clickhouse,
      writer: database.writer,
      ...createExactlyOnceState(redis, config, logger),
      metrics: createWorkerMetrics(),
      logger,
    });
    consumer.start();
    queue = new Queue(JOB_CATALOG.runEvents.queue, { connection: redis, prefix });
  });

  afterAll(async () => {
    await consumer.close();
    await queue.close();
    redis.disconnect();
    await database.close();
    await deleteQueuePrefix(prefix);
  });

  const rows = <T>(query: string) => database.rows<T>(query);

  async function deliver(job: RunEventsJob): Promise<void> {
    const added = await queue.add(JOB_CATALOG.runEvents.jobName, job, JOB_CATALOG.runEvents.options);
    await waitFor(async () => ((await queue.getJobState(added.id ?? "")) === "unknown" ? true : undefined), { what: "run-events job written" });
  }

  it("writes a run's stage log lines once, also when a spool replay re-sends them, and reads them back in order", async () => {
    const runId = randomUUID();
    const attemptId = randomUUID();
    const lines: StageLogLine[] = ["about to fail", "oops", "x".repeat(4096)].map((line, index) => ({
      run_id: runId,
      attempt_id: attemptId,
      seq: index + 1,
      timestamp_ms: Date.now() + index,
      stage_name: "a",
      stage_attempt: 1,
      stream: index === 1 ? "stderr" : "stdout",
      line,
      truncated: index === 2,
    }));
    await deliver({ events: [], samples: [], logs: lines.slice(0, 2), producedAtMs: Date.now() });
    await deliver({ events: [], samples: [], logs: lines, producedAtMs: Date.now() });
    // A job from a runner older than stage logs has no logs field at all.
    await deliver({ events: [], samples: [], producedAtMs: Date.now() });
    const stored = await rows<{ seq: string; stream: string; line: string; truncated: boolean; stage_name: string }>(
      `SELECT seq, stream, line, truncated, stage_name FROM flowmeter.run_logs FINAL WHERE run_id = '${runId}' ORDER BY seq`,
    );
    expect(stored.map((row) => [Number(row.seq), row.stream, row.line.length, row.truncated, row.stage_name])).toEqual([
      [1, "stdout", 13, false, "a"],
      [2, "stderr", 4, false, "a"],
      [3, "stdout", 4096, true, "a"],
    ]);
    const [count] = await rows<{ n: string }>(`SELECT count() AS n FROM flowmeter.run_logs WHERE run_id = '${runId}'`);
    expect(Number(count?.n)).toBe(3); // not only FINAL: the replayed block was not stored twice
  });

  it("writes replayed events and samples once, and counts the stage once with its retry", async () => {
    const runId = randomUUID();
    const workflow = `wf-${runId}`;
    const events = stageEvents(runId, workflow);
    const attemptId = events[0]?.attempt_id ?? "";
    const samples: TelemetrySample[] = [1, 2, 3].map((seq) => ({
      kind: "host",
      run_id: runId,
      attempt_id: attemptId,
      seq,
      timestamp_ms: Date.now() + seq,
      stage_name: "test",
      host: { rss_bytes: 1000 * seq, cpu_percent: 12.5, io_read_bytes: 10 * seq, io_write_bytes: 20 * seq },
    }));
    await deliver({ events: events.slice(0, 4), samples: samples.slice(0, 2), producedAtMs: Date.now() });
    // A spool replay re-sends what may already have landed, together with what had not.
    await deliver({ events, samples, producedAtMs: Date.now() });

    const stored = await rows<{ seq: string; stage_outcome: string }>(
      `SELECT seq, stage_outcome FROM flowmeter.run_events WHERE run_id = '${runId}' ORDER BY seq`,
    );
    expect(stored.map((row) => Number(row.seq))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(stored.map((row) => row.stage_outcome)).toEqual(["", "", "", "", "succeeded", ""]);
    const telemetry = await rows<{ n: string; max_io: string }>(
      `SELECT count() AS n, max(io_write_bytes) AS max_io FROM flowmeter.run_telemetry WHERE run_id = '${runId}'`,
    );
    expect(telemetry.map((row) => [Number(row.n), Number(row.max_io)])).toEqual([[3, 60]]);
    const [stage] = await rows<{ count: string; retries: string; status: string; driver: string }>(
      `SELECT count, retries, status, driver FROM flowmeter.stage_stats WHERE workflow = '${workflow}'`,
    );
    expect([Number(stage?.count), Number(stage?.retries), stage?.status, stage?.driver]).toEqual([1, 1, "succeeded", "shell"]);
  });

  it("sends a job whose log line or event breaks the shared schema to the failed set at once, without writing any of it", async () => {
    const runId = randomUUID();
    const [started] = stageEvents(runId, `wf-${runId}`);
    const line = { run_id: runId, attempt_id: "a", seq: 1, timestamp_ms: Date.now(), stage_name: "a", stage_attempt: 1, stream: "stdout", line: "x" };
    const added = await queue.add(
      JOB_CATALOG.runEvents.jobName,
      { events: started === undefined ? [] : [started], samples: [], logs: [line as unknown as StageLogLine], producedAtMs: Date.now() },
      JOB_CATALOG.runEvents.options,
    );
    await waitFor(async () => ((await queue.getJobState(added.id ?? "")) === "failed" ? true : undefined), { what: "the malformed job failed" });
    const failed = await queue.getJob(added.id ?? "");
    expect([failed?.attemptsMade, failed?.failedReason]).toEqual([1, "runEvents payload/logs/0 must have required property 'truncated'"]);
    const [stored] = await rows<{ n: string }>(`SELECT count() AS n FROM flowmeter.run_events WHERE run_id = '${runId}'`);
    expect(Number(stored?.n)).toBe(0);
    await failed?.remove();
  });
});
