/**
 * The runner's HTTP API as OpenAPI 3.1, served at `GET /v1/openapi.json`: the one description of it. The routes
 * validate every request's query and body with it (api-validation.ts). Its component schemas are the shared
 * contract's own schema objects (@flowmeter/shared run-api.ts, run-schemas.ts, errors.ts), whose TypeScript types
 * are derived from them, so this file holds no shapes of its own but the health answer's; it adds the operations,
 * parameters and responses, with bounds from api-limits.ts. run-api.integration.test.ts checks every documented
 * operation's real answers (status and body) against this document with ajv, and every answer it receives against
 * the status list here.
 */
import {
  API_ERROR_SCHEMA,
  CANCEL_RUN_REQUEST_SCHEMA,
  CREATE_RUN_REQUEST_SCHEMA,
  CREATE_RUN_RESPONSE_SCHEMA,
  EVENT_TYPE_SCHEMA,
  HOST_SAMPLE_SCHEMA,
  RUN_EVENT_VIEW_SCHEMA,
  RUN_EVENTS_PAGE_SCHEMA,
  RUN_LIST_SCHEMA,
  RUN_LOGS_SCHEMA,
  RUN_POLICY_SCHEMA,
  RUN_STAGES_SCHEMA,
  RUN_STATE_SCHEMA,
  RUN_TELEMETRY_SCHEMA,
  RUN_VIEW_SCHEMA,
  STAGE_DEFINITION_SCHEMA,
  STAGE_LOG_LINE_SCHEMA,
  STAGE_VIEW_SCHEMA,
  STEP_HEARTBEAT_SCHEMA,
  WORKFLOW_SCHEMA,
  NAME_PATTERN,
  RUN_STATES,
  type SchemaType,
} from "@flowmeter/shared";
import { LIST_SCAN_BUDGET } from "../store/run-records.js";
import {
  FULL_RETRY_AFTER_SECONDS,
  EVENTS_LIMIT,
  LIST_LIMIT,
  LOGS_LIMIT,
  MAX_BODY_NESTING_DEPTH,
  MAX_REQUEST_BODY_BYTES,
  TELEMETRY_LIMIT,
} from "./api-limits.js";

const json = (schema: object) => ({ "application/json": { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({ description, content: json(ref("Error")) });

/** `GET /v1/health`: this runner process, not a run, so its schema lives with the runner. */
export const HEALTH_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["status", "runner_id", "active_runs", "spooled_items", "redis"],
  properties: {
    status: {
      type: "string",
      enum: ["ok", "degraded"],
      description: "ok: events reach the queue; degraded: the queue is unreachable and events are being spooled locally.",
    },
    runner_id: { type: "string", description: "This process in run records (a run's runner_id)." },
    active_runs: { type: "integer", minimum: 0 },
    spooled_items: { type: "integer", minimum: 0 },
    redis: { type: "string", description: "The producer connection's state (ready, connecting, reconnecting, …)." },
  },
} as const;
export type RunnerHealth = SchemaType<typeof HEALTH_SCHEMA>;

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
      TooManyRuns: {
        description: `TOO_MANY_REQUESTS: the runners have RUNNER_API_MAX_ACTIVE_RUNS runs queued or running (default 10000); retryable, Retry-After ${FULL_RETRY_AFTER_SECONDS} s`,
        headers: { "Retry-After": { schema: { type: "integer" } } },
        content: json(ref("Error")),
      },
      Unavailable: errorResponse("UNAVAILABLE (503, Redis away; retryable, Retry-After) or INTERNAL_ERROR (500)"),
    },
    schemas: {
      RunPolicy: RUN_POLICY_SCHEMA,
      RunEvent: RUN_EVENT_VIEW_SCHEMA,
      HostSample: HOST_SAMPLE_SCHEMA,
      StepHeartbeat: STEP_HEARTBEAT_SCHEMA,
      StageLogLine: STAGE_LOG_LINE_SCHEMA,
      Error: API_ERROR_SCHEMA,
      RunState: RUN_STATE_SCHEMA,
      Run: RUN_VIEW_SCHEMA,
      RunList: RUN_LIST_SCHEMA,
      Stage: STAGE_DEFINITION_SCHEMA,
      Workflow: WORKFLOW_SCHEMA,
      CreateRunRequest: CREATE_RUN_REQUEST_SCHEMA,
      CreateRunResponse: CREATE_RUN_RESPONSE_SCHEMA,
      CancelRunRequest: CANCEL_RUN_REQUEST_SCHEMA,
      EventType: EVENT_TYPE_SCHEMA,
      RunEventsPage: RUN_EVENTS_PAGE_SCHEMA,
      StageView: STAGE_VIEW_SCHEMA,
      RunStages: RUN_STAGES_SCHEMA,
      RunTelemetry: RUN_TELEMETRY_SCHEMA,
      RunLogs: RUN_LOGS_SCHEMA,
      Health: HEALTH_SCHEMA,
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
        summary:
          "Runs, newest first: active ones by creation time, then terminal ones by end time. With a filter (a single state, workflow, since) " +
          `a page reads at most ${LIST_SCAN_BUDGET} index entries, so it may hold fewer than limit runs (even none) while next_cursor is set.`,
        parameters: [
          {
            name: "state",
            in: "query",
            required: false,
            schema: { type: "string", enum: ["active", "terminal", ...RUN_STATES] },
            description: "active (queued and running), terminal (succeeded, failed, cancelled) or one state. Default: all runs (active first).",
          },
          {
            name: "workflow",
            in: "query",
            required: false,
            schema: { type: "string", pattern: NAME_PATTERN },
            description: "Only runs of the workflow with this name.",
          },
          {
            name: "since",
            in: "query",
            required: false,
            schema: { type: "string", minLength: 1, maxLength: 64 },
            description: "RFC 3339 time: only runs created at or after it.",
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
          "429": { $ref: "#/components/responses/TooManyRuns" },
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
          {
            name: "q",
            in: "query",
            required: false,
            schema: { type: "string", minLength: 1, maxLength: 1000 },
            description:
              "Only lines containing this text, ignoring case (a plain substring, not a pattern). next_seq is one past the last line looked at, so paging goes on past lines that did not match.",
          },
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
    "/v1/runs/{run_id}/rerun": {
      parameters: [{ $ref: "#/components/parameters/RunId" }],
      post: {
        operationId: "rerunRun",
        summary:
          "Re-run an ended run as a new run (a new run_id, rerun_of naming this one) with what it was submitted with: workflow, input, concurrency, policy. " +
          "Not idempotent: each call starts a run. The old run is not changed.",
        parameters: [
          {
            name: "failed_only",
            in: "query",
            required: false,
            schema: { type: "boolean", default: false },
            description:
              "Only the stages that did not succeed (failed, skipped, not started); those that succeeded are left out, and dependencies on them count as met.",
          },
          { $ref: "#/components/parameters/ApiVersion" },
        ],
        responses: {
          "201": { description: "The new run, queued (Location: /v1/runs/{new run_id})", content: json(ref("Run")) },
          "400": { $ref: "#/components/responses/BadRequest" },
          "404": { $ref: "#/components/responses/NotFound" },
          "409": errorResponse(
            "INVALID_PARAMS: the run has not ended yet, or failed_only and every stage succeeded, or what it was submitted with is no longer kept (a run made by an older runner)",
          ),
          "429": { $ref: "#/components/responses/TooManyRuns" },
          ...RUN_ERRORS,
        },
      },
    },
  },
  security: [{ bearer: [] }],
};
