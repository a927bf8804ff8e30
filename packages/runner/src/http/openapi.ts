/**
 * The runner's HTTP API as OpenAPI 3.1, served at `GET /v1/openapi.json`: the one description of it. The routes
 * validate every request's query and body with these schemas (api-validation.ts); the schemas are JSON Schema
 * 2020-12 and mirror the types in @flowmeter/shared (run-api.ts, run-events.ts), with bounds from api-limits.ts and
 * shared constants. run-api.integration.test.ts checks every documented operation's real answers (status and body)
 * against this document with ajv, and every answer it receives against the status list here.
 */
import {
  ERROR_CODES,
  HOST_SAMPLE_SCHEMA,
  RUN_EVENT_TYPES,
  RUN_EVENT_V2_NAMES,
  RUN_FAILED_REASONS,
  RUN_EVENT_SCHEMA,
  RUN_POLICY_SCHEMA,
  RUN_STATES,
  STAGE_LOG_LINE_SCHEMA,
  STAGE_STATUSES,
  STEP_HEARTBEAT_SCHEMA,
} from "@flowmeter/shared";
import {
  EVENTS_LIMIT,
  LIST_LIMIT,
  LOGS_LIMIT,
  MAX_BODY_NESTING_DEPTH,
  MAX_CANCEL_REASON_CHARS,
  MAX_REQUEST_BODY_BYTES,
  TELEMETRY_LIMIT,
} from "./api-limits.js";

