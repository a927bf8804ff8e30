/**
 * Runner → BullMQ → worker → ClickHouse, all real: a workflow with parallel stages, a retried stage, a failing
 * stage and its skipped dependent runs on the runner; its events and samples land in run_events and
 * run_telemetry, and feed stage_stats and driver_stats (source runner) exactly as a GROUP BY over run_events says.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, createRedis } from "@flowmeter/platform";
import { type RunEvent, type WorkflowDefinition } from "@flowmeter/shared";
import { RunStore, followRun, parseRunnerConfig, startRunner, submitRun, type RunningRunner } from "@flowmeter/runner";
import { createRunEventsConsumer, createExactlyOnceState, createWorkerMetrics, parseWorkerConfig, type QueueConsumer } from "@flowmeter/worker";
import * as worker from "@flowmeter/worker";
import { deleteQueuePrefix, tempDir, testQueuePrefix, testRedisUrl, waitFor, openScratchDatabase, type ScratchDatabase } from "@flowmeter/test-utils";

const logger = createLogger("test", "error");

describe("runner events into ClickHouse rollups", () => {
  const data = tempDir("runner-pipeline");
  const prefix = testQueuePrefix("runner-pipeline");
  const redis = createRedis(testRedisUrl(), "worker");
  let database: ScratchDatabase<worker.BlockWriter>;
  let consumer: QueueConsumer;
  let runner: RunningRunner;

  beforeAll(async () => {
    database = await openScratchDatabase("runner-pipeline", worker);
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
    runner = await startRunner(
      parseRunnerConfig({
        REDIS_URL: testRedisUrl(),
        QUEUE_PREFIX: prefix,
        RUNNER_PORT: "0",
        FLOWMETER_DATA_DIR: data.path,
        RUNNER_SAMPLE_INTERVAL_MS: "100",
        RUNNER_HEARTBEAT_INTERVAL_MS: "150",
      }),
      logger,
    );
  });

  afterAll(async () => {
    await runner.stop();
    await consumer.close();
    redis.disconnect();
    await database.close();
    await deleteQueuePrefix(prefix);
    data.remove();
  });

  const rows = <T>(query: string) => database.rows<T>(query);

  it("stores every event once, in seq order, with retries and outcomes in the rollups", async () => {
    const counter = join(data.path, "flaky-count");
    const workflowName = `deploy-${prefix}`;
    const workflow: WorkflowDefinition = {
      name: workflowName,
      stages: [
        { name: "build", driver: "shell", run: "echo building" },
        {
          name: "flaky",
          driver: "shell",
          run: `n=$(cat ${counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${counter}; [ $n -ge 3 ]`,
          depends_on: ["build"],
          retries: 2,
        },
        { name: "slow", driver: "shell", run: "sleep 0.4", depends_on: ["build"] },
        { name: "broken", driver: "node", run: "process.exit(7)", depends_on: ["build"] },
        { name: "publish", driver: "shell", run: "echo never", depends_on: ["broken"] },
      ],
    };
    const store = new RunStore(redis, { prefix });
    const { run_id: runId } = await submitRun(store, workflow);
    await store.close();

    const followed: RunEvent[] = [];
    for await (const event of followRun({ redisUrl: testRedisUrl(), queuePrefix: prefix }, runId)) followed.push(event);
    expect(followed.at(-1)?.event_type).toBe("run.failed");

    const stored = await waitFor(
      async () => {
        const found = await rows<{
          seq: string;
          event_type: string;
          stage_name: string;
          stage_attempt: number;
          stage_outcome: string;
          exit_code: number | null;
          group_id: string;
        }>(
          `SELECT seq, event_type, stage_name, stage_attempt, stage_outcome, exit_code, group_id FROM flowmeter.run_events WHERE run_id = '${runId}' ORDER BY seq`,
        );
        return found.length === followed.length ? found : undefined;
      },
      { what: "every followed event in run_events" },
    );
    expect(stored.map((event) => Number(event.seq))).toEqual(followed.map((_, index) => index));
    expect(stored.filter((event) => event.event_type.startsWith("run.") && event.event_type !== "run.started")).toHaveLength(1);
    expect(stored.at(-1)?.event_type).toBe("run.failed");

    const flakyStarts = stored.filter((event) => event.stage_name === "flaky" && event.event_type === "stage.started").map((event) => event.stage_attempt);
    expect(flakyStarts).toEqual([1, 2, 3]);
    expect(stored.find((event) => event.stage_name === "broken" && event.stage_outcome === "failed")?.exit_code).toBe(7);
    expect(stored.filter((event) => event.stage_name === "publish" && event.stage_outcome !== "").map((event) => event.stage_outcome)).toEqual(["skipped"]);
    expect(new Set(stored.filter((event) => ["flaky", "slow", "broken"].includes(event.stage_name)).map((event) => event.group_id))).toEqual(new Set(["g1"]));

    const fromRaw = await rows<{ stage: string; driver: string; status: string; n: string; retries: string }>(
      `SELECT stage_name AS stage, driver, stage_outcome AS status, count() AS n, sum(greatest(stage_attempt, 1) - 1) AS retries FROM flowmeter.run_events
       WHERE workflow = '${workflowName}' AND stage_outcome != '' GROUP BY stage, driver, status ORDER BY stage`,
    );
    const normalized = (list: typeof fromRaw) => list.map((row) => ({ ...row, n: Number(row.n), retries: Number(row.retries) }));
    // A block's raw part is visible a moment before the parts of the views under it: wait for the rollup to catch up.
    const fromRollup = await waitFor(
      async () => {
        const found = await rows<{ stage: string; driver: string; status: string; n: string; retries: string }>(
          `SELECT stage, driver, status, sum(count) AS n, sum(retries) AS retries FROM flowmeter.stage_stats WHERE workflow = '${workflowName}' GROUP BY stage, driver, status ORDER BY stage`,
        );
        return normalized(found).reduce((total, row) => total + row.n, 0) === normalized(fromRaw).reduce((total, row) => total + row.n, 0) ? found : undefined;
      },
      { what: "the stage rollup to hold every ended stage" },
    );
    expect(normalized(fromRollup)).toEqual(normalized(fromRaw));
    expect(normalized(fromRollup).find((row) => row.stage === "flaky")).toEqual({ stage: "flaky", driver: "shell", status: "succeeded", n: 1, retries: 2 });
    expect(fromRaw.map((row) => row.stage)).toEqual(["broken", "build", "flaky", "publish", "slow"]);

    const drivers = await rows<{ driver: string; status: string; n: string }>(
      `SELECT driver, status, sum(count) AS n FROM flowmeter.driver_stats WHERE source = 'runner' AND minute >= toStartOfMinute(now() - INTERVAL 5 MINUTE) GROUP BY driver, status ORDER BY driver, status`,
    );
    expect(drivers.map((row) => ({ ...row, n: Number(row.n) }))).toContainEqual({ driver: "node", status: "failed", n: 1 });
  });

  it("stores host samples and heartbeats with cumulative counters as sent", async () => {
    const workflow: WorkflowDefinition = {
      name: `sampled-${prefix}`,
      stages: [{ name: "busy", driver: "shell", run: "for i in 1 2 3 4 5 6; do echo tick; sleep 0.1; done" }],
    };
    const store = new RunStore(redis, { prefix });
    const { run_id: runId } = await submitRun(store, workflow);
    await store.close();
    for await (const _event of followRun({ redisUrl: testRedisUrl(), queuePrefix: prefix }, runId)) {
      // until the terminal event
    }
    const samples = await waitFor(
      async () => {
        const found = await rows<{ kind: string; seq: string; rss_bytes: string; stdout_bytes: string; output_state: string }>(
          `SELECT kind, seq, rss_bytes, stdout_bytes, output_state FROM flowmeter.run_telemetry WHERE run_id = '${runId}' ORDER BY seq`,
        );
        return found.some((sample) => sample.kind === "heartbeat") && found.some((sample) => sample.kind === "host") ? found : undefined;
      },
      { what: "host samples and heartbeats in run_telemetry" },
    );
    const seqs = samples.map((sample) => Number(sample.seq));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(Math.min(...seqs)).toBe(1);
    expect(samples.filter((sample) => sample.kind === "host").every((sample) => Number(sample.rss_bytes) > 0)).toBe(true);
    const heartbeat = samples.find((sample) => sample.kind === "heartbeat");
    expect(["active", "quiet", "stagnant"]).toContain(heartbeat?.output_state);
  });
});
