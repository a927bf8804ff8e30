/**
 * Takes runs from the `runs` queue (a BullMQ worker, `maxRuns` at a time) and executes them. Also listens for
 * fleet-wide cancel requests (cancelRun). A failed or cancelled run is a job result, not a job failure.
 *
 * A run re-delivered after its runner died (BullMQ stalled-job recovery) runs again as a new attempt whose seq
 * continues after the events already stored; a run whose terminal event is already stored is not run again.
 */
import { Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import { JOB_CATALOG, createRedis, errorMessage, isTerminalRunEvent, uuidV7, type Logger, type RunJob } from "@flowmeter/shared";
import { runKey, type RunEventStore } from "../delivery/run-event-store.js";
import type { DriverRegistry } from "../drivers/driver-registry.js";
import { RunEventSequencer, type RunOutput } from "../execution/run-event-sequencer.js";
import { RunExecution, type RunOutcome } from "../execution/run-execution.js";
import type { RunnerMetrics } from "../metrics.js";
import { validateRunConcurrency, validateWorkflow } from "../workflow/validate-workflow.js";
import { cancelChannel, type CancelMessage } from "./cancel-run.js";

export interface RunConsumerOptions {
  redisUrl: string;
  queuePrefix: string;
  /** Runs at once (BullMQ worker concurrency), at least 1. */
  maxRuns: number;
  drivers: DriverRegistry;
  output: RunOutput;
  /** Reads what is stored of a run before it starts (re-deliveries, cancel marks). */
  store: RunEventStore;
  /** Passed to every RunExecution. */
  execution: { stageConcurrency: number; sampleIntervalMs: number; heartbeatIntervalMs: number; killGraceMs: number; cwd?: string };
  metrics?: RunnerMetrics;
  logger: Logger;
}

/** What a `runs` job returns. */
export type RunJobResult = RunOutcome | { runId: string; status: "already_ended"; lastEventType: string };

export class RunConsumer {
  private worker: Worker<RunJob, RunJobResult> | undefined;
  private workerConnection: Redis | undefined;
  private subscriber: Redis | undefined;
  private readonly active = new Map<string, RunExecution>();

  constructor(private readonly options: RunConsumerOptions) {
    if (!Number.isInteger(options.maxRuns) || options.maxRuns < 1) throw new Error(`maxRuns must be an integer of at least 1, got ${options.maxRuns}`);
  }

  /** Starts taking runs. Does not wait for Redis: the worker connects (and reconnects) in the background. */
  start(): void {
    if (this.worker !== undefined) return;
    const { logger, redisUrl, queuePrefix } = this.options;
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
    this.subscriber.subscribe(cancelChannel(queuePrefix)).catch((error: unknown) => logger.warn("cancel subscription failed", { error: errorMessage(error) }));

    this.workerConnection = createRedis(redisUrl, "worker");
    this.workerConnection.on("error", (error) => logger.debug("run consumer connection error", { error: errorMessage(error) }));
    this.worker = new Worker<RunJob, RunJobResult>(JOB_CATALOG.runs.queue, (job) => this.process(job), {
      connection: this.workerConnection,
      prefix: queuePrefix,
      concurrency: this.options.maxRuns,
    });
    this.worker.on("error", (error) => logger.debug("run consumer error", { error: errorMessage(error) }));
    this.worker.on("failed", (job, error) => logger.error("run job failed", { run_id: job?.data.run_id, error: errorMessage(error) }));
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

  private async process(job: Job<RunJob, RunJobResult>): Promise<RunJobResult> {
    const { logger, store, drivers, execution: settings } = this.options;
    const data = job.data;
    const runId = data.run_id;
    const last = await store.last(runId).catch((error: unknown) => {
      logger.warn("could not read the stored events of a run", { run_id: runId, error: errorMessage(error) });
      return undefined;
    });
    if (last !== undefined && isTerminalRunEvent(last)) {
      logger.warn("run already ended; not running it again", { run_id: runId, event_type: last.event_type });
      return { runId, status: "already_ended", lastEventType: last.event_type };
    }
    const firstSeq = last === undefined ? 0 : last.seq + 1;

    let workflow;
    try {
      workflow = validateWorkflow(data.workflow, { drivers: drivers.names() });
      validateRunConcurrency(data.concurrency);
    } catch (error) {
      return this.rejectRun(data, firstSeq, errorMessage(error));
    }

    const execution = new RunExecution({
      runId,
      workflow,
      input: data.input,
      concurrency: data.concurrency ?? workflow.concurrency ?? settings.stageConcurrency,
      drivers,
      output: this.options.output,
      logger,
      sampleIntervalMs: settings.sampleIntervalMs,
      heartbeatIntervalMs: settings.heartbeatIntervalMs,
      killGraceMs: settings.killGraceMs,
      firstSeq,
      ...(settings.cwd === undefined ? {} : { cwd: settings.cwd }),
      ...(this.options.metrics === undefined ? {} : { metrics: this.options.metrics }),
    });
    this.active.set(runId, execution);
    try {
      // Registered first, then the mark read: a cancel published in between reaches it either way.
      const cancelReason = await this.cancelRequested(runId);
      if (cancelReason !== null) execution.cancel(cancelReason);
      logger.info("run started", { run_id: runId, attempt_id: execution.attemptId, workflow: workflow.name, first_seq: firstSeq });
      const outcome = await execution.run();
      logger.info("run ended", { run_id: runId, status: outcome.status, duration_ms: outcome.durationMs });
      return outcome;
    } finally {
      this.active.delete(runId);
    }
  }

  private async cancelRequested(runId: string): Promise<string | null> {
    try {
      return (await this.workerConnection?.get(runKey(this.options.queuePrefix, runId, "cancel"))) ?? null;
    } catch {
      return null;
    }
  }

  /** A job whose workflow is invalid still ends with one terminal event, so followers of the run are not left waiting. */
  private rejectRun(data: RunJob, firstSeq: number, error: string): RunOutcome {
    const attemptId = uuidV7();
    const workflow = typeof (data.workflow as { name?: unknown } | undefined)?.name === "string" ? data.workflow.name : "";
    const events = new RunEventSequencer(data.run_id, attemptId, this.options.output, this.options.logger, firstSeq);
    events.emit("run.failed", { message: `run rejected: ${error}`, level: "error" }, { workflow, duration_ms: 0, error });
    this.options.metrics?.runOutcomes.inc({ status: "failed" });
    this.options.logger.warn("run rejected", { run_id: data.run_id, error });
    return { runId: data.run_id, attemptId, status: "failed", error, durationMs: 0 };
  }
}
