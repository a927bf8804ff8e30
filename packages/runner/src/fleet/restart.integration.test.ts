/**
 * A runner process killed with SIGKILL in the middle of a run: another runner started afterwards fails the run
 * (terminal_reason runner_restarted) with exactly one terminal event, the run's events stay readable, and BullMQ's
 * re-delivery of the job does not run it again. Needs the built runner (dist/main.js), like the worker's crash test.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger, createRedis } from "@flowmeter/platform";
import { isTerminalRunEvent, type RunEvent, type RunView } from "@flowmeter/shared";
import { deleteQueuePrefix, freePort, tempDir, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";
import { parseRunnerConfig } from "../config.js";
import { startRunner, type RunningRunner } from "../start-runner.js";
import { RunStore } from "../store/run-store.js";

const dist = fileURLToPath(new URL("../../dist/", import.meta.url));
const quiet = createLogger("runner", "error", () => {});

describe("runner killed mid-run, another started", () => {
  const data = tempDir("restart");
  const prefix = testQueuePrefix("restart");
  const redis = createRedis(testRedisUrl(), "worker");
  const store = new RunStore(redis, { prefix });
  const { runQueue } = store;
  const settings = {
    REDIS_URL: testRedisUrl(),
    QUEUE_PREFIX: prefix,
    FLOWMETER_DATA_DIR: data.path,
    RUNNER_LEASE_MS: "600",
    RUNNER_RECONCILE_INTERVAL_MS: "200",
    RUNNER_HEARTBEAT_INTERVAL_MS: "100",
    RUNNER_SAMPLE_INTERVAL_MS: "100",
    RUNNER_STAGE_KILL_GRACE_MS: "200",
    RUNNER_SHUTDOWN_TIMEOUT_MS: "300",
    LOG_LEVEL: "error",
  };
  let child: ChildProcess | undefined;
  let second: RunningRunner | undefined;
  let stagePid: number | undefined;

  afterAll(async () => {
    child?.kill("SIGKILL");
    if (stagePid !== undefined) {
      try {
        process.kill(-stagePid, "SIGKILL"); // the orphaned stage's process group
      } catch {
        // already gone
      }
    }
    await second?.stop();
    await store.close();
    redis.disconnect();
    await deleteQueuePrefix(prefix);
    data.remove();
  });

  it("fails the run with runner_restarted and one terminal event; its events stay readable; it is not run again", async () => {
    const port = await freePort();
    const first = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [`${dist}main.js`], {
      env: { ...process.env, ...settings, RUNNER_PORT: String(port) },
      stdio: ["ignore", "inherit", "inherit"],
    });
    await waitFor(async () => ((await fetch(`${first}/v1/health`).catch(() => undefined))?.ok === true ? true : undefined), { what: "the first runner" });
    const firstRunnerId = ((await (await fetch(`${first}/v1/health`)).json()) as { runner_id: string }).runner_id;

    const created = await fetch(`${first}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        workflow: {
          name: "long",
          stages: [
            { name: "long", driver: "shell", run: "sleep 30" },
            { name: "after", driver: "shell", run: "true", depends_on: ["long"] },
          ],
        },
      }),
    });
    expect(created.status).toBe(201);
    const { run_id: runId, attempt_id: attemptId } = (await created.json()) as { run_id: string; attempt_id: string };
    stagePid = await waitFor(
      async () => {
        const telemetry = (await (await fetch(`${first}/v1/runs/${runId}/telemetry?stage_name=long`)).json()) as {
          samples: Array<{ kind: string; heartbeat?: { pid: number | null } }>;
        };
        return telemetry.samples.find((sample) => sample.kind === "heartbeat")?.heartbeat?.pid ?? undefined;
      },
      { what: "a heartbeat of the running stage" },
    );

    child.kill("SIGKILL");
    await new Promise((resolve) => child?.once("exit", resolve));
    const config = parseRunnerConfig({ ...settings, RUNNER_PORT: "0" });
    second = await startRunner(config, quiet);
    const read = async <T>(path: string): Promise<T> => (await (await fetch(`${(second as RunningRunner).url}${path}`)).json()) as T;

    const failed = await waitFor(
      async () => {
        const run = await read<RunView>(`/v1/runs/${runId}`);
        return run.state === "failed" ? run : undefined;
      },
      { what: "the run failed", timeoutMs: 10_000 },
    );
    expect(failed).toMatchObject({
      run_id: runId,
      attempt_id: attemptId,
      terminal_reason: "runner_restarted",
      runner_id: firstRunnerId,
      lease_expires_at: null,
    });
    expect(failed.error).toContain(firstRunnerId);

    // BullMQ notices the dead runner's job stalled (lock = lease) and re-delivers it to the second runner, which
    // leaves the run as it is.
    await waitFor(async () => ((await runQueue.getJob(runId))?.finishedOn !== undefined ? true : undefined), {
      what: "the re-delivered job",
      timeoutMs: 10_000,
    });
    expect(["already_ended", "runner_restarted"]).toContain(((await runQueue.getJob(runId))?.returnvalue as { status: string }).status);

    const events = (await read<{ events: RunEvent[] }>(`/v1/runs/${runId}/events`)).events;
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
    expect(events.filter(isTerminalRunEvent)).toHaveLength(1);
    expect(new Set(events.map((event) => event.attempt_id))).toEqual(new Set([attemptId]));
    expect(events[4]).toMatchObject({ stage_name: "long", payload: { exit_code: -1, stage_attempt: 1 } });
    expect(events[6]?.payload).toMatchObject({ reason: "runner_restarted" });
    const stages = (await read<{ stages: Array<{ stage_name: string; status: string; exit_code: number | null }> }>(`/v1/runs/${runId}/stages`)).stages;
    expect(stages.map((stage) => [stage.stage_name, stage.status, stage.exit_code])).toEqual([
      ["long", "failed", -1],
      ["after", "skipped", null],
    ]);
    expect(await (await fetch(`${second.url}/metrics`)).text()).toContain('flowmeter_runner_runs_reconciled_total{reason="runner_restarted"} 1');

    // The second runner keeps serving new runs.
    const next = await fetch(`${second.url}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ workflow: { name: "after-restart", stages: [{ name: "a", driver: "shell", run: "true" }] } }),
    });
    const nextId = ((await next.json()) as { run_id: string }).run_id;
    await waitFor(async () => ((await read<RunView>(`/v1/runs/${nextId}`)).state === "succeeded" ? true : undefined), {
      what: "a new run on the second runner",
    });
    expect((await read<{ events: RunEvent[] }>(`/v1/runs/${runId}/events`)).events).toEqual(events);
  });
});

/**
 * Failover time with the default lease (30 s): a runner killed with SIGKILL while a stage runs; the next runner on the
 * host finds it dead (its pid is gone), kills its stage and ends its run at once, without waiting for the lease, and
 * the stage.failed reports how long the stage really ran (until the next runner killed it).
 */
