/**
 * The runner's wire contract (docs/spec.md §3, §4): lifecycle events, telemetry samples, the workflow definition,
 * and the job payloads of the `run-events` and `runs` queues (see JOB_CATALOG in queues.ts).
 *
 * Producers: packages/runner. Consumers: packages/worker (ClickHouse), the CLI (`followRun`), the run API.
 * Field names on the wire are snake_case, as in the void-box envelope docs/spec.md follows.
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

export type RunEventLevel = "info" | "warn" | "error";

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

/** The envelope of one event of type T (docs/spec.md §3, as in void-box). */
export interface RunEventOf<T extends RunEventType> {
  /** UUID v7; unique, the resume cursor of `GET /v1/runs/{id}/events?from_event_id=`, and the dedup key downstream. */
  event_id: string;
  run_id: string;
  /** One execution of the run (a run re-delivered after a runner crash gets a new attempt_id and continues seq). */
  attempt_id: string;
  /** 0-based, strictly increasing per run. */
  seq: number;
  ts_ms: number;
  /** RFC 3339, UTC, milliseconds. */
  timestamp: string;
  level: RunEventLevel;
  event_type: T;
  event_type_v2: (typeof RUN_EVENT_V2_NAMES)[T];
  message: string;
  /** null on run events. */
  stage_name: string | null;
  /** `g<level>`, level = longest dependency path from a root stage; null on run events. */
  group_id: string | null;
  payload: RunEventPayloads[T];
}

/** Any run event, discriminated by `event_type`. */
export type RunEvent = { [T in RunEventType]: RunEventOf<T> }[RunEventType];

export function isTerminalRunEvent(event: Pick<RunEvent, "event_type">): boolean {
  return (TERMINAL_RUN_EVENT_TYPES as readonly string[]).includes(event.event_type);
}

// ---------------------------------------------------------------------------------------------------------
// Telemetry samples (docs/spec.md §4)
// ---------------------------------------------------------------------------------------------------------

/**
 * Host metrics of a run. Cumulative counters (io_*) are stored as sent; roll them up with deltas or max,
 * never sums. The runner documents which processes a sample covers (packages/runner/README.md).
 */
export interface HostMetrics {
  rss_bytes: number;
  /** 100 = one core fully busy over the sample interval; may exceed 100 on several cores. */
  cpu_percent: number;
  io_read_bytes: number;
  io_write_bytes: number;
}

export type OutputState = "active" | "quiet" | "stagnant";

/** A running stage's liveness (seed 002). Byte counts are cumulative for the attempt; deltas are since the previous heartbeat. */
export interface HeartbeatMetrics {
  /** Seconds since the attempt started (millisecond precision). */
  elapsed_secs: number;
  stdout_bytes: number;
  stderr_bytes: number;
  stdout_delta_bytes: number;
  stderr_delta_bytes: number;
  /** Consecutive heartbeats without output growth (0 when the last interval had output). */
  stagnant_heartbeats: number;
  pid: number | null;
  pid_alive: boolean;
  /** active: output grew since the previous heartbeat; quiet: no growth, fewer than N heartbeats; stagnant: no growth for N or more. */
  output_state: OutputState;
}

interface SampleBase {
  run_id: string;
  attempt_id: string;
  /** 1-based per run attempt, shared by host samples and heartbeats; (attempt_id, seq) is the dedup key. */
  seq: number;
  timestamp_ms: number;
}

/** One host sample per run per interval (default 1 s). */
export interface HostSample extends SampleBase {
  kind: "host";
  /** The stages running at sample time, comma-separated in start order; "" when none runs. */
  stage_name: string;
  host: HostMetrics;
}

/** One heartbeat per running stage per interval (default 30 s). */
export interface StepHeartbeat extends SampleBase {
  kind: "heartbeat";
  stage_name: string;
  group_id: string;
  stage_attempt: number;
  heartbeat: HeartbeatMetrics;
}

export type TelemetrySample = HostSample | StepHeartbeat;

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

/** One line a stage attempt wrote on stdout or stderr, without its newline. */
export interface StageLogLine {
  run_id: string;
  attempt_id: string;
  /** 1-based per run attempt, in the order the runner read the lines; (attempt_id, seq) is the dedup key. */
  seq: number;
  timestamp_ms: number;
  stage_name: string;
  stage_attempt: number;
  stream: "stdout" | "stderr";
  line: string;
  /** The line was longer than MAX_LOG_LINE_BYTES and was cut. */
  truncated: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Workflow definition (docs/spec.md §6a) and queue payloads
// ---------------------------------------------------------------------------------------------------------

export interface StageDefinition {
  name: string;
  /** A driver registered in the runner: `shell` (`sh -c run`), `node` (a JS file path or an inline script). */
  driver: string;
  run: string;
  depends_on?: string[];
  /** Extra attempts after the first failure. */
  retries?: number;
  timeout_secs?: number;
  /** A failure does not fail the run, and dependents still run. */
  allow_failure?: boolean;
  env?: Record<string, string>;
}

/**
 * Where a workflow secret's value comes from, on the runner executing the run: a variable of the runner's own
 * environment (never one of flowmeter's configuration), or a file (relative paths from the runner's working
 * directory). The value itself is never part of the workflow.
 */
export type WorkflowSecret = { env: string } | { file: string };

export interface WorkflowDefinition {
  name: string;
  /** Most stages running at once in one run of this workflow. */
  concurrency?: number;
  /** Variables every stage gets, by name; their values are masked (`***`) in log lines and events. */
  secrets?: Record<string, WorkflowSecret>;
  stages: StageDefinition[];
}

/** A job of the `run-events` queue: everything one publisher flush carried, from any number of runs. */
export interface RunEventsJob {
  events: RunEvent[];
  samples: TelemetrySample[];
  /** Absent in jobs of runners older than stage logs. */
  logs?: StageLogLine[];
  /** When the batch was handed to the queue (ms since epoch); a replayed spool batch carries its replay time. */
  producedAtMs: number;
}

/**
 * How one run executes, chosen when it is submitted (`policy` in POST /v1/runs), as void-box threads a run policy
 * through its runtime: a limit for the whole run and defaults for stages that set none. Every field is optional.
 */
export interface RunPolicy {
  /** The whole run: past it, running stages are stopped, the others skipped, and the run fails (run_timed_out). */
  run_timeout_secs?: number;
  /** Timeout of each attempt of a stage without its own `timeout_secs`. */
  stage_timeout_secs?: number;
  /** Retries of a stage without its own `retries`. */
  stage_retries?: number;
  /** SIGTERM → SIGKILL delay when a stage is stopped (timeout, cancel); default the runner's RUNNER_STAGE_KILL_GRACE_MS. */
  kill_grace_secs?: number;
}

/** Bounds of each RunPolicy field (inclusive), shared by the API's schema and the runner's checks. */
export const RUN_POLICY_LIMITS = {
  run_timeout_secs: { min: 1, max: 604_800 },
  stage_timeout_secs: { min: 1, max: 604_800 },
  stage_retries: { min: 0, max: 100 },
  kill_grace_secs: { min: 0, max: 3600 },
} as const satisfies Record<keyof RunPolicy, { min: number; max: number }>;

/** A job of the `runs` queue: one submitted run, executed by whichever runner takes it. */
export interface RunJob {
  run_id: string;
  workflow: WorkflowDefinition;
  /** Handed to every stage as JSON in FLOWMETER_INPUT. */
  input?: unknown;
  /** Overrides the workflow's `concurrency` for this run. */
  concurrency?: number;
  policy?: RunPolicy;
  submittedAtMs: number;
}
