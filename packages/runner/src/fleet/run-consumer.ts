/**
 * Takes runs from the `runs` queue (a BullMQ worker, `maxRuns` at a time) and executes them. Also listens for
 * fleet-wide cancel requests (cancelRun). A failed or cancelled run is a job result, not a job failure.
 *
 * Taking a job claims the run's record (run-records.ts): a queued run becomes running with this runner's id and a
 * lease, which the LeaseKeeper renews until the run's terminal event is in Redis. A run is executed at most once:
 * a job re-delivered after its runner died (BullMQ stalled-job recovery) finds the run running with an expired lease
 * and fails it (runner_restarted, the reconciler's path) instead of running it again; a run running elsewhere with a
 * live lease, or already ended, is left alone. BullMQ's lock and stall check use the lease duration.
 */
import { DelayedError, UnrecoverableError, Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import { createRedis, errorMessage, uuidV7, type Logger } from "@flowmeter/platform";
import { JOB_CATALOG, payloadProblem, type RunJob, type RunPolicy } from "@flowmeter/shared";
import type { DriverRegistry } from "../drivers/driver-registry.js";
import { RunEventSequencer, type RunOutput } from "../execution/run-event-sequencer.js";
import type { StageOutputLimits } from "../execution/stage-output.js";
import { RunExecution, type RunOutcome } from "../execution/run-execution.js";
import type { StageRegistry } from "../execution/stage-registry.js";
import type { RunnerMetrics } from "../metrics.js";
import type { ClaimResult } from "../store/run-records.js";
import type { CancelMessage, RunStore } from "../store/run-store.js";
import { validateRunConcurrency, validateWorkflow } from "../workflow/validate-workflow.js";
import { LeaseKeeper } from "./lease-keeper.js";
import type { RunReconciler } from "./run-reconciler.js";

export interface RunConsumerOptions {
  /** For the consumer's own connections (a blocking worker connection and a cancel subscriber). */
  redisUrl: string;
  /** Runs at once (BullMQ worker concurrency), at least 1. */
  maxRuns: number;
  drivers: DriverRegistry;
  output: RunOutput;
  /** Claims, leases, cancel marks, and what is stored of a run before it starts. */
  store: RunStore;
  /** Fails runs whose runner died when their job comes back (re-delivery). */
  reconciler: Pick<RunReconciler, "abandon">;
  /** This process, in run records (host-pid-random). */
  runnerId: string;
  /** Lease on the runs it executes; also BullMQ's lock duration and stall-check interval for the runs queue. */
  leaseMs: number;
  /** Passed to every RunExecution. */
  execution: {
    stageConcurrency: number;
    sampleIntervalMs: number;
    heartbeatIntervalMs: number;
    killGraceMs: number;
    cwd?: string;
    outputLimits?: StageOutputLimits;
  };
  metrics?: RunnerMetrics;
  logger: Logger;
  /** Where live stages are recorded for the next runner on this host. */
  stageRegistry?: StageRegistry;
}

/** What a `runs` job returns: the outcome of the run executed, or why it was not executed here. */
export type RunJobResult =
  | RunOutcome
  | { runId: string; status: "already_ended"; state: string }
  | { runId: string; status: "owned_elsewhere"; runnerId: string }
  | { runId: string; status: "runner_restarted" };

/** How soon a run waiting for its workflow's max_concurrent_runs is looked at again. */
const WAITING_RECHECK_MS = 500;

export class RunConsumer {
  private worker: Worker<RunJob, RunJobResult> | undefined;
  private workerConnection: Redis | undefined;
  private subscriber: Redis | undefined;
  private readonly active = new Map<string, RunExecution>();
  /** The leases of the runs taken here; stopped by the caller after the publisher flushed (see startRunner). */
  readonly leases: LeaseKeeper;

  constructor(private readonly options: RunConsumerOptions) {
    if (!Number.isInteger(options.maxRuns) || options.maxRuns < 1) throw new Error(`maxRuns must be an integer of at least 1, got ${options.maxRuns}`);
    this.leases = new LeaseKeeper({
      records: options.store.records,
      runnerId: options.runnerId,
      leaseMs: options.leaseMs,
      logger: options.logger,
      onReleased: (runId, status) => {
        if (this.cancel(runId, status === "ended" ? "run ended elsewhere" : "run lease lost")) {
          options.logger.warn("stopped a run this runner no longer holds", { run_id: runId, lease: status });
        }
      },
    });
  }

  /** Starts taking runs. Does not wait for Redis: the worker connects (and reconnects) in the background. */
  start(): void {
    if (this.worker !== undefined) return;
    const { logger, redisUrl, store } = this.options;
    this.subscriber = createRedis(redisUrl, "worker");
    this.subscriber.on("error", (error) => logger.debug("cancel subscriber error", { error: errorMessage(error) }));
    this.subscriber.on("message", (_channel: string, text: string) => {
      try {
        const message = JSON.parse(text) as CancelMessage;
        if (this.cancel(message.run_id, message.reason)) logger.info("run cancelled", { run_id: message.run_id, reason: message.reason });
      } catch (error) {
        logger.warn("bad cancel message", { error: errorMessage(error) });
      }
    });
    this.subscriber.subscribe(store.cancelChannel).catch((error: unknown) => logger.warn("cancel subscription failed", { error: errorMessage(error) }));

    this.workerConnection = createRedis(redisUrl, "worker");
    this.workerConnection.on("error", (error) => logger.debug("run consumer connection error", { error: errorMessage(error) }));
    this.worker = new Worker<RunJob, RunJobResult>(JOB_CATALOG.runs.queue, (job, token) => this.process(job, token), {
      connection: this.workerConnection,
      prefix: store.prefix,
      concurrency: this.options.maxRuns,
      lockDuration: this.options.leaseMs,
      stalledInterval: this.options.leaseMs,
    });
    this.worker.on("error", (error) => logger.debug("run consumer error", { error: errorMessage(error) }));
    this.worker.on("failed", (job, error) => logger.error("run job failed", { run_id: job?.data.run_id, error: errorMessage(error) }));
    this.leases.start();
  }

  /** Resolves once the worker is connected and taking runs. */
  async ready(): Promise<void> {
    await this.worker?.waitUntilReady();
  }

  get activeRuns(): number {
    return this.active.size;
  }

  /** Cancels a run executing in this process; false when it is not here or already ended. See cancelRun for the fleet. */
  cancel(runId: string, reason: string): boolean {
    return this.active.get(runId)?.cancel(reason) ?? false;
  }

  /**
   * Stops taking runs, lets the active ones finish for up to `timeoutMs`, then cancels them with reason
   * "runner shutting down" and waits for their terminal events. Closes its connections.
   */
  async stop(timeoutMs: number): Promise<void> {
    const worker = this.worker;
    if (worker === undefined) return;
    this.worker = undefined;
    const timer = setTimeout(() => {
      for (const execution of this.active.values()) execution.cancel("runner shutting down");
    }, timeoutMs);
    try {
      await worker.close();
    } finally {
      clearTimeout(timer);
      this.workerConnection?.disconnect();
      this.subscriber?.disconnect();
    }
  }

  private async process(job: Job<RunJob, RunJobResult>, token: string | undefined): Promise<RunJobResult> {
    const { logger, store, drivers, execution: settings } = this.options;
    const problem = payloadProblem("runs", job.data);
    if (problem !== undefined) {
      logger.error("malformed runs job: moved to the failed set", { job_id: job.id, problem });
      throw new UnrecoverableError(problem);
    }
    const data = job.data;
    const runId = data.run_id;
    const workflowName = typeof (data.workflow as { name?: unknown } | undefined)?.name === "string" ? data.workflow.name : "";
    if (this.active.has(runId)) {
      // The job came back while this process still executes the run (BullMQ lost its lock, e.g. a blocked event loop).
      logger.warn("run re-delivered while executing here; not running it twice", { run_id: runId });
      return { runId, status: "owned_elsewhere", runnerId: this.options.runnerId };
    }
    const maxConcurrentRuns = (data.workflow as { max_concurrent_runs?: unknown }).max_concurrent_runs;
    const claim = await this.claim(runId, workflowName, data.policy, typeof maxConcurrentRuns === "number" ? maxConcurrentRuns : undefined);
    if (claim.status === "waiting") {
      // Its workflow has max_concurrent_runs running: back to the queue, delayed, looked at again then (the record says why).
      logger.debug("run waits for its workflow's limit", { run_id: runId, reason: claim.reason });
      await job.moveToDelayed(Date.now() + WAITING_RECHECK_MS, token);
      throw new DelayedError();
    }
    if (claim.status === "ended") {
      logger.warn("run already ended; not running it again", { run_id: runId, state: claim.state });
      return { runId, status: "already_ended", state: claim.state };
    }
    if (claim.status === "owned") {
      logger.warn("run is executing on another runner; not running it here", { run_id: runId, runner_id: claim.runnerId });
      return { runId, status: "owned_elsewhere", runnerId: claim.runnerId };
    }
    if (claim.status === "expired") {
      logger.warn("re-delivered run whose runner is gone: failing it, not running it again", { run_id: runId, attempt_id: claim.attemptId });
      await this.options.reconciler.abandon(runId, "runner_restarted");
      return { runId, status: "runner_restarted" };
    }
    this.leases.track(runId);
    const attemptId = claim.attemptId;
    const last = await store.events.last(runId).catch((error: unknown) => {
      logger.warn("could not read the stored events of a run", { run_id: runId, error: errorMessage(error) });
      return undefined;
    });
    const firstSeq = last === undefined ? 0 : last.seq + 1;

    const policy = data.policy; // within its bounds: the payload check above holds it to RUN_POLICY_SCHEMA
    let workflow;
    try {
      workflow = validateWorkflow(data.workflow, { drivers: drivers.names() });
      validateRunConcurrency(data.concurrency);
    } catch (error) {
      return this.rejectRun(runId, workflowName, attemptId, firstSeq, errorMessage(error));
    }

    const execution = new RunExecution({
      runId,
      attemptId,
      workflow,
      input: data.input,
      concurrency: data.concurrency ?? workflow.concurrency ?? settings.stageConcurrency,
      drivers,
      output: this.options.output,
      logger,
      sampleIntervalMs: settings.sampleIntervalMs,
      heartbeatIntervalMs: settings.heartbeatIntervalMs,
      killGraceMs: policy?.kill_grace_secs === undefined ? settings.killGraceMs : policy.kill_grace_secs * 1000,
      ...(policy === undefined ? {} : { policy }),
      firstSeq,
      ...(settings.cwd === undefined ? {} : { cwd: settings.cwd }),
      ...(settings.outputLimits === undefined ? {} : { outputLimits: settings.outputLimits }),
      ...(this.options.metrics === undefined ? {} : { metrics: this.options.metrics }),
      ...(this.options.stageRegistry === undefined ? {} : { stageRegistry: this.options.stageRegistry }),
    });
    this.active.set(runId, execution);
    try {
      // Registered first, then the mark read: a cancel published in between reaches it either way.
      const cancelReason = await this.cancelRequested(runId);
      if (cancelReason !== null) execution.cancel(cancelReason);
      logger.info("run started", { run_id: runId, attempt_id: attemptId, workflow: workflow.name, first_seq: firstSeq });
      const outcome = await execution.run();
      logger.info("run ended", { run_id: runId, status: outcome.status, duration_ms: outcome.durationMs });
      return outcome;
    } finally {
      this.active.delete(runId);
    }
  }

  /** Claims the run's record, retrying a Redis error twice (a lost reply is safe: a runner may re-claim its own run). */
  private async claim(runId: string, workflowName: string, policy: RunPolicy | undefined, maxConcurrentRuns: number | undefined): Promise<ClaimResult> {
    const attemptId = uuidV7();
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.options.store.records.claim(runId, this.options.runnerId, this.options.leaseMs, attemptId, workflowName, policy, maxConcurrentRuns);
      } catch (error) {
        if (attempt >= 3) throw error;
        this.options.logger.warn("could not claim a run; retrying", { run_id: runId, error: errorMessage(error) });
        await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
      }
    }
  }

  private async cancelRequested(runId: string): Promise<string | null> {
    try {
      return await this.options.store.cancelMark(runId);
    } catch {
      return null;
    }
  }

  /** A job whose workflow is invalid still ends with one terminal event, so followers of the run are not left waiting. */
  private rejectRun(runId: string, workflow: string, attemptId: string, firstSeq: number, error: string): RunOutcome {
    const events = new RunEventSequencer(runId, attemptId, this.options.output, this.options.logger, firstSeq);
    events.emit("run.failed", { message: `run rejected: ${error}`, level: "error" }, { workflow, duration_ms: 0, error, reason: "invalid_workflow" });
    this.options.metrics?.runOutcomes.inc({ status: "failed" });
    this.options.logger.warn("run rejected", { run_id: runId, error });
    return { runId, attemptId, status: "failed", error, durationMs: 0 };
  }
}
