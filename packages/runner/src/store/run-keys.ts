/**
 * The runner's Redis layout, under the queue prefix (QUEUE_PREFIX), so one prefix holds a deployment's queues and
 * runs. Every key of a run is built here; run-store.ts is the one module that reads and writes them.
 *
 * Per run, `<prefix>:run:<run_id>:…`:
 * - `record`: hash, the run's state, attempt, owner, lease and terminal reason (run-records.ts);
 * - `events`: stream, one entry per lifecycle event, entry id `<seq + 1>-0` (run-event-store.ts);
 * - `event-ids`: hash event_id → seq, to resume from an event_id;
 * - `terminal`: the id of the run's terminal event, once stored;
 * - `cancel`: the reason, once a cancel was asked for (run-store.ts);
 * - `samples`: stream of telemetry samples, entry id `<seq>-0` (run-stream.ts);
 * - `logs`: stream of stage output lines, entry id `<seq>-0` (run-stream.ts);
 * - `request`: what the run was submitted with (workflow, input, concurrency, policy), JSON, to re-run it; it expires
 *   with the record.
 * Per prefix: `run-index:active` and `run-index:terminal` (sorted sets listing runs; not `runs:…`, which BullMQ's
 * runs queue owns), the pub/sub channel `runner:cancel`, and per workflow with `max_concurrent_runs`
 * `workflow-running:<name>` (set of its runs claimed running; members no longer running are dropped at each claim).
 */
export type RunKeySuffix = "events" | "event-ids" | "terminal" | "cancel" | "record" | "samples" | "logs" | "request";

export const DEFAULT_EVENT_RETENTION_SECONDS = 7 * 86_400;
export const DEFAULT_MAX_EVENTS_PER_RUN = 10_000;

/** Where a prefix's runs live and how long they are kept: resolved once (runLimits), shared by the store's parts. */
export interface RunLimits {
  prefix: string;
  /** How long a run's keys live after its last write. */
  retentionSeconds: number;
  /** Events kept per run (~, oldest trimmed). */
  maxEventsPerRun: number;
}

export function runLimits(options: { prefix: string; retentionSeconds?: number; maxEventsPerRun?: number }): RunLimits {
  return {
    prefix: options.prefix,
    retentionSeconds: options.retentionSeconds ?? DEFAULT_EVENT_RETENTION_SECONDS,
    maxEventsPerRun: options.maxEventsPerRun ?? DEFAULT_MAX_EVENTS_PER_RUN,
  };
}

export function runKey(prefix: string, runId: string, suffix: RunKeySuffix): string {
  return `${prefix}:run:${runId}:${suffix}`;
}

/** The per-prefix indexes of run records: active (queued, running) by creation time, terminal by end time. */
export function runIndexKey(prefix: string, which: "active" | "terminal"): string {
  return `${prefix}:run-index:${which}`;
}

/** The runs of a workflow claimed running, for its `max_concurrent_runs` (the CLAIM script). */
export function workflowRunningKey(prefix: string, workflow: string): string {
  return `${prefix}:workflow-running:${workflow}`;
}

/** The pub/sub channel every runner of a prefix listens on for cancel requests. */
export function cancelChannel(prefix: string): string {
  return `${prefix}:runner:cancel`;
}

/** The keys the append and end-run scripts take, in their order. */
export function eventScriptKeys(prefix: string, runId: string): string[] {
  return [
    runKey(prefix, runId, "events"),
    runKey(prefix, runId, "event-ids"),
    runKey(prefix, runId, "record"),
    runIndexKey(prefix, "active"),
    runIndexKey(prefix, "terminal"),
    runKey(prefix, runId, "terminal"),
  ];
}
