/**
 * The runner's wire contract as JSON Schemas (ajv, draft 2020-12 compatible): the run event envelope, telemetry
 * samples, stage log lines and the run policy of run-events.ts. The worker checks every `run-events` job against
 * them (queues.ts, payloadProblem), and the runner's OpenAPI document serves them as its schemas, so producers,
 * consumers and the API describe one shape.
 */
import { MAX_LOG_LINE_BYTES, RUN_EVENT_V2_NAMES, RUN_EVENT_TYPES, RUN_POLICY_LIMITS, type RunPolicy } from "./run-events.js";

const nullable = (type: string) => ({ type: [type, "null"] });

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
  },
} as const;

const POLICY_DESCRIPTIONS: Record<keyof RunPolicy, string> = {
  run_timeout_secs:
    "From when a runner starts the run: past it, running stages are stopped (stage.failed, timed_out), the others skipped, and the run fails with terminal_reason run_timed_out.",
  stage_timeout_secs: "Timeout of each attempt of a stage without its own timeout_secs.",
  stage_retries: "Retries of a stage without its own retries.",
  kill_grace_secs: "SIGTERM to SIGKILL delay when a stage is stopped; default the runner's RUNNER_STAGE_KILL_GRACE_MS.",
};

export const RUN_POLICY_SCHEMA = {
  type: "object",
  additionalProperties: false,
  description: "How the run executes: a limit for the whole run and defaults for stages that set none (as void-box's run policy).",
  properties: Object.fromEntries(
    (Object.keys(RUN_POLICY_LIMITS) as Array<keyof RunPolicy>).map((key) => [
      key,
      { type: "integer", minimum: RUN_POLICY_LIMITS[key].min, maximum: RUN_POLICY_LIMITS[key].max, description: POLICY_DESCRIPTIONS[key] },
    ]),
  ),
} as const;
