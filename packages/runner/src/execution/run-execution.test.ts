import { describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "@flowmeter/platform";
import {
  RUN_EVENT_V2_NAMES,
  payloadProblem,
  isTerminalRunEvent,
  type RunEvent,
  type RunEventOf,
  type RunEventType,
  type StepHeartbeat,
  type HostSample,
  type StageLogLine,
  type TelemetrySample,
} from "@flowmeter/shared";
import { tempDir, waitFor } from "@flowmeter/test-utils";
import { DriverRegistry } from "../drivers/driver-registry.js";
import { nodeDriver } from "../drivers/node-driver.js";
import { shellDriver } from "../drivers/shell-driver.js";
import { createRunnerMetrics } from "../metrics.js";
import { validateWorkflow } from "../workflow/validate-workflow.js";
import { RunExecution, retryDelayMs, type RunExecutionOptions } from "./run-execution.js";

const quiet = createLogger("runner", "error", () => {});
const drivers = new DriverRegistry();

function collector() {
  const events: RunEvent[] = [];
  const samples: TelemetrySample[] = [];
  const logs: StageLogLine[] = [];
  return {
    events,
    samples,
    logs,
    output: {
      event: (event: RunEvent) => events.push(event),
      sample: (sample: TelemetrySample) => samples.push(sample),
      log: (line: StageLogLine) => logs.push(line),
    },
  };
}

function execution(workflow: unknown, options: Partial<RunExecutionOptions> = {}) {
  const sink = collector();
  const registry = options.drivers ?? drivers;
  const run = new RunExecution({
    runId: "run-1",
    workflow: validateWorkflow(workflow, { drivers: registry.names() }),
    drivers: registry,
    output: sink.output,
    logger: quiet,
    killGraceMs: 200,
    ...options,
  });
  return { run, ...sink };
}

function ofType<T extends RunEventType>(events: RunEvent[], type: T, stage?: string): RunEventOf<T>[] {
  return events.filter((event): event is RunEventOf<T> & RunEvent => event.event_type === type && (stage === undefined || event.stage_name === stage));
}

function only<T extends RunEventType>(events: RunEvent[], type: T, stage?: string): RunEventOf<T> {
  const found = ofType(events, type, stage);
  expect(found, `${type} ${stage ?? ""}`).toHaveLength(1);
  return found[0] as RunEventOf<T>;
}

/** Envelope rules of docs/spec.md §3 that hold for every run. */
function expectWellFormed(events: RunEvent[]): void {
  expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index));
  const terminal = events.filter(isTerminalRunEvent);
  expect(terminal).toHaveLength(1);
  expect(events.at(-1)).toBe(terminal[0]);
  expect(events[0]?.event_type).toBe("run.started");
  expect(new Set(events.map((event) => event.event_id)).size).toBe(events.length);
  for (const event of events) {
    expect(event.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(event.event_type_v2).toBe(RUN_EVENT_V2_NAMES[event.event_type]);
    expect(event.timestamp).toBe(new Date(event.ts_ms).toISOString());
    expect(event.run_id).toBe("run-1");
    expect(event.attempt_id).toBe(events[0]?.attempt_id);
    if (event.event_type.startsWith("stage.")) expect(event.group_id).toMatch(/^g\d+$/);
    else expect(event.stage_name).toBeNull();
  }
}

