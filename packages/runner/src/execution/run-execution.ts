/**
 * Executes one run attempt of a validated workflow: a DAG of stages, each started once its dependencies are
 * done, at most `concurrency` at a time, with retries, timeouts, allow_failure, skips and cancel; and the
 * run's lifecycle events (docs/spec.md §3) and telemetry (docs/spec.md §4) on a RunOutput.
 *
 * Outcome rules: a stage that fails its last attempt fails the run unless it has allow_failure, and its
 * dependents (and theirs) are skipped with a reason naming it; a failing run ends `run.failed`, never
 * `run.finished`; a cancelled run ends `run.cancelled` after its running stages got `stage.failed` (exit_code
 * -1) and its not-yet-started stages `stage.skipped`. A run past its policy's `run_timeout_secs` is stopped the same
 * way, but its running stages fail as timed out and the run ends `run.failed` (reason run_timed_out). Stages without
 * their own `timeout_secs` / `retries` take the policy's `stage_timeout_secs` / `stage_retries`. A stage's `retry`
 * says how: a wait before each retry (delay, backoff factor, cap; the stage holds its concurrency slot meanwhile),
 * and with `on_exit_codes` only attempts that exited with one of them are retried. A cancel or run timeout during the
 * wait ends the stage with a second stage.failed of its last attempt (will_retry false, duration_ms 0). Exactly one
 * terminal event ends the attempt.
 */
import { errorMessage, uuidV7, type Logger } from "@flowmeter/platform";
import {
  type RunEventLevel,
  type RunEventPayloads,
  type RunFailedReason,
  type RunPolicy,
  type StageDefinition,
  type StageStatus,
  type WorkflowDefinition,
} from "@flowmeter/shared";
import type { DriverRegistry } from "../drivers/driver-registry.js";
import type { RunnerMetrics, RunOutcomeStatus, StageOutcome } from "../metrics.js";
import { HostSampler } from "../telemetry/host-sampler.js";
import { StageHeartbeat } from "../telemetry/stage-heartbeat.js";
import { planStages, type PlannedStage } from "../workflow/stage-graph.js";
import { RunEventSequencer, type RunOutput } from "./run-event-sequencer.js";
import { SecretMask } from "./secret-mask.js";
import { buildStageEnv, resolveSecrets, type ResolvedSecrets } from "./stage-env.js";
import { StageProcess, type StageProcessResult } from "./stage-process.js";
import type { StageOutputLimits } from "./stage-output.js";
import type { StageRegistry } from "./stage-registry.js";

export const DEFAULT_STAGE_CONCURRENCY = 4;

export interface RunExecutionOptions {
  runId: string;
  /** A fresh UUID v7 when omitted. */
  attemptId?: string;
  /** Must be validated (validateWorkflow) against `drivers`. */
  workflow: WorkflowDefinition;
  /** Handed to every stage as JSON in FLOWMETER_INPUT. */
  input?: unknown;
  /** Stages running at once; default: the workflow's `concurrency`, else 4. */
  concurrency?: number;
  drivers: DriverRegistry;
  output: RunOutput;
  metrics?: RunnerMetrics;
  logger: Logger;
  sampleIntervalMs?: number;
  heartbeatIntervalMs?: number;
  killGraceMs?: number;
  /** seq of the first event; a run re-delivered after a crash continues after the events already stored. */
  firstSeq?: number;
  /** Working directory of the stages (default: the runner's). */
  cwd?: string;
  /**
   * The runner's environment (default: process.env). Stages get only its allow-listed variables (stage-env.ts),
   * and the workflow's `{env}` secrets are read from it.
   */
  hostEnv?: NodeJS.ProcessEnv;
  /** Where live stages are recorded for the next runner on this host (stage-registry.ts). */
  stageRegistry?: StageRegistry;
  /** Within RUN_POLICY_SCHEMA's bounds (the runs job's payload check); its kill grace is given as killGraceMs. */
  policy?: RunPolicy;
  /** Lines kept of each stage attempt's output, from its start and its end (the runner's RUNNER_LOG_HEAD_LINES/TAIL_LINES). */
  outputLimits?: StageOutputLimits;
}

