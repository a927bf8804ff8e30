/**
 * The runner's wire contract as JSON Schemas (ajv, draft 2020-12 compatible): the run event envelope, telemetry
 * samples, stage log lines and the run policy, and their TypeScript types, derived from the schemas (SchemaType).
 * The worker checks every `run-events` job against them (queues.ts, payloadProblem), and the runner's OpenAPI
 * document serves them as its schemas, so producers, consumers and the API describe one shape.
 */
import {
  MAX_LOG_LINE_BYTES,
  NAME_PATTERN,
  RUN_EVENT_V2_NAMES,
  RUN_EVENT_TYPES,
  RUN_POLICY_LIMITS,
  type RunEventPayloads,
  type RunEventType,
} from "./run-events.js";
import type { SchemaType } from "./schema-type.js";

const nullable = <T extends string>(type: T) => ({ type: [type, "null"] }) as const;

export const RUN_EVENT_SCHEMA = {
  type: "object",
  required: [
    "event_id",
    "run_id",
    "attempt_id",
    "seq",
    "ts_ms",
    "timestamp",
    "level",
    "event_type",
    "event_type_v2",
    "message",
    "stage_name",
    "group_id",
    "payload",
  ],
  properties: {
    event_id: { type: "string", description: "UUID v7; the from_event_id cursor." },
    run_id: { type: "string" },
    attempt_id: { type: "string" },
    seq: { type: "integer", minimum: 0 },
    ts_ms: { type: "integer" },
    timestamp: { type: "string", description: "RFC 3339, UTC." },
    level: { type: "string", enum: ["info", "warn", "error"] },
    event_type: { type: "string", enum: [...RUN_EVENT_TYPES] },
    event_type_v2: { type: "string", enum: Object.values(RUN_EVENT_V2_NAMES) },
    message: { type: "string" },
    stage_name: nullable("string"),
    group_id: nullable("string"),
    payload: { type: "object", description: "Per event type, see docs/spec.md §3." },
  },
} as const;

export const HOST_SAMPLE_SCHEMA = {
  type: "object",
  required: ["kind", "run_id", "attempt_id", "seq", "timestamp_ms", "stage_name", "host"],
  properties: {
    kind: { const: "host" },
    run_id: { type: "string" },
    attempt_id: { type: "string" },
    seq: { type: "integer", minimum: 1 },
    timestamp_ms: { type: "integer" },
    stage_name: { type: "string", description: "The running stages, comma-separated; empty when none runs." },
    host: {
      type: "object",
      required: ["rss_bytes", "cpu_percent", "io_read_bytes", "io_write_bytes"],
      properties: {
        rss_bytes: { type: "integer", minimum: 0 },
        cpu_percent: { type: "number", minimum: 0 },
        io_read_bytes: { type: "integer", minimum: 0 },
        io_write_bytes: { type: "integer", minimum: 0 },
      },
    },
  },
} as const;

export const STEP_HEARTBEAT_SCHEMA = {
  type: "object",
  required: ["kind", "run_id", "attempt_id", "seq", "timestamp_ms", "stage_name", "group_id", "stage_attempt", "heartbeat"],
  properties: {
    kind: { const: "heartbeat" },
    run_id: { type: "string" },
    attempt_id: { type: "string" },
    seq: { type: "integer", minimum: 1 },
    timestamp_ms: { type: "integer" },
    stage_name: { type: "string" },
    group_id: { type: "string" },
    stage_attempt: { type: "integer", minimum: 1 },
    heartbeat: {
      type: "object",
      required: [
        "elapsed_secs",
        "stdout_bytes",
        "stderr_bytes",
        "stdout_delta_bytes",
        "stderr_delta_bytes",
        "stagnant_heartbeats",
        "pid",
        "pid_alive",
        "output_state",
      ],
      properties: {
        elapsed_secs: { type: "number", minimum: 0 },
        stdout_bytes: { type: "integer", minimum: 0 },
        stderr_bytes: { type: "integer", minimum: 0 },
        stdout_delta_bytes: { type: "integer", minimum: 0 },
        stderr_delta_bytes: { type: "integer", minimum: 0 },
        stagnant_heartbeats: { type: "integer", minimum: 0 },
        pid: nullable("integer"),
        pid_alive: { type: "boolean" },
        output_state: { type: "string", enum: ["active", "quiet", "stagnant"] },
      },
    },
  },
} as const;