describe("RunExecution", () => {
  it("emits only what the shared schemas accept: events, samples and lines of a run with retries, a failure, a skip and output", async () => {
    const { run, events, samples, logs } = execution(
      {
        name: "schemas",
        stages: [
          { name: "a", driver: "shell", run: "echo out; echo err >&2; sleep 0.3; exit 1", retries: 1 },
          { name: "b", driver: "shell", run: "true", depends_on: ["a"] },
          { name: "c", driver: "node", run: "console.log('ok'); setTimeout(() => {}, 1000)" },
        ],
      },
      { sampleIntervalMs: 100, heartbeatIntervalMs: 100 },
    );
    expect((await run.run()).status).toBe("failed");
    expect(new Set(events.map((event) => event.event_type))).toEqual(
      new Set(["run.started", "stage.queued", "stage.started", "stage.failed", "stage.skipped", "stage.completed", "run.failed"]),
    );
    expect(new Set(samples.map((sample) => sample.kind))).toEqual(new Set(["host", "heartbeat"]));
    expect(logs.length).toBeGreaterThanOrEqual(5);
    expect(payloadProblem("runEvents", { events, samples, logs, producedAtMs: Date.now() })).toBeUndefined();
  });

  it("keeps every line a stage attempt writes, per stream and attempt, before the event that ends the attempt", async () => {
    const dir = tempDir("stage-logs");
    const marker = join(dir.path, "second-attempt");
    try {
      const { run, logs, events } = execution({
        name: "logs",
        stages: [
          {
            name: "a",
            driver: "shell",
            run: `echo about to fail; echo "to stderr" >&2; if [ -f ${marker} ]; then echo fine; exit 0; fi; touch ${marker}; printf 'no newline'; exit 3`,
            retries: 1,
          },
        ],
      });
      const outcome = await run.run();
      expect(outcome.status).toBe("succeeded");
      const byAttempt = (attempt: number) => logs.filter((line) => line.stage_attempt === attempt).map((line) => `${line.stream}: ${line.line}`);
      expect(byAttempt(1).sort()).toEqual(["stderr: to stderr", "stdout: about to fail", "stdout: no newline"]);
      expect(byAttempt(2).sort()).toEqual(["stderr: to stderr", "stdout: about to fail", "stdout: fine"]);
      expect(logs.map((line) => line.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(logs.every((line) => line.run_id === "run-1" && line.stage_name === "a" && !line.truncated)).toBe(true);
      // The lines of attempt 1 were emitted before its stage.failed: a follower that sees the failure can read them.
      const failedAt = only(events, "stage.failed", "a").ts_ms;
      expect(logs.filter((line) => line.stage_attempt === 1).every((line) => line.timestamp_ms <= failedAt)).toBe(true);
    } finally {
      dir.remove();
    }
  });

  it("applies a run policy: stage timeout and retries for stages that set none, and a timeout for the whole run", async () => {
    const { run, events } = execution(
      {
        name: "policy",
        stages: [
          { name: "flaky", driver: "shell", run: "exit 1", allow_failure: true },
          { name: "own", driver: "shell", run: "exit 1", retries: 0, allow_failure: true },
          { name: "slow", driver: "shell", run: "sleep 30", timeout_secs: 60, depends_on: ["flaky", "own"] },
          { name: "never", driver: "shell", run: "true", depends_on: ["slow"] },
        ],
      },
      { policy: { stage_retries: 2, stage_timeout_secs: 5, run_timeout_secs: 1 } },
    );
    const outcome = await run.run();
    expectWellFormed(events);
    expect(ofType(events, "stage.started", "flaky").map((event) => event.payload.max_attempts)).toEqual([3, 3, 3]);
    expect(ofType(events, "stage.started", "own").map((event) => event.payload.max_attempts)).toEqual([1]);
    const slow = only(events, "stage.failed", "slow");
    expect(slow.payload).toMatchObject({ timed_out: true, cancelled: false, will_retry: false, exit_code: 143 });
    expect(slow.payload.error).toBe("stopped: run timed out after 1s (exit code 143)");
    expect(only(events, "stage.skipped", "never").payload.reason).toBe("run timed out after 1s");
    const failed = only(events, "run.failed");
    expect(failed.payload).toMatchObject({ reason: "run_timed_out", error: "run timed out after 1s" });
    expect(outcome).toMatchObject({ status: "failed", error: "run timed out after 1s" });
  });

  it("times a stage out after the policy's stage_timeout_secs when it sets none", async () => {
    const { run, events } = execution(
      { name: "stage-timeout", stages: [{ name: "slow", driver: "shell", run: "sleep 30" }] },
      { policy: { stage_timeout_secs: 1 } },
    );
    await run.run();
    expect(only(events, "stage.failed", "slow").payload).toMatchObject({ timed_out: true, error: "timed out after 1s (exit code 143)" });
  });

  it("runs a DAG in parallel groups: g0 stages overlap, g1 waits for both", async () => {
    const { run, events } = execution({
      name: "parallel",
      stages: [
        { name: "a", driver: "shell", run: "sleep 0.3" },
        { name: "b", driver: "shell", run: "sleep 0.3" },
        { name: "c", driver: "shell", run: "true", depends_on: ["a", "b"] },
      ],
    });
    const outcome = await run.run();
    expect(outcome.status).toBe("succeeded");
    expectWellFormed(events);
    expect(events.at(-1)?.event_type).toBe("run.finished");
    expect(only(events, "stage.queued", "c").payload.depends_on).toEqual(["a", "b"]);
    for (const name of ["a", "b"]) expect(only(events, "stage.started", name).group_id).toBe("g0");
    expect(only(events, "stage.started", "c").group_id).toBe("g1");
    const startedA = only(events, "stage.started", "a").seq;
    const startedB = only(events, "stage.started", "b").seq;
    const doneA = only(events, "stage.completed", "a");
    const doneB = only(events, "stage.completed", "b");
    expect(Math.max(startedA, startedB)).toBeLessThan(Math.min(doneA.seq, doneB.seq)); // overlap in time
    expect(only(events, "stage.started", "c").seq).toBeGreaterThan(Math.max(doneA.seq, doneB.seq));
    expect(doneA.payload).toMatchObject({ exit_code: 0, stage_attempt: 1, driver: "shell", workflow: "parallel" });
    expect(doneA.payload.duration_ms).toBeGreaterThanOrEqual(250);
  });

  it("keeps to the concurrency limit", async () => {
    const { run, events } = execution(
      {
        name: "serial",
        stages: [
          { name: "a", driver: "shell", run: "sleep 0.1" },
          { name: "b", driver: "shell", run: "sleep 0.1" },
        ],
      },
      { concurrency: 1 },
    );
    await run.run();
    expect(only(events, "run.started").payload.concurrency).toBe(1);
    expect(only(events, "stage.started", "b").seq).toBeGreaterThan(only(events, "stage.completed", "a").seq);
  });

  it("retries with the real attempt number in every event", async () => {
    const { run, events } = execution({
      name: "retry",
      stages: [{ name: "flaky", driver: "shell", run: 'echo "attempt $FLOWMETER_STAGE_ATTEMPT" >&2; [ "$FLOWMETER_STAGE_ATTEMPT" -ge 3 ]', retries: 2 }],
    });
    const outcome = await run.run();
    expect(outcome.status).toBe("succeeded");
    expectWellFormed(events);
    const stageEvents = events.filter((event) => event.stage_name === "flaky" && event.event_type !== "stage.queued");
    expect(stageEvents.map((event) => [event.event_type, (event.payload as { stage_attempt: number }).stage_attempt])).toEqual([
      ["stage.started", 1],
      ["stage.failed", 1],
      ["stage.started", 2],
      ["stage.failed", 2],
      ["stage.started", 3],
      ["stage.completed", 3],
    ]);
    const failures = ofType(events, "stage.failed");
    expect(failures.map((event) => event.payload.will_retry)).toEqual([true, true]);
    expect(failures[0]?.payload).toMatchObject({ exit_code: 1, error: "exited with code 1", stderr_tail: "attempt 1\n" });
    expect(ofType(events, "stage.started").map((event) => event.payload.max_attempts)).toEqual([3, 3, 3]);
  });

  it("waits before each retry, the wait growing by backoff_factor up to max_delay_secs", async () => {
    const { run, events } = execution({
      name: "backoff",
      stages: [
        {
          name: "flaky",
          driver: "shell",
          run: '[ "$FLOWMETER_STAGE_ATTEMPT" -ge 4 ]',
          retries: 3,
          retry: { delay_secs: 0.2, backoff_factor: 2, max_delay_secs: 0.5 },
        },
      ],
    });
    expect(await run.run()).toMatchObject({ status: "succeeded" });
    expectWellFormed(events);
    const failures = ofType(events, "stage.failed");
    expect(failures.map((event) => event.message)).toEqual([
      'stage "flaky" failed: exited with code 1 (attempt 1 of 4, retrying in 0.2 s)',
      'stage "flaky" failed: exited with code 1 (attempt 2 of 4, retrying in 0.4 s)',
      'stage "flaky" failed: exited with code 1 (attempt 3 of 4, retrying in 0.5 s)',
    ]);
    // Each next attempt starts no earlier than its wait after the failure (0.2, 0.4, then the 0.5 cap).
    const starts = ofType(events, "stage.started").slice(1);
    expect(starts.map((start, index) => start.ts_ms - (failures[index]?.ts_ms ?? 0) >= [200, 400, 500][index]!)).toEqual([true, true, true]);
    expect(retryDelayMs({ delay_secs: 1, backoff_factor: 3 }, 3)).toBe(9000);
    expect(retryDelayMs({ delay_secs: 10_000, backoff_factor: 1 }, 1)).toBe(3_600_000);
    expect(retryDelayMs(undefined, 5)).toBe(0);
  });

  it("retries only the exit codes in retry.on_exit_codes; any other failure is final", async () => {
    const { run, events } = execution({
      name: "codes",
      stages: [
        { name: "transient", driver: "shell", run: '[ "$FLOWMETER_STAGE_ATTEMPT" -ge 2 ] || exit 75', retries: 2, retry: { on_exit_codes: [75] } },
        { name: "broken", driver: "shell", run: "exit 2", retries: 2, retry: { on_exit_codes: [75, 137] } },
      ],
    });
    expect(await run.run()).toMatchObject({ status: "failed" });
    expectWellFormed(events);
    expect(ofType(events, "stage.failed", "transient").map((event) => [event.payload.exit_code, event.payload.will_retry])).toEqual([[75, true]]);
    expect(only(events, "stage.completed", "transient").payload.stage_attempt).toBe(2);
    const broken = only(events, "stage.failed", "broken");
    expect([broken.payload.stage_attempt, broken.payload.will_retry, broken.message]).toEqual([
      1,
      false,
      'stage "broken" failed: exited with code 2 (attempt 1 of 3, not retried: exit code not in retry.on_exit_codes)',
    ]);
  });

  it("a cancel during a retry wait ends the stage at once: its last attempt failed again as cancelled, then run.cancelled", async () => {
    const metrics = createRunnerMetrics(drivers.names());
    const { run, events } = execution(
      { name: "patient", stages: [{ name: "flaky", driver: "shell", run: "exit 1", retries: 5, retry: { delay_secs: 30 } }] },
      { metrics },
    );
    const done = run.run();
    await waitFor(() => (ofType(events, "stage.failed").length === 1 ? true : undefined), { timeoutMs: 5000, what: "the first failure" });
    run.cancel("no more waiting");
    const outcome = await done;
    expect(outcome).toMatchObject({ status: "cancelled" });
    expect(outcome.durationMs).toBeLessThan(5000);
    expectWellFormed(events);
    expect(
      ofType(events, "stage.failed").map((event) => [event.payload.stage_attempt, event.payload.will_retry, event.payload.cancelled, event.payload.error]),
    ).toEqual([
      [1, true, false, "exited with code 1"],
      [1, false, true, "cancelled: no more waiting while waiting to retry"],
    ]);
    expect(ofType(events, "stage.started")).toHaveLength(1);
    expect(await metrics.registry.metrics()).toContain('flowmeter_runner_stage_outcomes_total{driver="shell",status="cancelled"} 1');
  });

  it("fails the run when a stage fails its last attempt, and skips its dependents naming it", async () => {
    const { run, events } = execution({
      name: "broken",
      stages: [
        { name: "build", driver: "shell", run: "exit 3", retries: 1 },
        { name: "test", driver: "shell", run: "true", depends_on: ["build"] },
        { name: "deploy", driver: "shell", run: "true", depends_on: ["test"] },
        { name: "docs", driver: "shell", run: "true" },
      ],
    });
    const outcome = await run.run();
    expect(outcome.status).toBe("failed");
    expectWellFormed(events);
    expect(ofType(events, "run.finished")).toHaveLength(0);
    const failed = only(events, "run.failed");
    expect(failed.payload.error).toBe('stage "build" exited with code 3');
    expect(failed.level).toBe("error");
    const buildFailures = ofType(events, "stage.failed", "build");
    expect(buildFailures.map((event) => [event.payload.stage_attempt, event.payload.exit_code, event.payload.will_retry])).toEqual([
      [1, 3, true],
      [2, 3, false],
    ]);
    expect(only(events, "stage.skipped", "test").payload).toMatchObject({ reason: 'dependency "build" failed', stage_attempt: 0 });
    expect(only(events, "stage.skipped", "deploy").payload.reason).toBe('dependency "test" was skipped (stage "build" failed)');
    expect(ofType(events, "stage.started", "test")).toHaveLength(0);
    expect(only(events, "stage.completed", "docs").payload.exit_code).toBe(0);
  });

  it("kills a stage at its timeout: SIGTERM, then SIGKILL after the grace period", async () => {
    const { run, events } = execution({
      name: "slow",
      stages: [
        { name: "polite", driver: "shell", run: "sleep 5", timeout_secs: 0.3 },
        { name: "stubborn", driver: "shell", run: "trap '' TERM; sleep 5", timeout_secs: 0.3 },
      ],
    });
    const outcome = await run.run();
    expect(outcome.status).toBe("failed");
    // Both stages sleep 5 s: ending well before that means the timeout killed them.
    expect(outcome.durationMs).toBeLessThan(4500);
    expectWellFormed(events);
    const polite = only(events, "stage.failed", "polite").payload;
    expect(polite).toMatchObject({ timed_out: true, exit_code: 143, error: "timed out after 0.3s (exit code 143)", will_retry: false });
    expect(polite.duration_ms).toBeLessThan(4500);
    const stubborn = only(events, "stage.failed", "stubborn").payload;
    expect(stubborn).toMatchObject({ timed_out: true, exit_code: 137 });
    expect(stubborn.duration_ms).toBeGreaterThanOrEqual(450); // timeout + grace
  });

  it("lets an allow_failure stage fail without failing the run or skipping its dependents", async () => {
    const { run, events } = execution({
      name: "lenient",
      stages: [
        { name: "lint", driver: "shell", run: "exit 1", allow_failure: true },
        { name: "deploy", driver: "shell", run: "true", depends_on: ["lint"] },
      ],
    });
    const outcome = await run.run();
    expect(outcome.status).toBe("succeeded");
    expectWellFormed(events);
    expect(events.at(-1)?.event_type).toBe("run.finished");
    const lint = only(events, "stage.failed", "lint");
    expect(lint.payload).toMatchObject({ exit_code: 1, allowed_failure: true, will_retry: false });
    expect(lint.level).toBe("warn");
    expect(only(events, "stage.completed", "deploy").payload.exit_code).toBe(0);
  });

  it("cancels: running stages fail with exit_code -1, queued ones are skipped, then run.cancelled", async () => {
    const metrics = createRunnerMetrics(drivers.names());
    const { run, events } = execution(
      {
        name: "long",
        stages: [
          { name: "a", driver: "shell", run: "sleep 5" },
          { name: "b", driver: "shell", run: "sleep 5" },
          { name: "c", driver: "shell", run: "true", depends_on: ["a"] },
        ],
      },
      { metrics },
    );
    const done = run.run();
    while (ofType(events, "stage.started").length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(run.cancel("user asked")).toBe(true);
    expect(run.cancel("again")).toBe(false);
    const outcome = await done;
    expect(outcome).toMatchObject({ status: "cancelled", error: "user asked" });
    expect(outcome.durationMs).toBeLessThan(4500); // the stages sleep 5 s: the cancel ended them
    expectWellFormed(events);
    for (const name of ["a", "b"]) {
      expect(only(events, "stage.failed", name).payload).toMatchObject({ exit_code: -1, cancelled: true, will_retry: false, error: "cancelled: user asked" });
    }
    expect(only(events, "stage.skipped", "c").payload.reason).toBe("run cancelled: user asked");
    expect(only(events, "run.cancelled").payload.reason).toBe("user asked");
    const text = await metrics.registry.metrics();
    expect(text).toContain('flowmeter_runner_stage_outcomes_total{driver="shell",status="cancelled"} 2');
    expect(text).toContain('flowmeter_runner_runs_total{status="cancelled"} 1');
    expect(text).toMatch(/flowmeter_runner_active_runs 0/);
  });

  it("cancelled before it starts: every stage skipped, run.cancelled", async () => {
    const { run, events } = execution({ name: "never", stages: [{ name: "a", driver: "shell", run: "true" }] });
    run.cancel("runner shutting down");
    const outcome = await run.run();
    expect(outcome.status).toBe("cancelled");
    expectWellFormed(events);
    expect(events.map((event) => event.event_type)).toEqual(["run.started", "stage.queued", "stage.skipped", "run.cancelled"]);
  });

  it("sends heartbeats for running stages, with output growth and stagnation", async () => {
    const { run, samples } = execution(
      { name: "beat", stages: [{ name: "talk", driver: "shell", run: "echo hi; sleep 30" }] },
      { heartbeatIntervalMs: 100, sampleIntervalMs: 10_000 },
    );
    const done = run.run();
    const heartbeats = () => samples.filter((sample): sample is StepHeartbeat => sample.kind === "heartbeat");
    // The stage outlives the test's need: it is cancelled once five heartbeats are in, however slow the machine.
    await waitFor(() => (heartbeats().length >= 5 ? true : undefined), { what: "five heartbeats", intervalMs: 20 });
    run.cancel("enough heartbeats");
    await done;
    const beats = heartbeats();
    const first = beats[0] as StepHeartbeat;
    expect(first).toMatchObject({ run_id: "run-1", stage_name: "talk", group_id: "g0", stage_attempt: 1, seq: 1 });
    expect(first.heartbeat).toMatchObject({
      stdout_bytes: 3,
      stdout_delta_bytes: 3,
      stderr_bytes: 0,
      stagnant_heartbeats: 0,
      output_state: "active",
      pid_alive: true,
    });
    expect(first.heartbeat.pid).toEqual(expect.any(Number));
    expect(first.heartbeat.elapsed_secs).toBeGreaterThan(0);
    expect(beats[1]?.heartbeat).toMatchObject({ stdout_delta_bytes: 0, stagnant_heartbeats: 1, output_state: "quiet" });
    expect(beats[3]?.heartbeat).toMatchObject({ stagnant_heartbeats: 3, output_state: "stagnant" });
    expect(beats.map((beat) => beat.seq)).toEqual(beats.map((_, index) => index + 1));
  });

  it("samples the host per run: RSS, CPU, cumulative IO, the running stage", async () => {
    const { run, samples } = execution({ name: "sampled", stages: [{ name: "work", driver: "shell", run: "sleep 0.5" }] }, { sampleIntervalMs: 100 });
    await run.run();
    const hosts = samples.filter((sample): sample is HostSample => sample.kind === "host");
    expect(hosts.length).toBeGreaterThanOrEqual(3);
    expect(hosts.map((sample) => sample.seq)).toEqual(hosts.map((_, index) => index + 1));
    for (const sample of hosts) {
      expect(sample).toMatchObject({ run_id: "run-1", attempt_id: run.attemptId });
      expect(sample.timestamp_ms).toBeGreaterThan(0);
      expect(sample.host.rss_bytes).toBeGreaterThan(1_000_000);
      expect(sample.host.cpu_percent).toBeGreaterThanOrEqual(0);
      expect(sample.host.io_read_bytes).toBeGreaterThanOrEqual(0);
      expect(sample.host.io_write_bytes).toBeGreaterThanOrEqual(0);
    }
    expect(hosts.some((sample) => sample.stage_name === "work")).toBe(true);
    for (let index = 1; index < hosts.length; index += 1) {
      expect(hosts[index]?.host.io_write_bytes).toBeGreaterThanOrEqual(hosts[index - 1]?.host.io_write_bytes ?? 0);
    }
  });

  it("counts a stage's storage IO once, not again at its shell or the runner, and the next run starts from zero", async () => {
    const MiB = 1 << 20;
    const dir = tempDir("stage-io");
    try {
      // dd's bytes fold into sh's counters when sh reaps it, and into the runner's when the runner reaps sh.
      const stage = { name: "write", driver: "shell", run: `dd if=/dev/zero of=${dir.path}/out bs=1M count=20 conv=fsync 2>/dev/null; sleep 1` };
      const writing = execution({ name: "io", stages: [stage] }, { sampleIntervalMs: 100 });
      await writing.run.run();
      const written = writing.samples.filter((sample): sample is HostSample => sample.kind === "host").map((sample) => sample.host.io_write_bytes);
      // 20 MiB of data plus the file system's metadata for it (about 20 KB here).
      expect(written.at(-1)).toBeGreaterThanOrEqual(20 * MiB);
      expect(written.at(-1)).toBeLessThan(21 * MiB);

      const next = execution({ name: "quiet", stages: [{ name: "rest", driver: "shell", run: "sleep 0.3" }] }, { sampleIntervalMs: 100 });
      await next.run.run();
      const [first] = next.samples.filter((sample): sample is HostSample => sample.kind === "host");
      expect(first?.host.io_write_bytes).toBe(0);
    } finally {
      dir.remove();
    }
  });

  it("runs node stages, inline or from a file, with the run's input and the stage env", async () => {
    const dir = tempDir("node-driver");
    try {
      const script = join(dir.path, "fail.mjs");
      writeFileSync(script, "process.exit(Number(process.env.CODE));\n");
      const { run, events } = execution(
        {
          name: "nodey",
          stages: [
            {
              name: "inline",
              driver: "node",
              run: "const i = JSON.parse(process.env.FLOWMETER_INPUT); if (i.n !== 7 || process.env.FLOWMETER_STAGE_NAME !== 'inline') process.exit(9)",
            },
            { name: "file", driver: "node", run: script, env: { CODE: "4" }, allow_failure: true },
          ],
        },
        { input: { n: 7 } },
      );
      await run.run();
      expect(only(events, "stage.completed", "inline").payload.exit_code).toBe(0);
      expect(only(events, "stage.failed", "file").payload.exit_code).toBe(4);
    } finally {
      dir.remove();
    }
  });

  it("gives stages the allow-listed host variables, the run's, the secrets and their env; never the runner's config", async () => {
    const dir = tempDir("stage-env");
    try {
      writeFileSync(join(dir.path, "key.pem"), "-----BEGIN-----\nfile-secret-line\n-----END-----\n");
      const hostEnv = {
        PATH: process.env["PATH"] ?? "/usr/bin:/bin",
        HOME: "/home/flow",
        RUNNER_API_TOKENS: "runner-api-token-1",
        REDIS_URL: "redis://:hunter2@127.0.0.1:6379",
        QUEUE_PREFIX: "secret-prefix",
        FLOWMETER_DATA_DIR: "/var/lib/flowmeter-data",
        DEPLOY_TOKEN: "deploy-token-XYZ",
        UNRELATED: "not-inherited-1",
      };
      const { run, events, logs } = execution(
        {
          name: "envy",
          secrets: { DEPLOY: { env: "DEPLOY_TOKEN" }, KEY: { file: "key.pem" } },
          stages: [
            { name: "env", driver: "shell", run: "printenv | sort", env: { MODE: "fast" } },
            // The secret printed whole, cut at the 4096-byte line limit, and as the stderr tail of a failure.
            {
              name: "leak",
              driver: "shell",
              run: 'echo "deploy=$DEPLOY"; echo "$KEY"; printf "%4090s$DEPLOY\n" x; echo "$DEPLOY" >&2; exit 3',
              allow_failure: true,
            },
          ],
        },
        { hostEnv, cwd: dir.path },
      );
      await run.run();
      const printed = logs.filter((line) => line.stage_name === "env").map((line) => line.line);
      const names = printed.flatMap((line) => /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(line)?.[1] ?? []);
      // sh adds PWD (and may add SHLVL) itself
      expect(names.filter((name) => !name.startsWith("FLOWMETER_") && name !== "PWD" && name !== "SHLVL")).toEqual(["DEPLOY", "HOME", "KEY", "MODE", "PATH"]);
      expect(names.filter((name) => name.startsWith("FLOWMETER_"))).toEqual([
        "FLOWMETER_ATTEMPT_ID",
        "FLOWMETER_RUN_ID",
        "FLOWMETER_STAGE_ATTEMPT",
        "FLOWMETER_STAGE_NAME",
        "FLOWMETER_WORKFLOW",
      ]);
      const everything = JSON.stringify({ events, logs });
      for (const leaked of ["runner-api-token-1", "hunter2", "secret-prefix", "flowmeter-data", "not-inherited-1", "deploy-token", "file-secret-line"]) {
        expect([leaked, everything.includes(leaked)]).toEqual([leaked, false]);
      }
      expect(printed).toContain("DEPLOY=***");
      const leak = logs.filter((line) => line.stage_name === "leak").map((line) => [line.stream, line.line, line.truncated]);
      expect(leak).toEqual([
        ["stdout", "deploy=***", false],
        ["stdout", "***", false],
        ["stdout", "***", false],
        ["stdout", "***", false],
        ["stdout", `${" ".repeat(4089)}x***`, true],
        ["stderr", "***", false],
      ]);
      expect(only(events, "stage.failed", "leak").payload.stderr_tail).toBe("***\n");
    } finally {
      dir.remove();
    }
  });

  it("fails a stage that cannot get its secrets, naming them", async () => {
    const { run, events } = execution(
      { name: "nosecret", secrets: { DEPLOY: { env: "TEST_SECRET_NOT_SET_ANYWHERE" } }, stages: [{ name: "a", driver: "shell", run: "true" }] },
      { hostEnv: { PATH: "/usr/bin:/bin" } },
    );
    expect((await run.run()).status).toBe("failed");
    expect(only(events, "stage.failed", "a").payload).toMatchObject({
      exit_code: -1,
      error: "could not start: secret DEPLOY: TEST_SECRET_NOT_SET_ANYWHERE is not set in the runner's environment",
    });
  });

  it("reports a stage that cannot start as failed with exit_code -1", async () => {
    const registry = new DriverRegistry([shellDriver, nodeDriver, { name: "missing", command: () => ({ file: "/nonexistent/flowmeter-binary", args: [] }) }]);
    const { run, events } = execution({ name: "nostart", stages: [{ name: "a", driver: "missing", run: "x" }] }, { drivers: registry });
    const outcome = await run.run();
    expect(outcome.status).toBe("failed");
    expectWellFormed(events);
    expect(only(events, "stage.failed", "a").payload).toMatchObject({ exit_code: -1 });
    expect(only(events, "stage.failed", "a").payload.error).toMatch(/^could not start: .*ENOENT/);
  });

  it("continues seq from firstSeq (a re-delivered run)", async () => {
    const { run, events } = execution({ name: "again", stages: [{ name: "a", driver: "shell", run: "true" }] }, { firstSeq: 10 });
    await run.run();
    expect(events.map((event) => event.seq)).toEqual([10, 11, 12, 13, 14]);
  });
});
