import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { createLogger, createRedis } from "@flowmeter/platform";
import { JOB_CATALOG, isTerminalRunEvent, type RunEvent, type RunJob } from "@flowmeter/shared";
import { deleteQueuePrefix, tempDir, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";
import { parseRunnerConfig, type RunnerConfig } from "../config.js";
import { RunEventSequencer } from "../execution/run-event-sequencer.js";
import { WorkflowValidationError } from "../errors.js";
import { startRunner, type RunningRunner } from "../start-runner.js";
import { cancelRun } from "./cancel-run.js";
import { followRun } from "./follow-run.js";
import { RunStore } from "../store/run-store.js";
import { submitRun } from "./submit-run.js";

const quiet = createLogger("runner", "error", () => {});

describe("run fleet: submitRun → RunConsumer → followRun (real Redis)", () => {
  const prefix = testQueuePrefix("fleet");
  const dir = tempDir("fleet");
  let config: RunnerConfig;
  let runner: RunningRunner;
  let producer: Redis;
  let runs: RunStore;
  const connection = { redisUrl: testRedisUrl(), queuePrefix: prefix };

  beforeAll(async () => {
    config = parseRunnerConfig({
      REDIS_URL: testRedisUrl(),
      QUEUE_PREFIX: prefix,
      RUNNER_PORT: "0",
      FLOWMETER_DATA_DIR: dir.path,
      RUNNER_MAX_RUNS: "2",
      RUNNER_SAMPLE_INTERVAL_MS: "100",
      RUNNER_HEARTBEAT_INTERVAL_MS: "200",
      RUNNER_STAGE_KILL_GRACE_MS: "200",
      RUNNER_SHUTDOWN_TIMEOUT_MS: "300",
    });
    runner = await startRunner(config, quiet);
    await runner.consumer.ready();
    producer = createRedis(testRedisUrl(), "producer");
    runs = new RunStore(producer, { prefix });
  });

  afterAll(async () => {
    await runner.stop();
    await runs.close();
    producer.disconnect();
    await deleteQueuePrefix(prefix);
    dir.remove();
  });

  async function follow(runId: string, until?: (event: RunEvent) => boolean): Promise<RunEvent[]> {
    const seen: RunEvent[] = [];
    for await (const event of followRun(connection, runId, { blockMs: 200 })) {
      seen.push(event);
      if (until?.(event) === true) break;
    }
    return seen;
  }

  it("executes a submitted run; followRun sees every event up to the terminal one; the worker's queue gets them", async () => {
    const { run_id } = await submitRun(
      runs,
      {
        name: "fleet",
        stages: [
          { name: "a", driver: "shell", run: "echo a" },
          { name: "b", driver: "node", run: "console.log(process.env.FLOWMETER_INPUT)", depends_on: ["a"] },
        ],
      },
      { greeting: "hi" },
    );
    const events = await follow(run_id);
    expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index));
    expect(events.map((event) => event.event_type)).toEqual([
      "run.started",
      "stage.queued",
      "stage.queued",
      "stage.started",
      "stage.completed",
      "stage.started",
      "stage.completed",
      "run.finished",
    ]);
    expect(events.filter(isTerminalRunEvent)).toHaveLength(1);

    await waitFor(async () => {
      const jobs = await runs.eventsQueue.getJobs(["waiting"]);
      const queued = jobs.sort((x, y) => Number(x.id) - Number(y.id)).flatMap((job) => job.data.events.filter((event) => event.run_id === run_id));
      return queued.length === events.length ? queued : undefined;
    }).then((queued) => expect(queued.map((event) => event.event_id)).toEqual(events.map((event) => event.event_id)));
  });

  it("reads a finished run from a cursor, and again from the start", async () => {
    const { run_id } = await submitRun(runs, { name: "short", stages: [{ name: "only", driver: "shell", run: "true" }] });
    const all = await follow(run_id);
    const resumed: RunEvent[] = [];
    for await (const event of followRun(connection, run_id, { afterEventId: all[1]?.event_id as string })) resumed.push(event);
    expect(resumed.map((event) => event.seq)).toEqual(all.slice(2).map((event) => event.seq));
  });

  it("cancels a run from any process with cancelRun", async () => {
    const { run_id } = await submitRun(runs, {
      name: "long",
      stages: [
        { name: "wait", driver: "shell", run: "sleep 10" },
        { name: "next", driver: "shell", run: "true", depends_on: ["wait"] },
      ],
    });
    const following = follow(run_id);
    await waitFor(async () => ((await runs.events.read(run_id)).some((event) => event.event_type === "stage.started") ? true : undefined));
    const started = Date.now();
    await cancelRun(runs, run_id, "user pressed ctrl-c");
    const events = await following;
    expect(Date.now() - started).toBeLessThan(3000);
    const failed = events.find((event) => event.event_type === "stage.failed");
    expect(failed?.payload).toMatchObject({ exit_code: -1, cancelled: true });
    expect(events.find((event) => event.event_type === "stage.skipped")?.payload).toMatchObject({ reason: "run cancelled: user pressed ctrl-c" });
    expect(events.at(-1)).toMatchObject({ event_type: "run.cancelled", payload: { reason: "user pressed ctrl-c" } });
  });

  it("cancels a run requested before a runner took it", async () => {
    const runId = "cancel-early-" + Date.now();
    await cancelRun(runs, runId, "changed my mind");
    await submitRun(runs, { name: "early", stages: [{ name: "a", driver: "shell", run: "sleep 5" }] }, undefined, { runId });
    const events = await follow(runId);
    expect(events.map((event) => event.event_type)).toEqual(["run.started", "stage.queued", "stage.skipped", "run.cancelled"]);
  });

  it("refuses an invalid workflow before queueing it", async () => {
    const before = await runs.runQueue.getJobCounts();
    await expect(submitRun(runs, { name: "bad", stages: [{ name: "a", driver: "docker", run: "x" }] })).rejects.toBeInstanceOf(WorkflowValidationError);
    const good = { name: "good", stages: [{ name: "a", driver: "shell", run: "true" }] };
    await expect(submitRun(runs, good, undefined, { policy: { run_timeout_secs: 0 } })).rejects.toThrow(/policy\/run_timeout_secs must be >= 1/);
    expect(await runs.runQueue.getJobCounts()).toEqual(before);
  });

  it("ends a queued job with an invalid workflow with run.failed, so followers stop", async () => {
    const job: RunJob = { run_id: "invalid-" + Date.now(), workflow: { name: "bad", stages: [] }, submittedAtMs: Date.now() };
    await runs.runQueue.add(JOB_CATALOG.runs.jobName, job, { jobId: job.run_id });
    const events = await follow(job.run_id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ event_type: "run.failed", seq: 0, level: "error" });
    expect((events[0]?.payload as { error: string }).error).toContain("stages must be a non-empty list");
  });

  it("moves a malformed runs job (no workflow, no submit time) to the failed set at once, without touching any run", async () => {
    const runId = "malformed-" + Date.now();
    await runs.runQueue.add(JOB_CATALOG.runs.jobName, { run_id: runId } as unknown as RunJob, { jobId: runId });
    await waitFor(async () => ((await runs.runQueue.getJobState(runId)) === "failed" ? true : undefined), { what: "the job in the failed set" });
    const job = await runs.runQueue.getJob(runId);
    expect([job?.attemptsMade, job?.failedReason]).toEqual([1, "runs payload must have required property 'workflow'"]);
    expect(await runs.records.get(runId)).toBeUndefined();
    expect(await runs.events.last(runId)).toBeUndefined();
  });

  it("fails a re-delivered run whose runner died (runner_restarted) instead of running it again; never reruns an ended run", async () => {
    const runId = "redelivered-" + Date.now();
    const { events: store, records } = runs;
    const workflow = {
      name: "first",
      stages: [
        { name: "a", driver: "shell", run: "sleep 5" },
        { name: "b", driver: "shell", run: "true", depends_on: ["a"] },
      ],
    };
    // A runner that took the run, started stage a, and died: its lease (300 ms) is not renewed.
    expect(await records.create(runId, "attempt-dead", "first")).toBe("created");
    expect(await records.claim(runId, "dead-runner", 300, "unused", "first")).toEqual({ status: "claimed", attemptId: "attempt-dead" });
    const dead: RunEvent[] = [];
    const sequencer = new RunEventSequencer(runId, "attempt-dead", { event: (event) => dead.push(event), sample: () => {}, log: () => {} }, quiet);
    sequencer.emit("run.started", { message: "started" }, { workflow: "first", stage_count: 2, concurrency: 1 });
    sequencer.emit("stage.queued", { message: "q", stage_name: "a", group_id: "g0" }, { workflow: "first", driver: "shell", depends_on: [] });
    sequencer.emit("stage.queued", { message: "q", stage_name: "b", group_id: "g1" }, { workflow: "first", driver: "shell", depends_on: ["a"] });
    sequencer.emit(
      "stage.started",
      { message: "s", stage_name: "a", group_id: "g0" },
      { workflow: "first", driver: "shell", stage_attempt: 1, max_attempts: 1 },
    );
    await store.append(dead);
    await new Promise((resolve) => setTimeout(resolve, 400));

    // BullMQ re-delivers the job (stalled-job recovery): this runner claims it, sees the expired lease, fails it.
    await runs.runQueue.add(JOB_CATALOG.runs.jobName, { run_id: runId, workflow, submittedAtMs: Date.now() }, { jobId: runId });
    const events = await follow(runId);
    expect(events.map((event) => event.event_type)).toEqual([
      "run.started",
      "stage.queued",
      "stage.queued",
      "stage.started",
      "stage.failed",
      "stage.skipped",
      "run.failed",
    ]);
    expect(events.map((event) => event.seq)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(new Set(events.map((event) => event.attempt_id))).toEqual(new Set(["attempt-dead"]));
    expect(events.filter(isTerminalRunEvent)).toHaveLength(1);
    expect(events[4]).toMatchObject({ stage_name: "a", payload: { exit_code: -1, stage_attempt: 1 } });
    expect(events[6]?.payload).toMatchObject({ reason: "runner_restarted" });
    expect(await records.get(runId)).toMatchObject({ state: "failed", terminal_reason: "runner_restarted", runner_id: "dead-runner" });
    await waitFor(async () => ((await runs.runQueue.getJob(runId))?.finishedOn !== undefined ? true : undefined));
    expect((await runs.runQueue.getJob(runId))?.returnvalue).toMatchObject({ status: "runner_restarted" });

    // Same run id again: submitRun starts nothing, and a job taken anyway ends at once without new events.
    expect(await submitRun(runs, workflow, undefined, { runId })).toEqual({ run_id: runId, attempt_id: "attempt-dead", state: "failed", created: false });
    await runs.runQueue.remove(runId);
    await runs.runQueue.add(JOB_CATALOG.runs.jobName, { run_id: runId, workflow, submittedAtMs: Date.now() }, { jobId: runId });
    await waitFor(async () => ((await runs.runQueue.getJob(runId))?.finishedOn !== undefined ? true : undefined));
    expect((await runs.runQueue.getJob(runId))?.returnvalue).toMatchObject({ status: "already_ended", state: "failed" });
    expect(await store.read(runId)).toHaveLength(events.length);
  });

  it("submitRun is idempotent by run id: an active run is answered, not queued twice", async () => {
    const runId = "idempotent-" + Date.now();
    const workflow = { name: "twice", stages: [{ name: "a", driver: "shell", run: "sleep 0.3" }] };
    const first = await submitRun(runs, workflow, undefined, { runId });
    const second = await submitRun(runs, workflow, undefined, { runId });
    expect(first).toMatchObject({ run_id: runId, state: "queued", created: true });
    expect(second).toMatchObject({ run_id: runId, attempt_id: first.attempt_id, created: false });
    const events = await follow(runId);
    expect(events.filter((event) => event.event_type === "run.started")).toHaveLength(1);
    expect(events.every((event) => event.attempt_id === first.attempt_id)).toBe(true);
  });

  it("serves health and metrics", async () => {
    const health = await fetch(`${runner.url}/v1/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", runner_id: runner.runnerId, spooled_items: 0, redis: "ready" });
    const text = await (await fetch(`${runner.url}/metrics`)).text();
    expect(text).toContain("flowmeter_runner_up 1");
    expect(text).toMatch(/flowmeter_runner_stage_outcomes_total\{driver="shell",status="succeeded"\} [1-9]/);
    expect(text).toContain("flowmeter_process_cpu_user_seconds_total");
  });

  it('on stop, cancels runs still active after the shutdown timeout with reason "runner shutting down"', async () => {
    const second = await startRunner({ ...config, spoolDir: `${dir.path}/spool-2` }, quiet);
    await second.consumer.ready();
    await runner.stop(); // only `second` takes runs now
    const { run_id } = await submitRun(runs, { name: "slow", stages: [{ name: "a", driver: "shell", run: "sleep 10" }] });
    const following = follow(run_id);
    await waitFor(() => (second.consumer.activeRuns === 1 ? true : undefined));
    await waitFor(async () => ((await runs.events.read(run_id)).some((event) => event.event_type === "stage.started") ? true : undefined));
    const started = Date.now();
    await second.stop();
    expect(Date.now() - started).toBeLessThan(3000);
    const events = await following;
    expect(events.at(-1)).toMatchObject({ event_type: "run.cancelled", payload: { reason: "runner shutting down" } });
  });
});
