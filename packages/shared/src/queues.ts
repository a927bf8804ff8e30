/**
 * The job catalog shared by producers (ingest, runner) and consumers (worker): queue names, payloads and
 * job options in one place, so a producer and its consumer cannot drift apart.
 */
import type { JobsOptions } from "bullmq";
import type { CliInvocationEvent } from "./telemetry.js";
import type { RunEventsJob, RunJob } from "./run-events.js";

/** One accepted ingest request: its valid entries, enqueued as one job so the worker can batch many requests per insert. */
export interface ClientTelemetryJob {
  entries: CliInvocationEvent[];
  /** When ingest accepted the request (ms since epoch); the worker's queue-lag metric and the bench use it. */
  receivedAtMs: number;
}

/**
 * Retries with exponential backoff, 1 s doubling, 12 attempts: about 68 minutes in all (ClickHouse outages), then the
 * job stays in the failed set for an operator to retry.
 */
const DURABLE_JOB_OPTIONS: JobsOptions = {
  attempts: 12,
  backoff: { type: "exponential", delay: 1000 },
  removeOnComplete: true,
  removeOnFail: false,
};

export const JOB_CATALOG = {
  clientTelemetry: {
    queue: "client-telemetry",
    jobName: "cli_invocations",
    options: DURABLE_JOB_OPTIONS,
  },
  /** Runner lifecycle events and telemetry samples, many per job (one job per publisher flush). Consumers dedupe by event_id / (attempt_id, seq). */
  runEvents: {
    queue: "run-events",
    jobName: "run_events",
    options: DURABLE_JOB_OPTIONS,
  },
  /** Submitted runs; a runner's RunConsumer executes each. A failed run is a result, not a job failure, so no retries. Job id = run_id. */
  runs: {
    queue: "runs",
    jobName: "run",
    options: { attempts: 1, removeOnComplete: { age: 86_400, count: 10_000 }, removeOnFail: { age: 7 * 86_400 } } satisfies JobsOptions,
  },
} as const;

export interface JobPayloads {
  clientTelemetry: ClientTelemetryJob;
  runEvents: RunEventsJob;
  runs: RunJob;
}

export type JobKind = keyof typeof JOB_CATALOG;