export interface RunOutcome {
  runId: string;
  attemptId: string;
  status: RunOutcomeStatus;
  /** run.failed error, or run.cancelled reason. */
  error?: string;
  durationMs: number;
}

interface StageState {
  plan: PlannedStage;
  stage: StageDefinition;
  status: StageStatus;
  attempt: number;
  process: StageProcess | undefined;
  /** Why the stage failed (for run.failed), or the stage whose failure caused its skip. */
  failure?: string;
  rootCause?: string;
}

const DEFAULT_MAX_RETRY_DELAY_SECS = 3600;

/** The wait before retry `retryNumber` (1 = the first retry), in ms: delay_secs × backoff_factor^(n-1), at most max_delay_secs (default 3600). */
export function retryDelayMs(retry: StageDefinition["retry"], retryNumber: number): number {
  const delaySecs = retry?.delay_secs ?? 0;
  if (delaySecs === 0) return 0;
  const secs = Math.min(delaySecs * (retry?.backoff_factor ?? 1) ** (retryNumber - 1), retry?.max_delay_secs ?? DEFAULT_MAX_RETRY_DELAY_SECS);
  return Math.round(secs * 1000);
}

export class RunExecution {
  readonly runId: string;
  readonly attemptId: string;
  readonly workflow: WorkflowDefinition;
  private readonly concurrency: number;
  private readonly events: RunEventSequencer;
  /** In start order (level, then file order), which is also a topological order. */
  private readonly stages: StageState[];
  private readonly stagesByName: ReadonlyMap<string, StageState>;
  private cancelReason: string | undefined;
  /** Set when the run outlived policy.run_timeout_secs: the stop is a failure, not a cancel. */
  private runTimedOut = false;
  private wake: (() => void) | undefined;
  /** Ends the retry waits under way at once (a cancel or the run timeout). */
  private readonly retryWaits = new Set<() => void>();
  private started = false;
  private readonly secrets: ResolvedSecrets;
  /** The secrets' values, masked in everything this run emits. */
  private readonly mask: SecretMask;

  constructor(private readonly options: RunExecutionOptions) {
    this.runId = options.runId;
    this.attemptId = options.attemptId ?? uuidV7();
    this.workflow = options.workflow;
    this.concurrency = options.concurrency ?? options.workflow.concurrency ?? DEFAULT_STAGE_CONCURRENCY;
    this.secrets = resolveSecrets(options.workflow.secrets, options.hostEnv ?? process.env, options.cwd ?? process.cwd());
    this.mask = new SecretMask(Object.values(this.secrets.values));
    this.events = new RunEventSequencer(this.runId, this.attemptId, options.output, options.logger, options.firstSeq ?? 0, this.mask);
    this.stages = planStages(options.workflow).map((plan) => ({ plan, stage: plan.stage, status: "queued", attempt: 0, process: undefined }));
    this.stagesByName = new Map(this.stages.map((state) => [state.stage.name, state]));
  }

  /** True once the terminal event was emitted. */
  get ended(): boolean {
    return this.events.ended;
  }

  /**
   * Stops the run: running stages are terminated (SIGTERM, then SIGKILL after the grace period) and reported
   * failed with exit_code -1, stages not started are skipped, then `run.cancelled`. False when already ended
   * or cancelled. May be called before `run()`.
   */
  cancel(reason: string): boolean {
    return this.stop(reason);
  }

  private stop(reason: string, timedOut = false): boolean {
    if (this.cancelReason !== undefined || this.events.ended) return false;
    this.cancelReason = reason;
    this.runTimedOut = timedOut;
    for (const state of this.stages) state.process?.terminate();
    for (const endWait of [...this.retryWaits]) endWait();
    this.wake?.();
    return true;
  }

