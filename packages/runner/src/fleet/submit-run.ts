import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { JOB_CATALOG, uuidV7, type RunJob, type WorkflowDefinition } from "@flowmeter/shared";
import { BUILT_IN_DRIVER_NAMES } from "../drivers/driver-registry.js";
import { validateRunConcurrency, validateWorkflow } from "../workflow/validate-workflow.js";

export type RunQueue = Queue<RunJob>;

/** The `runs` queue on `connection` (a producer connection: createRedis(url, "producer")); the caller closes both. */
export function createRunQueue(connection: Redis, prefix: string): RunQueue {
  return new Queue<RunJob>(JOB_CATALOG.runs.queue, { connection, prefix });
}

export interface SubmitRunOptions {
  /** Default: a new UUID v7. The job id is the run id, so submitting the same run id twice queues it once. */
  runId?: string;
  /** Stages at once for this run; overrides the workflow's `concurrency`. */
  concurrency?: number;
  /** Driver names to validate against; default: the built-in drivers. */
  drivers?: readonly string[];
}

/**
 * Validates a workflow and queues a run of it for the runner fleet. Throws WorkflowValidationError before
 * queueing anything when the workflow is invalid. `input` reaches every stage as JSON in FLOWMETER_INPUT.
 */
export async function submitRun(queue: RunQueue, workflow: WorkflowDefinition | unknown, input?: unknown, options: SubmitRunOptions = {}): Promise<{ run_id: string }> {
  const valid = validateWorkflow(workflow, { drivers: options.drivers ?? BUILT_IN_DRIVER_NAMES });
  validateRunConcurrency(options.concurrency);
  const runId = options.runId ?? uuidV7();
  const job: RunJob = {
    run_id: runId,
    workflow: valid,
    ...(input === undefined ? {} : { input }),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    submittedAtMs: Date.now(),
  };
  await queue.add(JOB_CATALOG.runs.jobName, job, { ...JOB_CATALOG.runs.options, jobId: runId });
  return { run_id: runId };
}
