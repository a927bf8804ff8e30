/**
 * The runner's wire contract (docs/spec.md §3, §4): lifecycle events, telemetry samples, the workflow definition,
 * and the job payloads of the `run-events` and `runs` queues (see JOB_CATALOG in queues.ts).
 *
 * Producers: packages/runner. Consumers: packages/worker (ClickHouse), the CLI (`followRun`), the run API.
 * Field names on the wire are snake_case, as in the void-box envelope docs/spec.md follows. The shapes whose JSON
 * schema the worker and the run API check (event envelope, samples, log lines, workflow, policy) are defined once,
 * as schemas, in run-schemas.ts, with their types derived from them; this file holds the names and bounds they use.
 */

// ---------------------------------------------------------------------------------------------------------
// Lifecycle events (docs/spec.md §3)
// ---------------------------------------------------------------------------------------------------------

/**
 * Every event type, with its `event_type_v2` name: the one place mapping dotted names to PascalCase.
 * Dotted names are past tense (something that happened), as the v2 names are.
 */
export const RUN_EVENT_V2_NAMES = {
  "run.started": "RunStarted",
  "stage.queued": "StageQueued",
  "stage.started": "StageStarted",
  "stage.completed": "StageSucceeded",
  "stage.failed": "StageFailed",
  "stage.skipped": "StageSkipped",
  "run.finished": "RunCompleted",
  "run.failed": "RunFailed",
  "run.cancelled": "RunCancelled",
} as const;

export type RunEventType = keyof typeof RUN_EVENT_V2_NAMES;
export type RunEventTypeV2 = (typeof RUN_EVENT_V2_NAMES)[RunEventType];
export const RUN_EVENT_TYPES = Object.keys(RUN_EVENT_V2_NAMES) as RunEventType[];

/** Exactly one of these ends each run attempt, and nothing follows it. */
export const TERMINAL_RUN_EVENT_TYPES = ["run.finished", "run.failed", "run.cancelled"] as const;
export type TerminalRunEventType = (typeof TERMINAL_RUN_EVENT_TYPES)[number];

/**
 * Why a run failed: a stage failed its last attempt; the run outlived its policy's run_timeout_secs; the workflow was refused when a runner took the job; the runner
 * itself erred; the runner executing it died or lost its lease (the run is failed, never re-run); or its queued job
 * vanished before any runner started it.
 */
export const RUN_FAILED_REASONS = ["stage_failed", "run_timed_out", "invalid_workflow", "runner_error", "runner_restarted", "job_lost"] as const;
export type RunFailedReason = (typeof RUN_FAILED_REASONS)[number];

/**
 * Payload of each event type. The docs/spec.md §3 table gives the required fields; the runner adds, on every event,
 * `workflow` (the workflow name) and, on every stage event, `driver`, so a consumer can roll an event up
 * (stage_stats: workflow, stage, driver, status) without joining it to other events.
 */
export interface RunEventPayloads {
  "run.started": { workflow: string; stage_count: number; concurrency: number };
  "stage.queued": { workflow: string; driver: string; depends_on: string[] };
  "stage.started": { workflow: string; driver: string; stage_attempt: number; max_attempts: number };
  "stage.completed": { workflow: string; driver: string; stage_attempt: number; duration_ms: number; exit_code: number };
  /**
   * One failed attempt. `will_retry` says whether another attempt follows, so the terminal failure of a stage
   * is the `stage.failed` with `will_retry: false`. `exit_code` is the process exit code, 128+signal number
   * when a signal killed it (SIGTERM 143, SIGKILL 137), and -1 when the run was cancelled or the process
   * could not be started.
   */
  "stage.failed": {
    workflow: string;
    driver: string;
    stage_attempt: number;
    duration_ms: number;
    exit_code: number;
    error: string;
    will_retry: boolean;
    timed_out: boolean;
    cancelled: boolean;
    /** allow_failure: this failure does not fail the run and does not skip dependents. */
    allowed_failure: boolean;
    /** Last bytes of the attempt's stderr (at most 1 KiB), when it wrote any. */
    stderr_tail?: string;
  };
  /** `stage_attempt` is 0: a skipped stage never started. */
  "stage.skipped": { workflow: string; driver: string; stage_attempt: number; reason: string };
  "run.finished": { workflow: string; duration_ms: number };
  /** `reason` says why, for the run record's terminal_reason (absent from runners before the run API). */
  "run.failed": { workflow: string; duration_ms: number; error: string; reason?: RunFailedReason };
  "run.cancelled": { workflow: string; duration_ms: number; reason: string };
}

export function isTerminalRunEvent(event: { event_type: string }): boolean {
  return (TERMINAL_RUN_EVENT_TYPES as readonly string[]).includes(event.event_type);
}

// ---------------------------------------------------------------------------------------------------------
// Stage output (docs/spec.md §6: run_logs)
// ---------------------------------------------------------------------------------------------------------

/** A line longer than this (UTF-8 bytes) is cut there and marked `truncated`. */
export const MAX_LOG_LINE_BYTES = 4096;
/**
 * Lines kept per stage attempt by default: the runner keeps the first RUNNER_LOG_HEAD_LINES (5000) and the last
 * RUNNER_LOG_TAIL_LINES (5000) of each stream, one `stderr` line marking the cut (packages/runner stage-output.ts).
 */
export const MAX_LOG_LINES_PER_ATTEMPT = 10_000;

// ---------------------------------------------------------------------------------------------------------
// Workflow definition (docs/spec.md §6a) and run policy
// ---------------------------------------------------------------------------------------------------------

/** Names of stages and workflows, and run ids: 1-128 letters, digits, "_", "." or "-", not starting with "." or "-". */
export const NAME_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$";

/** Bounds of each RunPolicy field (inclusive), shared by the API's schema (RUN_POLICY_SCHEMA) and the runner's checks. */
export const RUN_POLICY_LIMITS = {
  run_timeout_secs: { min: 1, max: 604_800 },
  stage_timeout_secs: { min: 1, max: 604_800 },
  stage_retries: { min: 0, max: 100 },
  kill_grace_secs: { min: 0, max: 3600 },
} as const;
