/**
 * Bodies of the run API (docs/spec.md §5), served by every runner process: each a JSON schema, the one
 * definition, with its TypeScript type derived from it (SchemaType). The runner's OpenAPI document
 * (`src/http/openapi.ts`) serves these objects as its component schemas and validates requests with them, and its
 * tests check real answers against them.
 */
import { NAME_PATTERN, RUN_EVENT_TYPES, RUN_EVENT_V2_NAMES, RUN_FAILED_REASONS } from "./run-events.js";
import {
  HOST_SAMPLE_SCHEMA,
  RUN_EVENT_SCHEMA,
  RUN_POLICY_SCHEMA,
  STAGE_LOG_LINE_SCHEMA,
  STEP_HEARTBEAT_SCHEMA,
  WORKFLOW_SCHEMA,
  type RunEvent,
} from "./run-schemas.js";
import type { SchemaType } from "./schema-type.js";

/** queued: accepted, no runner has taken it; running: a runner holds its lease; the other three are terminal. */
export const RUN_STATES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
export type RunState = (typeof RUN_STATES)[number];
export const ACTIVE_RUN_STATES = ["queued", "running"] as const satisfies readonly RunState[];
export const TERMINAL_RUN_STATES = ["succeeded", "failed", "cancelled"] as const satisfies readonly RunState[];
export type TerminalRunState = (typeof TERMINAL_RUN_STATES)[number];

export function isTerminalRunState(state: string): state is TerminalRunState {
  return (TERMINAL_RUN_STATES as readonly string[]).includes(state);
}

/** Why a run ended: succeeded and cancelled as its state says, or why it failed (one name per outcome: the state's). */
export const TERMINAL_REASONS = ["succeeded", "cancelled", "failed", ...RUN_FAILED_REASONS] as const;
export type TerminalReason = (typeof TERMINAL_REASONS)[number];

/** `?api_version=`: v2 answers PascalCase event types (RUN_EVENT_V2_NAMES) wherever an event type appears. */
export const API_VERSIONS = ["v1", "v2"] as const;
export type ApiVersion = (typeof API_VERSIONS)[number];

export const STAGE_STATUSES = ["queued", "running", "succeeded", "failed", "skipped"] as const;
export type StageStatus = (typeof STAGE_STATUSES)[number];

/** A cancel reason longer than this is refused. */
export const MAX_CANCEL_REASON_CHARS = 1000;

const nullable = <T extends string>(type: T) => ({ type: [type, "null"] }) as const;
const DATE_TIME = { type: "string", format: "date-time" } as const;
const NULLABLE_DATE_TIME = { type: ["string", "null"], format: "date-time" } as const;

export const RUN_STATE_SCHEMA = { type: "string", enum: RUN_STATES } as const;
/** An event type as the API answers it: the dotted name, or the PascalCase one with api_version=v2. */
export const EVENT_TYPE_SCHEMA = { type: "string", enum: [...RUN_EVENT_TYPES, ...Object.values(RUN_EVENT_V2_NAMES)] } as const;

/** One run, as `GET /v1/runs/{id}` (and each item of the list) answers it. Times are RFC 3339, UTC. */
export const RUN_VIEW_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: [
    "run_id",
    "attempt_id",
    "state",
    "workflow",
    "created_at",
    "started_at",
    "ended_at",
    "runner_id",
    "heartbeat_at",
    "lease_expires_at",
    "terminal_reason",
    "error",
    "cancel_reason",
    "policy",
    "rerun_of",
    "waiting_reason",
    "last_event",
  ],
  properties: {
    run_id: { type: "string" },
    attempt_id: { type: "string", description: "The run's one execution attempt (a re-run is a new run, with rerun_of)." },
    state: RUN_STATE_SCHEMA,
    workflow: { type: "string" },
    created_at: DATE_TIME,
    started_at: NULLABLE_DATE_TIME,
    ended_at: NULLABLE_DATE_TIME,
    runner_id: { ...nullable("string"), description: "The runner process that took the run (host-pid-random)." },
    heartbeat_at: { ...NULLABLE_DATE_TIME, description: "Last lease renewal by that runner." },
    lease_expires_at: { ...NULLABLE_DATE_TIME, description: "Past this, a running run is failed with terminal_reason runner_restarted." },
    terminal_reason: { type: ["string", "null"], enum: [...TERMINAL_REASONS, null] },
    error: { ...nullable("string"), description: "run.failed error, or null." },
    cancel_reason: { ...nullable("string"), description: "Set once a cancel was asked for (the first reason wins)." },
    policy: { oneOf: [{ type: "null" }, RUN_POLICY_SCHEMA], description: "The policy the run was submitted with." },
    rerun_of: { ...nullable("string"), description: "The run this one re-runs (POST /v1/runs/{run_id}/rerun), or null." },
    waiting_reason: {
      ...nullable("string"),
      description: "While queued: why a runner that took it did not start it (its workflow's max_concurrent_runs are running); null otherwise.",
    },
    last_event: {
      description: "The latest stored event; event_type is PascalCase with api_version=v2.",
      oneOf: [
        { type: "null" },
        {
          type: "object",
          additionalProperties: false,
          required: ["event_id", "seq", "event_type"],
          properties: { event_id: { type: "string" }, seq: { type: "integer", minimum: 0 }, event_type: EVENT_TYPE_SCHEMA },
        },
      ],
    },
  },
} as const;
export type RunView = SchemaType<typeof RUN_VIEW_SCHEMA>;

export const RUN_LIST_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["runs", "next_cursor"],
  properties: {
    runs: { type: "array", items: RUN_VIEW_SCHEMA },
    next_cursor: { ...nullable("string"), description: "Pass as cursor for the next page; null on the last page." },
  },
} as const;
export type RunListResponse = SchemaType<typeof RUN_LIST_SCHEMA>;

