import { createHash } from "node:crypto";
import { uuidV7 } from "@flowmeter/platform";
import { JOB_CATALOG, isTerminalRunEvent, payloadProblem, type RunJob, type RunPolicy, type RunState } from "@flowmeter/shared";
import { BUILT_IN_DRIVER_NAMES } from "../drivers/driver-registry.js";
import { isValidRunId } from "../store/run-records.js";
import type { RunStore } from "../store/run-store.js";
import { RunIdConflictError, WorkflowValidationError } from "../errors.js";
import { validateRunConcurrency, validateWorkflow } from "../workflow/validate-workflow.js";

export interface SubmitRunOptions {
  /**
   * Default: a new UUID v7. Idempotency key: submitting a run id that exists with the same request (workflow, input,
   * concurrency, policy) starts nothing and answers the existing run; with another request it throws
   * RunIdConflictError. 1-128 letters, digits, "_", "." or "-".
   */
  runId?: string;
  /** Stages at once for this run; overrides the workflow's `concurrency`. */
  concurrency?: number;
  /** Run timeout and stage defaults (RunPolicy). */
  policy?: RunPolicy;
  /** Driver names to validate against; default: the built-in drivers. */
  drivers?: readonly string[];
  /** The run this one re-runs (rerun-run.ts); its record and view say so (`rerun_of`). */
  rerunOf?: string;
}

export interface SubmittedRun {
  run_id: string;
  attempt_id: string;
  state: RunState;
  /** false: the run id existed; nothing new was queued (`state` says whether it is still active). */
  created: boolean;
}

/**
 * Validates a workflow, creates the run's record (queued) and queues its job for the runner fleet, job id = run id.
 * Throws WorkflowValidationError before anything is written when the workflow or the policy is invalid. `input` reaches every
 * stage as JSON in FLOWMETER_INPUT. If the job cannot be queued, the record is removed again and the error thrown.
 */
export async function submitRun(store: RunStore, workflow: unknown, input?: unknown, options: SubmitRunOptions = {}): Promise<SubmittedRun> {
  const valid = validateWorkflow(workflow, { drivers: options.drivers ?? BUILT_IN_DRIVER_NAMES });
  validateRunConcurrency(options.concurrency);
  const runId = options.runId ?? uuidV7();
  if (!isValidRunId(runId)) throw new RangeError(`run id ${JSON.stringify(runId.slice(0, 200))} must be 1-128 letters, digits, "_", "." or "-"`);
  const job: RunJob = {
    run_id: runId,
    workflow: valid,
    ...(input === undefined ? {} : { input }),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.policy === undefined ? {} : { policy: options.policy }),
    submittedAtMs: Date.now(),
  };
  // The job's shared schema also bounds the policy (RUN_POLICY_SCHEMA), the one check the API and the consumer use too.
  const problem = payloadProblem("runs", job);
  if (problem !== undefined) throw new WorkflowValidationError([`run: ${problem}`]);
  await store.ready();
  const { records, runQueue: queue } = store;
  const jobOptions = { ...JOB_CATALOG.runs.options, jobId: runId };
  const attemptId = uuidV7();
  const created = await records.create(runId, attemptId, valid.name, options.policy, requestHash(job), {
    ...(options.rerunOf === undefined ? {} : { rerunOf: options.rerunOf }),
    request: { workflow: valid, input, concurrency: options.concurrency, policy: options.policy },
  });
  if (created === "conflict") throw new RunIdConflictError(runId);

  if (created === "ended") {
    // No record any more, but the run's terminal event is stored: it ended, and cannot start again.
    const last = await store.events.last(runId);
    const state: RunState = last?.event_type === "run.finished" ? "succeeded" : last?.event_type === "run.cancelled" ? "cancelled" : "failed";
    return { run_id: runId, attempt_id: last !== undefined && isTerminalRunEvent(last) ? last.attempt_id : "", state, created: false };
  }
  if (created === "exists") {
    const record = await records.get(runId);
    if (record === undefined) return submitRun(store, valid, input, { ...options, runId }); // expired between the two calls
    // Still queued: queue the job again, a no-op when it is there (same job id), a repair when an earlier submit died in between.
    if (record.state === "queued") await queue.add(JOB_CATALOG.runs.jobName, job, jobOptions);
    return { run_id: runId, attempt_id: record.attempt_id, state: record.state, created: false };
  }
  try {
    if (options.runId !== undefined) {
      // A finished job of an earlier run with this id (its record expired) would swallow the new job.
      const stale = await queue.getJob(runId);
      if (stale !== undefined && ((await stale.isCompleted()) || (await stale.isFailed()))) await stale.remove();
    }
    await queue.add(JOB_CATALOG.runs.jobName, job, jobOptions);
  } catch (error) {
    await records.discard(runId, attemptId).catch(() => false);
    throw error;
  }
  return { run_id: runId, attempt_id: attemptId, state: "queued", created: true };
}

/** JSON with object keys sorted at every level, so two requests that differ only in key order are the same. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, field]) => field !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, field]) => `${JSON.stringify(key)}:${canonicalJson(field)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** What a run was asked to be (its validated workflow, input, concurrency, policy), as a SHA-256 over canonical JSON. */
export function requestHash(job: RunJob): string {
  const { workflow, input, concurrency, policy } = job;
  return createHash("sha256").update(canonicalJson({ workflow, input, concurrency, policy })).digest("hex");
}