export const STAGE_LOG_LINE_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["run_id", "attempt_id", "seq", "timestamp_ms", "stage_name", "stage_attempt", "stream", "line", "truncated"],
  properties: {
    run_id: { type: "string" },
    attempt_id: { type: "string" },
    seq: { type: "integer", minimum: 1, description: "1-based per run attempt, in the order the runner read the lines." },
    timestamp_ms: { type: "integer" },
    stage_name: { type: "string" },
    stage_attempt: { type: "integer", minimum: 1 },
    stream: { type: "string", enum: ["stdout", "stderr"] },
    line: { type: "string", description: `Without its newline; cut at ${MAX_LOG_LINE_BYTES} bytes.` },
    truncated: { type: "boolean", description: "The line was longer and was cut." },
    invalid_utf8: {
      type: "boolean",
      description:
        "Set (true) when the bytes were not valid UTF-8: `line` then writes each byte that is not as \\xNN and each backslash doubled, so the exact bytes can be read back.",
    },
  },
} as const;

const ENV_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$";

export const STAGE_DEFINITION_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["name", "driver", "run"],
  properties: {
    name: { type: "string", pattern: NAME_PATTERN },
    driver: { type: "string", description: "shell (sh -c run) or node (a JS file or inline script)" },
    run: { type: "string", minLength: 1 },
    depends_on: { type: "array", items: { type: "string" } },
    retries: { type: "integer", minimum: 0, maximum: 100, description: "Extra attempts after the first failure." },
    retry: {
      type: "object",
      additionalProperties: false,
      description:
        "How `retries` are made: the wait before retry n is delay_secs × backoff_factor^(n-1), at most max_delay_secs; with on_exit_codes, only an attempt that exited with one of them is retried (not a timeout, not one that could not start).",
      properties: {
        delay_secs: { type: "number", minimum: 0, maximum: 3600, description: "Wait before the first retry; default 0." },
        backoff_factor: {
          type: "number",
          minimum: 1,
          maximum: 10,
          description: "Each later wait is this many times the one before; default 1 (the same wait).",
        },
        max_delay_secs: { type: "number", minimum: 0, maximum: 86400, description: "The longest wait; default 3600." },
        on_exit_codes: {
          type: "array",
          minItems: 1,
          maxItems: 256,
          uniqueItems: true,
          items: { type: "integer", minimum: 0, maximum: 255 },
          description: "Exit codes worth retrying; any other failure is final.",
        },
      },
    },
    timeout_secs: { type: "number", exclusiveMinimum: 0 },
    allow_failure: { type: "boolean", description: "A failure does not fail the run, and dependents still run." },
    env: { type: "object", additionalProperties: { type: "string" } },
  },
} as const;

export const WORKFLOW_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["name", "stages"],
  properties: {
    name: { type: "string", pattern: NAME_PATTERN },
    concurrency: { type: "integer", minimum: 1, maximum: 1000, description: "Most stages running at once in one run of this workflow." },
    max_concurrent_runs: {
      type: "integer",
      minimum: 1,
      maximum: 1000,
      description: "Most runs of this workflow (by name) running at once across the fleet; the others wait queued, their waiting_reason saying why.",
    },
    secrets: {
      type: "object",
      description:
        "Variables every stage gets, read on the runner executing the run: {env: NAME} from the runner's environment (never flowmeter's configuration: RUNNER_*, REDIS_URL, QUEUE_PREFIX, …) or {file: path}. Their values are masked (***) in log lines and events.",
      propertyNames: { pattern: ENV_NAME_PATTERN },
      additionalProperties: {
        oneOf: [
          { type: "object", additionalProperties: false, required: ["env"], properties: { env: { type: "string", pattern: ENV_NAME_PATTERN } } },
          { type: "object", additionalProperties: false, required: ["file"], properties: { file: { type: "string", minLength: 1 } } },
        ],
      },
    },
    stages: { type: "array", minItems: 1, items: STAGE_DEFINITION_SCHEMA },
  },
} as const;

/** One RunPolicy field: an integer within RUN_POLICY_LIMITS. */
const policyField = (key: keyof typeof RUN_POLICY_LIMITS, description: string) =>
  ({ type: "integer", minimum: RUN_POLICY_LIMITS[key].min, maximum: RUN_POLICY_LIMITS[key].max, description }) as const;