  /** Runs the workflow to its terminal event; resolves with the outcome and never rejects. */
  async run(): Promise<RunOutcome> {
    if (this.started) throw new Error(`run ${this.runId} already started`);
    this.started = true;
    const startedAtMs = Date.now();
    const { metrics, logger } = this.options;
    metrics?.activeRuns.inc();
    const sampler = new HostSampler(() =>
      this.runningStages().flatMap(({ process: stage }) =>
        stage?.pid == null ? [] : [{ pid: stage.pid, ...(stage.cgroup === undefined ? {} : { cgroup: stage.cgroup }) }],
      ),
    );
    const sampleTimer = setInterval(() => {
      try {
        const names = this.runningStages().map((state) => state.stage.name);
        this.events.host(names.join(","), sampler.sample());
      } catch (error) {
        logger.warn("host sample failed", { run_id: this.runId, error: errorMessage(error) });
      }
    }, this.options.sampleIntervalMs ?? 1000);
    const runTimeoutSecs = this.options.policy?.run_timeout_secs;
    const runTimer =
      runTimeoutSecs === undefined ? undefined : setTimeout(() => this.stop(`run timed out after ${runTimeoutSecs}s`, true), runTimeoutSecs * 1000);
    try {
      this.events.emit(
        "run.started",
        {
          message: `run of workflow "${this.workflow.name}" started (${this.stages.length} ${this.stages.length === 1 ? "stage" : "stages"}, concurrency ${this.concurrency})`,
        },
        { workflow: this.workflow.name, stage_count: this.stages.length, concurrency: this.concurrency },
      );
      for (const state of this.stages) {
        const dependsOn = [...state.plan.dependsOn];
        this.stageEvent(state, "stage.queued", `queued${dependsOn.length > 0 ? ` (depends on ${dependsOn.join(", ")})` : ""}`, "info", {
          depends_on: dependsOn,
        });
      }
      await this.schedule();
      clearInterval(sampleTimer);
      return this.finish(startedAtMs);
    } catch (error) {
      // A bug in the runner, not a stage failure: stop what runs, and still end the run with one terminal event.
      logger.error("run execution failed", { run_id: this.runId, error: errorMessage(error) });
      for (const state of this.stages) state.process?.terminate();
      const message = `runner error: ${errorMessage(error)}`;
      this.endRun("run.failed", startedAtMs, message, "runner_error");
      return { runId: this.runId, attemptId: this.attemptId, status: "failed", error: message, durationMs: Date.now() - startedAtMs };
    } finally {
      clearInterval(sampleTimer);
      clearTimeout(runTimer);
      metrics?.activeRuns.dec();
    }
  }

  private runningStages(): StageState[] {
    return this.stages.filter((state) => state.status === "running");
  }