export const CREATE_RUN_REQUEST_SCHEMA = {
  type: "object",
  additionalProperties: false,
  oneOf: [{ required: ["workflow"] }, { required: ["file"] }],
  properties: {
    workflow: WORKFLOW_SCHEMA,
    file: {
      type: "string",
      minLength: 1,
      description: "A YAML or JSON workflow file under the runner's RUNNER_WORKFLOWS_DIR; paths leaving it are refused.",
    },
    input: { description: "Any JSON; every stage gets it in FLOWMETER_INPUT." },
    run_id: { type: "string", pattern: NAME_PATTERN, description: "Idempotency key; default a new UUID v7." },
    concurrency: { type: "integer", minimum: 1, maximum: 1000, description: "Stages at once for this run (overrides the workflow's)." },
    policy: RUN_POLICY_SCHEMA,
  },
} as const;
/**
 * Exactly one of `workflow` and `file`. The routes check `workflow` with the runner's validateWorkflow (which names
 * stage and field and knows the runner's drivers), not with the schema, so it is `unknown` until then.
 */
export type CreateRunRequest = Omit<SchemaType<typeof CREATE_RUN_REQUEST_SCHEMA>, "workflow"> & { workflow?: unknown };

export const CREATE_RUN_RESPONSE_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["run_id", "attempt_id", "state"],
  properties: { run_id: { type: "string" }, attempt_id: { type: "string" }, state: RUN_STATE_SCHEMA },
} as const;
export type CreateRunResponse = SchemaType<typeof CREATE_RUN_RESPONSE_SCHEMA>;

export const CANCEL_RUN_REQUEST_SCHEMA = {
  type: "object",
  additionalProperties: false,
  properties: { reason: { type: "string", minLength: 1, maxLength: MAX_CANCEL_REASON_CHARS, pattern: "\\S", description: "Not blank." } },
} as const;
export type CancelRunRequest = SchemaType<typeof CANCEL_RUN_REQUEST_SCHEMA>;

/** A run event as the events endpoint answers it: with api_version=v2 `event_type` is the PascalCase name. */
export const RUN_EVENT_VIEW_SCHEMA = {
  ...RUN_EVENT_SCHEMA,
  properties: {
    ...RUN_EVENT_SCHEMA.properties,
    timestamp: DATE_TIME,
    event_type: { ...EVENT_TYPE_SCHEMA, description: "Dotted name; the PascalCase one with api_version=v2." },
  },
} as const;
/** The schema's envelope with each event type's payload (RunEvent), and either name of the event type. */
export type RunEventView = Omit<RunEvent, "event_type"> & { event_type: SchemaType<typeof EVENT_TYPE_SCHEMA> };

export const RUN_EVENTS_PAGE_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["run_id", "events", "next_from_event_id", "has_more"],
  properties: {
    run_id: { type: "string" },
    events: { type: "array", items: RUN_EVENT_VIEW_SCHEMA },
    next_from_event_id: {
      ...nullable("string"),
      description: "Pass as from_event_id to read on (the last event returned; the cursor given when none was); null when the run has no events yet.",
    },
    has_more: { type: "boolean", description: "More events are stored after this page." },
  },
} as const;
export type RunEventsResponse = Omit<SchemaType<typeof RUN_EVENTS_PAGE_SCHEMA>, "events"> & { events: RunEventView[] };

/** One stage of a run, folded from its events (the latest attempt's figures). */
export const STAGE_VIEW_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["stage_name", "group_id", "depends_on", "driver", "status", "stage_attempt", "started_at", "completed_at", "duration_ms", "exit_code"],
  properties: {
    stage_name: { type: "string" },
    group_id: nullable("string"),
    depends_on: { type: "array", items: { type: "string" }, description: "From stage.queued; [] when that event is not stored." },
    driver: nullable("string"),
    status: { type: "string", enum: STAGE_STATUSES },
    stage_attempt: { type: "integer", minimum: 0 },
    started_at: NULLABLE_DATE_TIME,
    completed_at: NULLABLE_DATE_TIME,
    duration_ms: { ...nullable("integer"), minimum: 0 },
    exit_code: nullable("integer"),
  },
} as const;
export type StageView = SchemaType<typeof STAGE_VIEW_SCHEMA>;

export const RUN_STAGES_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["run_id", "attempt_id", "state", "stages"],
  properties: { run_id: { type: "string" }, attempt_id: { type: "string" }, state: RUN_STATE_SCHEMA, stages: { type: "array", items: STAGE_VIEW_SCHEMA } },
} as const;
export type RunStagesResponse = SchemaType<typeof RUN_STAGES_SCHEMA>;

export const RUN_TELEMETRY_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["run_id", "attempt_id", "next_seq", "samples"],
  properties: {
    run_id: { type: "string" },
    attempt_id: { type: "string" },
    next_seq: { type: "integer", minimum: 0, description: "Pass as from_seq to read on: one past the last sample looked at." },
    samples: { type: "array", items: { oneOf: [HOST_SAMPLE_SCHEMA, STEP_HEARTBEAT_SCHEMA] } },
  },
} as const;
export type RunTelemetryResponse = SchemaType<typeof RUN_TELEMETRY_SCHEMA>;

export const RUN_LOGS_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["run_id", "attempt_id", "next_seq", "lines"],
  properties: {
    run_id: { type: "string" },
    attempt_id: { type: "string" },
    next_seq: { type: "integer", minimum: 0, description: "Pass as from_seq to read on (also to follow a running stage)." },
    lines: { type: "array", items: STAGE_LOG_LINE_SCHEMA },
  },
} as const;
export type RunLogsResponse = SchemaType<typeof RUN_LOGS_SCHEMA>;