const json = (schema: object) => ({ "application/json": { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({ description, content: json(ref("Error")) });
const nullable = (type: string, extra: object = {}) => ({ type: [type, "null"], ...extra });
const dateTime = { type: "string", format: "date-time" };
const nullableDateTime = { type: ["string", "null"], format: "date-time" };

/** Answers every run route may give besides its own. */
const RUN_ERRORS = {
  "401": { $ref: "#/components/responses/Unauthorized" },
  default: { $ref: "#/components/responses/Unavailable" },
};

const limitParameter = (bounds: { default: number; max: number }) => ({
  name: "limit",
  in: "query",
  required: false,
  schema: { type: "integer", minimum: 1, maximum: bounds.max, default: bounds.default },
});

export const OPENAPI_DOCUMENT = {
  openapi: "3.1.0",
  info: {
    title: "flowmeter runner API",
    version: "1.0.0",
    description:
      "Served by every runner process; state lives in Redis, so all runners of a deployment answer alike. Errors are always " +
      "{code, message, retryable} (docs/spec.md §5): unknown routes answer 404 NOT_FOUND, a known path asked with another method 405 " +
      "(code NOT_FOUND, with Allow), a body over the limit 413 PAYLOAD_TOO_LARGE, Redis away 503 UNAVAILABLE (Retry-After). " +
      "The /v1/runs routes need `Authorization: Bearer <token>` when the runner has RUNNER_API_TOKENS.",
  },
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    parameters: {
      RunId: { name: "run_id", in: "path", required: true, schema: { type: "string" } },
      ApiVersion: {
        name: "api_version",
        in: "query",
        required: false,
        description: "v2: event types are the PascalCase names (RunStarted, StageSucceeded, …) wherever an event type appears.",
        schema: { type: "string", enum: ["v1", "v2"], default: "v1" },
      },
    },
    responses: {
      BadRequest: errorResponse(
        `INVALID_PARAMS (bad query, body or path; malformed JSON; a body nested deeper than ${MAX_BODY_NESTING_DEPTH} levels), or INVALID_SPEC (the workflow is invalid; the message names stage and field)`,
      ),
      UnsupportedMediaType: errorResponse("INVALID_PARAMS: a request body whose Content-Type is not application/json (UTF-8)"),
      Unauthorized: {
        description: "UNAUTHORIZED: missing or wrong bearer token",
        headers: { "WWW-Authenticate": { schema: { type: "string" } } },
        content: json(ref("Error")),
      },
      NotFound: errorResponse("NOT_FOUND: no such run"),
      Unavailable: errorResponse("UNAVAILABLE (503, Redis away; retryable, Retry-After) or INTERNAL_ERROR (500)"),
    },
    schemas: {
      RunPolicy: RUN_POLICY_SCHEMA,
      RunEvent: {
        ...RUN_EVENT_SCHEMA,
        properties: {
          ...RUN_EVENT_SCHEMA.properties,
          timestamp: dateTime,
          event_type: { ...ref("EventType"), description: "Dotted name; the PascalCase one with api_version=v2." },
        },
      },
      HostSample: HOST_SAMPLE_SCHEMA,
      StepHeartbeat: STEP_HEARTBEAT_SCHEMA,
      StageLogLine: STAGE_LOG_LINE_SCHEMA,
      Error: {
        type: "object",
        additionalProperties: false,
        required: ["code", "message", "retryable"],
        properties: { code: { type: "string", enum: [...ERROR_CODES] }, message: { type: "string" }, retryable: { type: "boolean" } },
      },
      RunState: { type: "string", enum: [...RUN_STATES] },
      Run: {
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
          "last_event",
        ],
        properties: {
          run_id: { type: "string" },
          attempt_id: { type: "string", description: "The run's one execution attempt (runs are never re-run)." },
          state: ref("RunState"),
          workflow: { type: "string" },
          created_at: dateTime,
          started_at: nullableDateTime,
          ended_at: nullableDateTime,
          runner_id: nullable("string", { description: "The runner process that took the run." }),
          heartbeat_at: { ...nullableDateTime, description: "Last lease renewal by that runner." },
          lease_expires_at: { ...nullableDateTime, description: "Past this, a running run is failed with terminal_reason runner_restarted." },
          terminal_reason: {
            type: ["string", "null"],
            enum: ["succeeded", "cancelled", "failed", ...RUN_FAILED_REASONS, null],
          },
          error: nullable("string"),
          cancel_reason: nullable("string"),
          policy: { oneOf: [{ type: "null" }, ref("RunPolicy")], description: "The policy the run was submitted with." },
          last_event: {
            oneOf: [
              { type: "null" },
              {
                type: "object",
                additionalProperties: false,
                required: ["event_id", "seq", "event_type"],
                properties: { event_id: { type: "string" }, seq: { type: "integer", minimum: 0 }, event_type: ref("EventType") },
              },
            ],
          },
        },
      },
      RunList: {
        type: "object",
        additionalProperties: false,
        required: ["runs", "next_cursor"],
        properties: {
          runs: { type: "array", items: ref("Run") },
          next_cursor: nullable("string", { description: "Pass as cursor for the next page; null on the last page." }),
        },
      },
      Stage: {
        type: "object",
        additionalProperties: false,
        required: ["name", "driver", "run"],
        properties: {
          name: { type: "string", pattern: "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$" },
          driver: { type: "string", description: "shell (sh -c run) or node (a JS file or inline script)" },
          run: { type: "string", minLength: 1 },
          depends_on: { type: "array", items: { type: "string" } },
          retries: { type: "integer", minimum: 0, maximum: 100 },
          timeout_secs: { type: "number", exclusiveMinimum: 0 },
          allow_failure: { type: "boolean" },
          env: { type: "object", additionalProperties: { type: "string" } },
        },
      },
      Workflow: {
        type: "object",
        additionalProperties: false,
        required: ["name", "stages"],
        properties: {
          name: { type: "string", pattern: "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$" },
          concurrency: { type: "integer", minimum: 1, maximum: 1000 },
          secrets: {
            type: "object",
            description:
              "Variables every stage gets, read on the runner executing the run: {env: NAME} from the runner's environment (never flowmeter's configuration: RUNNER_*, REDIS_URL, QUEUE_PREFIX, …) or {file: path}. Their values are masked (***) in log lines and events.",
            propertyNames: { pattern: "^[A-Za-z_][A-Za-z0-9_]*$" },
            additionalProperties: {
              oneOf: [
                {
                  type: "object",
                  additionalProperties: false,
                  required: ["env"],
                  properties: { env: { type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_]*$" } },
                },
                { type: "object", additionalProperties: false, required: ["file"], properties: { file: { type: "string", minLength: 1 } } },
              ],
            },
          },
          stages: { type: "array", minItems: 1, items: ref("Stage") },
        },
      },
      CreateRunRequest: {
        type: "object",
        additionalProperties: false,
        oneOf: [{ required: ["workflow"] }, { required: ["file"] }],
        properties: {
          workflow: ref("Workflow"),
          file: {
            type: "string",
            minLength: 1,
            description: "A YAML or JSON workflow file under the runner's RUNNER_WORKFLOWS_DIR; paths leaving it are refused.",
          },
          input: { description: "Any JSON; every stage gets it in FLOWMETER_INPUT." },
          run_id: { type: "string", pattern: "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", description: "Idempotency key; default a new UUID v7." },
          concurrency: { type: "integer", minimum: 1, maximum: 1000 },
          policy: ref("RunPolicy"),
        },
      },
      CreateRunResponse: {
        type: "object",
        additionalProperties: false,
        required: ["run_id", "attempt_id", "state"],
        properties: { run_id: { type: "string" }, attempt_id: { type: "string" }, state: ref("RunState") },
      },
      CancelRunRequest: {
        type: "object",
        additionalProperties: false,
        properties: { reason: { type: "string", minLength: 1, maxLength: MAX_CANCEL_REASON_CHARS, pattern: "\\S", description: "Not blank." } },
      },
      EventType: { type: "string", enum: [...RUN_EVENT_TYPES, ...Object.values(RUN_EVENT_V2_NAMES)] },
      RunEventsPage: {
        type: "object",
        additionalProperties: false,
        required: ["run_id", "events", "next_from_event_id", "has_more"],
        properties: {
          run_id: { type: "string" },
          events: { type: "array", items: ref("RunEvent") },
          next_from_event_id: nullable("string", { description: "Pass as from_event_id to read on; null when the run has no events yet." }),
          has_more: { type: "boolean" },
        },
      },
      StageView: {
        type: "object",
        additionalProperties: false,
        required: ["stage_name", "group_id", "depends_on", "driver", "status", "stage_attempt", "started_at", "completed_at", "duration_ms", "exit_code"],
        properties: {
          stage_name: { type: "string" },
          group_id: nullable("string"),
          depends_on: { type: "array", items: { type: "string" } },
          driver: nullable("string"),
          status: { type: "string", enum: [...STAGE_STATUSES] },
          stage_attempt: { type: "integer", minimum: 0 },
          started_at: nullableDateTime,
          completed_at: nullableDateTime,
          duration_ms: nullable("integer", { minimum: 0 }),
          exit_code: nullable("integer"),
        },
      },
      RunStages: {
        type: "object",
        additionalProperties: false,
        required: ["run_id", "attempt_id", "state", "stages"],
        properties: { run_id: { type: "string" }, attempt_id: { type: "string" }, state: ref("RunState"), stages: { type: "array", items: ref("StageView") } },
      },
      RunTelemetry: {
        type: "object",
        additionalProperties: false,
        required: ["run_id", "attempt_id", "next_seq", "samples"],
        properties: {
          run_id: { type: "string" },
          attempt_id: { type: "string" },
          next_seq: { type: "integer", minimum: 0, description: "Pass as from_seq to read on." },
          samples: { type: "array", items: { oneOf: [ref("HostSample"), ref("StepHeartbeat")] } },
        },
      },
      RunLogs: {
        type: "object",
        additionalProperties: false,
        required: ["run_id", "attempt_id", "next_seq", "lines"],
        properties: {
          run_id: { type: "string" },
          attempt_id: { type: "string" },
          next_seq: { type: "integer", minimum: 0, description: "Pass as from_seq to read on (also to follow a running stage)." },
          lines: { type: "array", items: ref("StageLogLine") },
        },
      },
      Health: {
        type: "object",
        additionalProperties: false,
        required: ["status", "runner_id", "active_runs", "spooled_items", "redis"],
        properties: {
          status: { type: "string", enum: ["ok", "degraded"] },
          runner_id: { type: "string" },
          active_runs: { type: "integer", minimum: 0 },
          spooled_items: { type: "integer", minimum: 0 },
          redis: { type: "string" },
        },
      },
    },
  },
  paths: {
    "/v1/health": {
      get: {
        operationId: "getHealth",
        security: [],
        summary: "Liveness and delivery state of this runner process",
        responses: { "200": { description: "Health", content: json(ref("Health")) } },
      },
    },
    "/v1/openapi.json": {
      get: {
        operationId: "getOpenApi",
        security: [],
        summary: "This document",
        responses: { "200": { description: "OpenAPI 3.1 document", content: json({ type: "object", required: ["openapi", "paths"] }) } },
      },
    },
    "/metrics": {
      get: {
        operationId: "getMetrics",
        security: [],
        summary: "Prometheus metrics of this runner process",
        responses: { "200": { description: "Prometheus text format", content: { "text/plain": { schema: { type: "string" } } } } },
      },
    },
    "/v1/runs": {
      get: {
        operationId: "listRuns",
        summary: "Runs, newest first: active ones by creation time, then terminal ones by end time",
        parameters: [
          {
            name: "state",
            in: "query",
            required: false,
            schema: { type: "string", enum: ["active", "terminal"] },
            description: "Default: both (active first).",
          },
          limitParameter(LIST_LIMIT),
          { name: "cursor", in: "query", required: false, schema: { type: "string" }, description: "next_cursor of the previous page." },
          { $ref: "#/components/parameters/ApiVersion" },
        ],
        responses: {
          "200": { description: "One page of runs", content: json(ref("RunList")) },
          "400": { $ref: "#/components/responses/BadRequest" },
          ...RUN_ERRORS,
        },
      },
      post: {
        operationId: "createRun",
        summary: "Start a run of an inline workflow or a workflow file; idempotent by run_id",
        parameters: [{ $ref: "#/components/parameters/ApiVersion" }],
        requestBody: {
          required: true,
          description: `JSON (Content-Type application/json), at most ${MAX_REQUEST_BODY_BYTES} bytes, arrays and objects nested at most ${MAX_BODY_NESTING_DEPTH} levels deep (the body is level 1).`,
          content: json(ref("CreateRunRequest")),
        },
        responses: {
          "201": { description: "Created and queued; any runner of the deployment executes it", content: json(ref("CreateRunResponse")) },
          "200": { description: "A run with this run_id is active: it is answered, nothing new is started", content: json(ref("CreateRunResponse")) },
          "400": { $ref: "#/components/responses/BadRequest" },
          "409": errorResponse(
            "ALREADY_TERMINAL: a run with this run_id already ended; RUN_ID_CONFLICT: this run_id names a run made with another workflow, input, concurrency or policy",
          ),
          "413": errorResponse("PAYLOAD_TOO_LARGE"),
          "415": { $ref: "#/components/responses/UnsupportedMediaType" },
          ...RUN_ERRORS,
        },
      },
    },
    "/v1/runs/{run_id}": {
      parameters: [{ $ref: "#/components/parameters/RunId" }],
      get: {
        operationId: "getRun",
        parameters: [{ $ref: "#/components/parameters/ApiVersion" }],
        responses: {
          "200": { description: "The run", content: json(ref("Run")) },
          "400": { $ref: "#/components/responses/BadRequest" },
          "404": { $ref: "#/components/responses/NotFound" },
          ...RUN_ERRORS,
        },
      },
    },
    "/v1/runs/{run_id}/events": {
      parameters: [{ $ref: "#/components/parameters/RunId" }],
      get: {
        operationId: "getRunEvents",
        summary: "The run's lifecycle events in seq order, after a cursor",
        parameters: [
          {
            name: "from_event_id",
            in: "query",
            required: false,
            schema: { type: "string", minLength: 1 },
            description: "Exclusive: events after this one. An id that is not one of the run's events is refused (400), never read as 'from the start'.",
          },
          limitParameter(EVENTS_LIMIT),
          { $ref: "#/components/parameters/ApiVersion" },
        ],
        responses: {
          "200": { description: "One page of events", content: json(ref("RunEventsPage")) },
          "400": { $ref: "#/components/responses/BadRequest" },
          "404": { $ref: "#/components/responses/NotFound" },
          ...RUN_ERRORS,
        },
      },
    },
    "/v1/runs/{run_id}/stages": {
      parameters: [{ $ref: "#/components/parameters/RunId" }],
      get: {
        operationId: "getRunStages",
        summary: "Live stage view, folded from the run's events",
        parameters: [{ $ref: "#/components/parameters/ApiVersion" }],
        responses: {
          "200": { description: "Stages in start order", content: json(ref("RunStages")) },
          "400": { $ref: "#/components/responses/BadRequest" },
          "404": { $ref: "#/components/responses/NotFound" },
          ...RUN_ERRORS,
        },
      },
    },
    "/v1/runs/{run_id}/telemetry": {
      parameters: [{ $ref: "#/components/parameters/RunId" }],
      get: {
        operationId: "getRunTelemetry",
        summary: "Host samples and step heartbeats kept for the run (the newest RUNNER_TELEMETRY_BUFFER_SIZE; none when it is 0)",
        parameters: [
          {
            name: "from_seq",
            in: "query",
            required: false,
            schema: { type: "integer", minimum: 0, default: 0 },
            description: "Inclusive: samples with seq >= from_seq.",
          },
          {
            name: "stage_name",
            in: "query",
            required: false,
            schema: { type: "string", minLength: 1, maxLength: 128 },
            description: "Heartbeats of this stage and host samples taken while it ran.",
          },
          limitParameter(TELEMETRY_LIMIT),
          { $ref: "#/components/parameters/ApiVersion" },
        ],
        responses: {
          "200": { description: "Samples in seq order", content: json(ref("RunTelemetry")) },
          "400": { $ref: "#/components/responses/BadRequest" },
          "404": { $ref: "#/components/responses/NotFound" },
          ...RUN_ERRORS,
        },
      },
    },
    "/v1/runs/{run_id}/logs": {
      parameters: [{ $ref: "#/components/parameters/RunId" }],
      get: {
        operationId: "getRunLogs",
        summary:
          `Stage output, line by line, as the runner reads it (the newest RUNNER_LOG_BUFFER_LINES of the run; ClickHouse keeps all in run_logs). ` +
          `A stage attempt keeps its first RUNNER_LOG_HEAD_LINES lines and the last RUNNER_LOG_TAIL_LINES of each stream; one stderr line marks the cut ("… K lines, B bytes left out …").`,
        parameters: [
          {
            name: "from_seq",
            in: "query",
            required: false,
            schema: { type: "integer", minimum: 0, default: 0 },
            description: "Inclusive: lines with seq >= from_seq.",
          },
          { name: "stage", in: "query", required: false, schema: { type: "string", minLength: 1, maxLength: 128 }, description: "Only this stage's lines." },
          limitParameter(LOGS_LIMIT),
          { $ref: "#/components/parameters/ApiVersion" },
        ],
        responses: {
          "200": { description: "Lines in seq order", content: json(ref("RunLogs")) },
          "400": { $ref: "#/components/responses/BadRequest" },
          "404": { $ref: "#/components/responses/NotFound" },
          ...RUN_ERRORS,
        },
      },
    },
    "/v1/runs/{run_id}/cancel": {
      parameters: [{ $ref: "#/components/parameters/RunId" }],
      post: {
        operationId: "cancelRun",
        summary: "Cancel a run; idempotent (the first reason wins)",
        parameters: [{ $ref: "#/components/parameters/ApiVersion" }],
        requestBody: { required: false, description: "JSON (Content-Type application/json), or no body at all.", content: json(ref("CancelRunRequest")) },
        responses: {
          "200": {
            description: "The run has ended (it had already, or it was queued and is cancelled now): its stored state; nothing else changes",
            content: json(ref("Run")),
          },
          "202": { description: "Cancel requested from the runner executing it: running stages are stopped, then run.cancelled", content: json(ref("Run")) },
          "400": { $ref: "#/components/responses/BadRequest" },
          "415": { $ref: "#/components/responses/UnsupportedMediaType" },
          "404": { $ref: "#/components/responses/NotFound" },
          ...RUN_ERRORS,
        },
      },
    },
  },
  security: [{ bearer: [] }],
};