  /** Starts what can start, waits for a change (a stage ended, or cancel), until nothing runs. */
  private async schedule(): Promise<void> {
    for (;;) {
      if (this.cancelReason === undefined) {
        this.skipBlocked();
        this.startReady();
      }
      if (this.runningStages().length === 0) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }

  /** A dependency is satisfied once it succeeded, or failed with allow_failure. */
  private static satisfies(state: StageState): boolean {
    return state.status === "succeeded" || (state.status === "failed" && state.stage.allow_failure === true);
  }

  /** Skips pending stages with a failed or skipped dependency. Stages are in level order, so one pass also covers chains. */
  private skipBlocked(): void {
    for (const state of this.stages) {
      if (state.status !== "queued") continue;
      for (const name of state.plan.dependsOn) {
        const dependency = this.stagesByName.get(name);
        if (dependency === undefined) continue;
        let reason: string | undefined;
        if (dependency.status === "failed" && !RunExecution.satisfies(dependency)) {
          reason = `dependency "${name}" failed`;
          state.rootCause = name;
        } else if (dependency.status === "skipped") {
          state.rootCause = dependency.rootCause ?? name;
          reason = `dependency "${name}" was skipped (stage "${state.rootCause}" failed)`;
        }
        if (reason !== undefined) {
          this.skip(state, reason);
          break;
        }
      }
    }
  }

  private skip(state: StageState, reason: string): void {
    state.status = "skipped";
    this.stageEvent(state, "stage.skipped", `skipped: ${reason}`, "warn", { stage_attempt: 0, reason });
    this.options.metrics?.stageOutcomes.inc({ driver: state.stage.driver, status: "skipped" });
  }

  private startReady(): void {
    let running = this.runningStages().length;
    for (const state of this.stages) {
      if (running >= this.concurrency) return;
      if (state.status !== "queued") continue;
      const ready = state.plan.dependsOn.every((name) => {
        const dependency = this.stagesByName.get(name);
        return dependency !== undefined && RunExecution.satisfies(dependency);
      });
      if (!ready) continue;
      state.status = "running";
      running += 1;
      void this.runStage(state)
        .catch((error: unknown) => {
          // A runner bug, not a stage failure; the stage counts as failed so the run cannot succeed.
          this.options.logger.error("stage execution failed", { run_id: this.runId, stage: state.stage.name, error: errorMessage(error) });
          state.status = "failed";
          state.failure = `runner error: ${errorMessage(error)}`;
        })
        .finally(() => this.wake?.());
    }
  }

  /** Every attempt of one stage, until it succeeds, runs out of attempts, or the run is cancelled. */
  private async runStage(state: StageState): Promise<void> {
    const { stage } = state;
    const maxAttempts = 1 + (stage.retries ?? this.options.policy?.stage_retries ?? 0);
    const attemptsLabel = (attempt: number): string => `attempt ${attempt} of ${maxAttempts}`;
    for (let attempt = 1; ; attempt += 1) {
      state.attempt = attempt;
      this.stageEvent(state, "stage.started", `started (${attemptsLabel(attempt)})`, "info", { stage_attempt: attempt, max_attempts: maxAttempts });
      const result = await this.runAttempt(state, attempt);

      const cancelled = result.terminated && !this.runTimedOut;
      const timedOut = result.timedOut || (result.terminated && this.runTimedOut);
      if (result.exitCode === 0 && result.spawnError === undefined && !timedOut && !cancelled) {
        state.status = "succeeded";
        this.stageEvent(state, "stage.completed", `succeeded in ${result.durationMs} ms (${attemptsLabel(attempt)})`, "info", {
          stage_attempt: attempt,
          duration_ms: result.durationMs,
          exit_code: 0,
        });
        this.options.metrics?.stageOutcomes.inc({ driver: stage.driver, status: "succeeded" });
        return;
      }

      const retryable =
        stage.retry?.on_exit_codes === undefined || (result.spawnError === undefined && !timedOut && stage.retry.on_exit_codes.includes(result.exitCode));
      const willRetry = !cancelled && this.cancelReason === undefined && attempt < maxAttempts && retryable;
      const waitMs = willRetry ? retryDelayMs(stage.retry, attempt) : 0;
      const error =
        result.spawnError !== undefined
          ? `could not start: ${result.spawnError}`
          : cancelled
            ? `cancelled: ${this.cancelReason ?? "run cancelled"}`
            : result.terminated
              ? `stopped: ${this.cancelReason ?? "run timed out"} (exit code ${result.exitCode})`
              : result.timedOut
                ? `timed out after ${this.stageTimeoutSecs(stage) ?? 0}s (exit code ${result.exitCode})`
                : `exited with code ${result.exitCode}`;
      const allowed = stage.allow_failure === true;
      const level: RunEventLevel = willRetry || allowed || cancelled ? "warn" : "error";
      const notRetried = !retryable && attempt < maxAttempts ? `, not retried: exit code not in retry.on_exit_codes` : "";
      const suffix = willRetry ? (waitMs > 0 ? `, retrying in ${waitMs / 1000} s` : ", retrying") : allowed ? `, allowed to fail${notRetried}` : notRetried;
      this.stageEvent(state, "stage.failed", `failed: ${error} (${attemptsLabel(attempt)}${suffix})`, level, {
        stage_attempt: attempt,
        duration_ms: result.durationMs,
        exit_code: cancelled ? -1 : result.exitCode,
        error,
        will_retry: willRetry,
        timed_out: timedOut,
        cancelled,
        allowed_failure: allowed,
        ...(result.stderrTail === "" ? {} : { stderr_tail: this.mask.excerpt(result.stderrTail, { start: result.stderrTailCut }) }),
      });
      if (willRetry && (await this.waitToRetry(waitMs))) continue;
      if (willRetry) {
        // Stopped while waiting: the attempt that failed is this stage's last; say so, once, as a stop of a running stage would.
        const stopped = this.runTimedOut
          ? `stopped: ${this.cancelReason ?? "run timed out"} while waiting to retry`
          : `cancelled: ${this.cancelReason ?? "run cancelled"} while waiting to retry`;
        this.stageEvent(state, "stage.failed", `failed: ${stopped} (${attemptsLabel(attempt)})`, "warn", {
          stage_attempt: attempt,
          duration_ms: 0,
          exit_code: -1,
          error: stopped,
          will_retry: false,
          timed_out: this.runTimedOut,
          cancelled: !this.runTimedOut,
          allowed_failure: allowed,
        });
        state.status = "failed";
        state.failure = stopped;
        this.options.metrics?.stageOutcomes.inc({ driver: stage.driver, status: this.runTimedOut ? "timed_out" : "cancelled" });
        return;
      }
      state.status = "failed";
      state.failure = error;
      const outcome: StageOutcome = cancelled ? "cancelled" : timedOut ? "timed_out" : "failed";
      this.options.metrics?.stageOutcomes.inc({ driver: stage.driver, status: outcome });
      return;
    }
  }

  /** Waits `ms` before a retry; false when the run was stopped (cancel, run timeout) before or during the wait. */
  private async waitToRetry(ms: number): Promise<boolean> {
    if (ms > 0 && this.cancelReason === undefined) {
      await new Promise<void>((resolve) => {
        const endWait = () => {
          clearTimeout(timer);
          this.retryWaits.delete(endWait);
          resolve();
        };
        const timer = setTimeout(endWait, ms);
        this.retryWaits.add(endWait);
      });
    }
    return this.cancelReason === undefined;
  }

  /** One process run, with its heartbeats. */
  private async runAttempt(state: StageState, attempt: number): Promise<StageProcessResult> {
    const { stage } = state;
    const { metrics, drivers } = this.options;
    let child: StageProcess;
    try {
      child = new StageProcess({
        command: drivers.get(stage.driver).command(stage),
        cwd: this.options.cwd ?? process.cwd(),
        env: this.stageEnv(stage, attempt),
        ...(this.stageTimeoutSecs(stage) === undefined ? {} : { timeoutMs: (this.stageTimeoutSecs(stage) ?? 0) * 1000 }),
        killGraceMs: this.options.killGraceMs ?? 5000,
        ...(this.options.stageRegistry === undefined ? {} : { registry: this.options.stageRegistry }),
        label: { runId: this.options.runId, stage: stage.name },
        onLine: (stream, line, truncated, timestampMs) =>
          this.events.log({ stage_name: stage.name, stage_attempt: attempt }, stream, line, truncated, timestampMs),
        ...(this.options.outputLimits === undefined ? {} : { outputLimits: this.options.outputLimits }),
      });
    } catch (error) {
      return {
        exitCode: -1,
        signal: null,
        timedOut: false,
        terminated: false,
        spawnError: errorMessage(error),
        durationMs: 0,
        stderrTail: "",
        stderrTailCut: false,
      };
    }
    state.process = child;
    if (this.cancelReason !== undefined) child.terminate();

    const handle = {};
    metrics?.heartbeats.set(handle, child.startedAtMs);
    metrics?.activeStages.inc({ driver: stage.driver });
    const heartbeat = new StageHeartbeat();
    const heartbeatTimer = setInterval(() => {
      metrics?.heartbeats.set(handle, Date.now());
      const fields = heartbeat.next({
        startedAtMs: child.startedAtMs,
        stdoutBytes: child.stdoutBytes,
        stderrBytes: child.stderrBytes,
        pid: child.pid,
        pidAlive: child.alive,
      });
      this.events.heartbeat({ stage_name: stage.name, group_id: state.plan.groupId, stage_attempt: attempt }, fields);
    }, this.options.heartbeatIntervalMs ?? 30_000);
    try {
      return await child.result;
    } finally {
      clearInterval(heartbeatTimer);
      state.process = undefined;
      metrics?.heartbeats.delete(handle);
      metrics?.activeStages.dec({ driver: stage.driver });
      metrics?.stageDuration.observe({ driver: stage.driver }, (Date.now() - child.startedAtMs) / 1000);
    }
  }

  private stageTimeoutSecs(stage: StageDefinition): number | undefined {
    return stage.timeout_secs ?? this.options.policy?.stage_timeout_secs;
  }

  /** Throws (the attempt cannot start) while a secret of the run could not be read. */
  private stageEnv(stage: StageDefinition, attempt: number): Record<string, string> {
    if (this.secrets.problems.length > 0) throw new Error(this.secrets.problems.join("; "));
    return buildStageEnv({
      hostEnv: this.options.hostEnv ?? process.env,
      run: {
        FLOWMETER_RUN_ID: this.runId,
        FLOWMETER_ATTEMPT_ID: this.attemptId,
        FLOWMETER_WORKFLOW: this.workflow.name,
        FLOWMETER_STAGE_NAME: stage.name,
        FLOWMETER_STAGE_ATTEMPT: String(attempt),
        ...(this.options.input === undefined ? {} : { FLOWMETER_INPUT: JSON.stringify(this.options.input) }),
      },
      secrets: this.secrets.values,
      stage: stage.env,
    });
  }

  private finish(startedAtMs: number): RunOutcome {
    const base = { runId: this.runId, attemptId: this.attemptId };
    if (this.runTimedOut) {
      const error = this.cancelReason ?? "run timed out";
      for (const state of this.stages) if (state.status === "queued") this.skip(state, error);
      this.endRun("run.failed", startedAtMs, error, "run_timed_out");
      return { ...base, status: "failed", error, durationMs: Date.now() - startedAtMs };
    }
    if (this.cancelReason !== undefined) {
      const reason = `run cancelled: ${this.cancelReason}`;
      for (const state of this.stages) if (state.status === "queued") this.skip(state, reason);
      this.endRun("run.cancelled", startedAtMs, this.cancelReason);
      return { ...base, status: "cancelled", error: this.cancelReason, durationMs: Date.now() - startedAtMs };
    }
    const failed = this.stages.filter((state) => state.status === "failed" && state.stage.allow_failure !== true);
    if (failed.length > 0) {
      const error = failed.map((state) => `stage "${state.stage.name}" ${state.failure ?? "failed"}`).join("; ");
      this.endRun("run.failed", startedAtMs, error, "stage_failed");
      return { ...base, status: "failed", error, durationMs: Date.now() - startedAtMs };
    }
    this.endRun("run.finished", startedAtMs);
    return { ...base, status: "succeeded", durationMs: Date.now() - startedAtMs };
  }

  private endRun(type: "run.finished" | "run.failed" | "run.cancelled", startedAtMs: number, detail = "", reason: RunFailedReason = "stage_failed"): void {
    if (this.events.ended) return;
    const workflow = this.workflow.name;
    const durationMs = Date.now() - startedAtMs;
    if (type === "run.finished") {
      this.events.emit(type, { message: `run of workflow "${workflow}" succeeded in ${durationMs} ms` }, { workflow, duration_ms: durationMs });
      this.options.metrics?.runOutcomes.inc({ status: "succeeded" });
    } else if (type === "run.failed") {
      this.events.emit(
        type,
        { message: `run of workflow "${workflow}" failed: ${detail}`, level: "error" },
        { workflow, duration_ms: durationMs, error: detail, reason },
      );
      this.options.metrics?.runOutcomes.inc({ status: "failed" });
    } else {
      this.events.emit(
        type,
        { message: `run of workflow "${workflow}" cancelled: ${detail}`, level: "warn" },
        { workflow, duration_ms: durationMs, reason: detail },
      );
      this.options.metrics?.runOutcomes.inc({ status: "cancelled" });
    }
  }

  /** Emits a stage event with the fields every stage event carries. */
  private stageEvent<T extends "stage.queued" | "stage.started" | "stage.completed" | "stage.failed" | "stage.skipped">(
    state: StageState,
    type: T,
    what: string,
    level: RunEventLevel,
    payload: Omit<RunEventPayloads[T], "workflow" | "driver">,
  ): void {
    this.events.emit(type, { message: `stage "${state.stage.name}" ${what}`, level, stage_name: state.stage.name, group_id: state.plan.groupId }, {
      workflow: this.workflow.name,
      driver: state.stage.driver,
      ...payload,
    } as RunEventPayloads[T]);
  }
}