describe("runner killed mid-run, the next one on the host ends its run at once", () => {
  const data = tempDir("failover");
  const prefix = testQueuePrefix("failover");
  const redis = createRedis(testRedisUrl(), "worker");
  const store = new RunStore(redis, { prefix });
  const settings = { REDIS_URL: testRedisUrl(), QUEUE_PREFIX: prefix, FLOWMETER_DATA_DIR: data.path, LOG_LEVEL: "error" };
  let child: ChildProcess | undefined;
  let second: RunningRunner | undefined;

  afterAll(async () => {
    child?.kill("SIGKILL");
    await second?.stop();
    await store.close();
    redis.disconnect();
    await deleteQueuePrefix(prefix);
    data.remove();
  });

  it("ends the run within 5 s of the next runner's start, with the stage's real duration", async () => {
    const port = await freePort();
    const first = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [`${dist}main.js`], {
      env: { ...process.env, ...settings, RUNNER_PORT: String(port) },
      stdio: ["ignore", "inherit", "inherit"],
    });
    await waitFor(async () => ((await fetch(`${first}/v1/health`).catch(() => undefined))?.ok === true ? true : undefined), { what: "the first runner" });
    const created = await fetch(`${first}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ workflow: { name: "long", stages: [{ name: "long", driver: "shell", run: "echo started; sleep 60" }] } }),
    });
    const { run_id: runId } = (await created.json()) as { run_id: string };
    await waitFor(async () => ((await store.logs.read(runId, 0, 10)).items.length > 0 ? true : undefined), { what: "the stage running" });
    const stageStartedMs = Date.parse((await store.events.read(runId, {}, 100)).find((event) => event.event_type === "stage.started")?.timestamp ?? "");

    child.kill("SIGKILL");
    await new Promise((resolve) => child?.once("exit", resolve));
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the stage goes on alone for a while
    const secondStartMs = Date.now();
    second = await startRunner(parseRunnerConfig({ ...settings, RUNNER_PORT: "0" }), quiet);
    const secondStartedMs = Date.now(); // it killed the orphaned stage before it started
    await waitFor(async () => ((await store.records.get(runId))?.state === "failed" ? true : undefined), { what: "the run ended", timeoutMs: 60_000 });
    const endedAfterMs = Date.now() - secondStartMs;
    const events = await store.events.read(runId, {}, 100);
    const stageFailed = events.find((event) => event.event_type === "stage.failed");
    console.log(
      `failover: run ended ${endedAfterMs} ms after the next runner started; stage.failed duration_ms ${JSON.stringify(stageFailed?.payload)}, stage killed ${secondStartedMs - stageStartedMs} ms after it started at the latest`,
    );
    expect(endedAfterMs).toBeLessThan(5000);
    expect(events.at(-1)).toMatchObject({ event_type: "run.failed", payload: { reason: "runner_restarted" } });
    expect(stageFailed).toMatchObject({ stage_name: "long", payload: { exit_code: -1 } });
    // The stage ran from its start until the next runner killed it, while starting.
    const durationMs = (stageFailed?.payload as { duration_ms: number }).duration_ms;
    expect(durationMs).toBeGreaterThanOrEqual(secondStartMs - stageStartedMs - 50);
    expect(durationMs).toBeLessThanOrEqual(secondStartedMs - stageStartedMs + 50);
  }, 90_000);
});