export const RUN_POLICY_SCHEMA = {
  type: "object",
  additionalProperties: false,
  description: "How the run executes: a limit for the whole run and defaults for stages that set none (as void-box's run policy).",
  properties: {
    run_timeout_secs: policyField(
      "run_timeout_secs",
      "From when a runner starts the run: past it, running stages are stopped (stage.failed, timed_out), the others skipped, and the run fails with terminal_reason run_timed_out.",
    ),
    stage_timeout_secs: policyField("stage_timeout_secs", "Timeout of each attempt of a stage without its own timeout_secs."),
    stage_retries: policyField("stage_retries", "Retries of a stage without its own retries."),
    kill_grace_secs: policyField("kill_grace_secs", "SIGTERM to SIGKILL delay when a stage is stopped; default the runner's RUNNER_STAGE_KILL_GRACE_MS."),
  },
} as const;

// ---------------------------------------------------------------------------------------------------------
// Types derived from the schemas (field docs: docs/spec.md §3, §4, §6)
// ---------------------------------------------------------------------------------------------------------

/**
 * How one run executes, chosen when it is submitted (`policy` in POST /v1/runs), as void-box threads a run policy
 * through its runtime: a limit for the whole run and defaults for stages that set none. Every field is optional.
 */
export type RunPolicy = SchemaType<typeof RUN_POLICY_SCHEMA>;

/** One host sample per run per interval (default 1 s); `seq` is 1-based per run attempt, shared with heartbeats. */
export type HostSample = SchemaType<typeof HOST_SAMPLE_SCHEMA>;
/**
 * Host metrics of a run. Cumulative counters (io_*) are stored as sent; roll them up with deltas or max, never sums.
 * cpu_percent: 100 = one core fully busy over the sample interval; may exceed 100 on several cores.
 */
export type HostMetrics = HostSample["host"];
/** One heartbeat per running stage per interval (default 30 s); (attempt_id, seq) is the dedup key. */
export type StepHeartbeat = SchemaType<typeof STEP_HEARTBEAT_SCHEMA>;
/**
 * A running stage's liveness (seed 002). Byte counts are cumulative for the attempt; deltas are since the previous
 * heartbeat. output_state: active, output grew since the previous heartbeat; quiet, no growth, fewer than N
 * heartbeats; stagnant, no growth for N or more.
 */
export type HeartbeatMetrics = StepHeartbeat["heartbeat"];
export type OutputState = HeartbeatMetrics["output_state"];
export type TelemetrySample = HostSample | StepHeartbeat;

/** One line a stage attempt wrote on stdout or stderr, without its newline; (attempt_id, seq) is the dedup key. */
export type StageLogLine = SchemaType<typeof STAGE_LOG_LINE_SCHEMA>;

type RunEventEnvelope = SchemaType<typeof RUN_EVENT_SCHEMA>;
export type RunEventLevel = RunEventEnvelope["level"];

/**
 * The envelope of one event of type T (docs/spec.md §3, as in void-box): the schema's fields, with the event type,
 * its v2 name and its payload (RunEventPayloads) narrowed to T. `event_id` is a UUID v7, the resume cursor of
 * `GET /v1/runs/{id}/events?from_event_id=` and the dedup key downstream; a run re-delivered after a runner crash
 * gets a new `attempt_id` and continues `seq` (0-based, strictly increasing per run); `group_id` is `g<level>`.
 */
export type RunEventOf<T extends RunEventType> = Omit<RunEventEnvelope, "event_type" | "event_type_v2" | "payload"> & {
  event_type: T;
  event_type_v2: (typeof RUN_EVENT_V2_NAMES)[T];
  payload: RunEventPayloads[T];
};

/** Any run event, discriminated by `event_type`. */
export type RunEvent = { [T in RunEventType]: RunEventOf<T> }[RunEventType];

/** A workflow (docs/spec.md §6a), as POST /v1/runs takes it inline and the runner reads it from a file. */
export type WorkflowDefinition = SchemaType<typeof WORKFLOW_SCHEMA>;
/** One stage; `driver` is one registered in the runner (validate-workflow.ts checks it). */
export type StageDefinition = WorkflowDefinition["stages"][number];
/**
 * Where a workflow secret's value comes from, on the runner executing the run: a variable of the runner's own
 * environment (never one of flowmeter's configuration), or a file (relative paths from the runner's working
 * directory). The value itself is never part of the workflow.
 */
export type WorkflowSecret = NonNullable<WorkflowDefinition["secrets"]>[string];

/** A job of the `run-events` queue: everything one publisher flush carried, from any number of runs. */
export interface RunEventsJob {
  events: RunEvent[];
  samples: TelemetrySample[];
  /** Absent in jobs of runners older than stage logs. */
  logs?: StageLogLine[];
  /** When the batch was handed to the queue (ms since epoch); a replayed spool batch carries its replay time. */
  producedAtMs: number;
}

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
