/**
 * Runs as CI/CD traces, live: examples/deploy.yaml (plus a last stage that waits for the test) runs on a real
 * runner, the worker consumes its events into a scratch chDB, and flowmeter.otel_traces holds one trace per run
 * (its id from the run id) whose spans match the stage attempts (names, attempts, results, durations, times), each
 * stage's span there while the run is still running, and the run's SERVER span once it ends.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, createRedis } from "@flowmeter/platform";
import { type RunEvent } from "@flowmeter/shared";
import { RunStore, followRun, loadWorkflowFile, parseRunnerConfig, startRunner, submitRun, type RunningRunner } from "@flowmeter/runner";
import { createRunEventsConsumer, createExactlyOnceState, createWorkerMetrics, parseWorkerConfig, type QueueConsumer } from "@flowmeter/worker";
import * as worker from "@flowmeter/worker";
import { deleteQueuePrefix, tempDir, testQueuePrefix, testRedisUrl, waitFor, openScratchDatabase, type ScratchDatabase } from "@flowmeter/test-utils";

const logger = createLogger("test", "error");
const repoRoot = join(import.meta.dirname, "../../..");

interface SpanRow {
  Timestamp: string;
  TraceId: string;
  SpanId: string;
  ParentSpanId: string;
  SpanName: string;
  SpanKind: string;
  ServiceName: string;
  Duration: string;
  StatusCode: string;
  SpanAttributes: Record<string, string>;
}

/** Milliseconds since the epoch of a DateTime64(9) text in UTC. */
const epochMs = (text: string): number => Date.parse(`${text.slice(0, 23).replace(" ", "T")}Z`);

describe("runs as CI/CD traces", () => {
  const data = tempDir("run-trace");
  const prefix = testQueuePrefix("run-trace");
  const redis = createRedis(testRedisUrl(), "worker");
  let database: ScratchDatabase<worker.BlockWriter>;
  let consumer: QueueConsumer;
  let runner: RunningRunner;

  beforeAll(async () => {
    database = await openScratchDatabase("run-trace", worker);
    const workerConfig = { ...parseWorkerConfig({ QUEUE_PREFIX: prefix }), batch: { maxRows: 5000, maxWaitMs: 100 } };
    consumer = createRunEventsConsumer({
      config: workerConfig,
      redis,
      metrics: createWorkerMetrics(),
      logger,
      clickhouse: database.clickhouse,
      writer: database.writer,
      ...createExactlyOnceState(redis, workerConfig, logger),
    });
    consumer.start();
    runner = await startRunner(parseRunnerConfig({ REDIS_URL: testRedisUrl(), QUEUE_PREFIX: prefix, RUNNER_PORT: "0", FLOWMETER_DATA_DIR: data.path }), logger);
  });

  afterAll(async () => {
    await runner.stop();
    await consumer.close();
    redis.disconnect();
    await database.close();
    await deleteQueuePrefix(prefix);
    data.remove();
  });

  it("writes each stage attempt's span when it ends and the run's span when the run ends, all in the run's trace", async () => {
    const deploy = await loadWorkflowFile(join(repoRoot, "examples/deploy.yaml"));
    const gate = join(data.path, "gate");
    const workflow = {
      ...deploy,
      stages: [
        ...deploy.stages,
        { name: "gate", driver: "shell", run: `while [ ! -f ${gate} ]; do sleep 0.05; done`, depends_on: ["publish"], timeout_secs: 60 },
      ],
    };
    const store = new RunStore(redis, { prefix });
    const { run_id: runId } = await submitRun(store, workflow);
    await store.close();
    const traceId = createHash("sha256").update(runId).digest("hex").slice(0, 32);
    const spansOfRun = () =>
      database.rows<SpanRow>(
        `SELECT Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, Duration, StatusCode, SpanAttributes
         FROM flowmeter.otel_traces WHERE TraceId = '${traceId}' ORDER BY Timestamp, SpanName`,
      );

    const followed: RunEvent[] = [];
    const following = (async () => {
      for await (const event of followRun({ redisUrl: testRedisUrl(), queuePrefix: prefix }, runId)) followed.push(event);
    })();

    // build, unit-tests, lint, flaky-smoke twice (it fails its first attempt), publish: in ClickHouse while gate runs.
    const beforeEnd = await waitFor(
      async () => {
        const found = await spansOfRun();
        return found.length >= 6 ? found : undefined;
      },
      { what: "the spans of the ended stage attempts while the run still runs", timeoutMs: 30_000 },
    );
    expect(followed.some((event) => event.event_type.startsWith("run.") && event.event_type !== "run.started")).toBe(false);
    expect(beforeEnd.map((span) => span.SpanName).sort()).toEqual(["build", "flaky-smoke", "flaky-smoke", "lint", "publish", "unit-tests"]);

    writeFileSync(gate, "");
    await following;
    expect(followed.at(-1)?.event_type).toBe("run.finished");

    const spans = await waitFor(
      async () => {
        const found = await spansOfRun();
        return found.length === 8 ? found : undefined;
      },
      { what: "every span of the run" },
    );
    const runSpan = spans.find((span) => span.SpanKind === "Server");
    const runEnd = followed.at(-1) as RunEvent & { event_type: "run.finished" };
    expect(runSpan).toMatchObject({
      SpanName: "RUN deploy",
      ParentSpanId: "",
      ServiceName: "flowmeter-runner",
      StatusCode: "Unset",
      SpanAttributes: { "cicd.pipeline.action.name": "RUN", "cicd.pipeline.name": "deploy", "cicd.pipeline.run.id": runId, "cicd.pipeline.result": "success" },
    });
    expect(Number(runSpan?.Duration)).toBe(runEnd.payload.duration_ms * 1_000_000);
    expect(epochMs(runSpan?.Timestamp ?? "")).toBe(runEnd.ts_ms - runEnd.payload.duration_ms);

    // One INTERNAL span per ended stage attempt, under the run span, as the events say.
    const stageEnds = followed.filter(
      (event): event is RunEvent & { event_type: "stage.completed" | "stage.failed" } =>
        event.event_type === "stage.completed" || event.event_type === "stage.failed",
    );
    const expected = stageEnds
      .map((event) => ({
        name: event.stage_name,
        attempt: String(event.payload.stage_attempt),
        result: event.event_type === "stage.completed" ? "success" : "failure",
        durationNs: event.payload.duration_ms * 1_000_000,
        startMs: event.ts_ms - event.payload.duration_ms,
      }))
      .sort((a, b) => `${a.name}/${a.attempt}`.localeCompare(`${b.name}/${b.attempt}`));
    const stageSpans = spans.filter((span) => span.SpanKind === "Internal");
    const actual = stageSpans
      .map((span) => ({
        name: span.SpanAttributes["cicd.pipeline.task.name"],
        attempt: span.SpanAttributes["flowmeter.stage.attempt"],
        result: span.SpanAttributes["cicd.pipeline.task.run.result"],
        durationNs: Number(span.Duration),
        startMs: epochMs(span.Timestamp),
      }))
      .sort((a, b) => `${a.name}/${a.attempt}`.localeCompare(`${b.name}/${b.attempt}`));
    expect(actual).toEqual(expected);
    expect(actual.filter((span) => span.name === "flaky-smoke").map((span) => [span.attempt, span.result])).toEqual([
      ["1", "failure"],
      ["2", "success"],
    ]);
    expect(stageSpans.every((span) => span.ParentSpanId === runSpan?.SpanId && span.SpanName === span.SpanAttributes["cicd.pipeline.task.name"])).toBe(true);
    expect(new Set(stageSpans.map((span) => span.SpanAttributes["cicd.pipeline.task.run.id"])).size).toBe(7);
    expect(stageSpans.find((span) => span.SpanName === "build")?.Duration).not.toBe("0");

    // The trace-id lookup the Grafana plugin reads finds the trace.
    const lookup = await waitFor(
      async () => {
        const found = await database.rows<{ TraceId: string }>(`SELECT TraceId FROM flowmeter.otel_traces_trace_id_ts WHERE TraceId = '${traceId}'`);
        return found.length > 0 ? found : undefined;
      },
      { what: "the trace in otel_traces_trace_id_ts" },
    );
    expect(lookup[0]?.TraceId).toBe(traceId);
  });
});
