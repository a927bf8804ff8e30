/**
 * The run API (docs/spec.md §5): `/v1/runs…`. Stateless over Redis: records, events, samples and log lines are read from
 * and written to the run store (store/run-store.ts), so every runner process (and any app built on the same Redis and
 * prefix) answers the same.
 * Runs are executed by whichever runner takes them from the `runs` queue, not necessarily the one answering.
 */
import {
  ApiError,
  isTerminalRunState,
  methodNotAllowed,
  type ApiVersion,
  type CreateRunResponse,
  type RunEventsResponse,
  type RunListResponse,
  type RunLogsResponse,
  type RunStagesResponse,
  type RunTelemetryResponse,
} from "@flowmeter/shared";
import express, { Router, type NextFunction, type Request, type Response } from "express";
import { UnknownEventCursorError, WorkflowFileError, WorkflowValidationError } from "../errors.js";
import { cancelRun } from "../fleet/cancel-run.js";
import { submitRun } from "../fleet/submit-run.js";
import { DEFAULT_MAX_EVENTS_PER_RUN } from "../store/run-keys.js";
import { decodeListCursor, encodeListCursor, isValidRunId, toRunView, type RunListFilter, type RunRecord } from "../store/run-records.js";
import type { RunStore } from "../store/run-store.js";
import { buildStageView } from "../store/stage-view.js";
import { isValidConcurrency, validateRunPolicy } from "../workflow/validate-workflow.js";
import { loadWorkflowFromDir } from "../workflow/workflows-dir.js";
import { createBearerAuth } from "./bearer-auth.js";

export const MAX_REQUEST_BODY_BYTES = 1_048_576;
export const LIST_LIMIT = { default: 50, max: 500 } as const;
export const EVENTS_LIMIT = { default: 1000, max: 10_000 } as const;
export const TELEMETRY_LIMIT = { default: 1000, max: 10_000 } as const;
export const LOGS_LIMIT = { default: 1000, max: 10_000 } as const;
const MAX_CANCEL_REASON_CHARS = 1000;
const CREATE_FIELDS = ["workflow", "file", "input", "run_id", "concurrency", "policy"];

export interface RunApiOptions {
  /** The fleet's runs; its connection is a producer one, so requests answer 503 at once while Redis is away. */
  store: RunStore;
  /** Absolute; `file` paths resolve under it. */
  workflowsDir: string;
  /** Driver names workflows are validated against. */
  drivers: readonly string[];
  /** Bearer tokens; empty: no auth. */
  apiTokens: readonly string[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function invalid(message: string): ApiError {
  return new ApiError("INVALID_PARAMS", message);
}

/** One query parameter as a string; given twice is an error. */
function query(req: Request, name: string): string | undefined {
  const value = (req.query as Record<string, unknown>)[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw invalid(`${name} must be given once, as a plain value`);
  return value;
}

function apiVersion(req: Request): ApiVersion {
  const value = query(req, "api_version");
  if (value === undefined || value === "v1") return "v1";
  if (value === "v2") return "v2";
  throw invalid(`api_version must be v1 or v2, not ${JSON.stringify(value.slice(0, 50))}`);
}

function nonNegativeInt(req: Request, name: string): number | undefined {
  const value = query(req, name);
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value)) throw invalid(`${name} must be a non-negative integer, not ${JSON.stringify(value.slice(0, 50))}`);
  return Number(value);
}

function limit(req: Request, bounds: { default: number; max: number }): number {
  const value = nonNegativeInt(req, "limit") ?? bounds.default;
  if (value < 1 || value > bounds.max) throw invalid(`limit must be between 1 and ${bounds.max}`);
  return value;
}

function listFilter(req: Request): RunListFilter {
  const value = query(req, "state");
  if (value === undefined) return "all";
  if (value === "active" || value === "terminal") return value;
  throw invalid(`state must be active or terminal, not ${JSON.stringify(value.slice(0, 50))}`);
}

/** A stage name filter: 1-128 characters when given. */
function stageParam(req: Request, name: string): string | undefined {
  const value = query(req, name);
  if (value !== undefined && (value === "" || value.length > 128)) throw invalid(`${name} must be 1-128 characters`);
  return value;
}

/** The run id path parameter, as a string (express 5 may give arrays for repeated wildcard params; ours are plain). */
function runIdParam(req: Request): string {
  return String(req.params["runId"] ?? "");
}

export function createRunRoutes(options: RunApiOptions): Router {
  const { store, workflowsDir, drivers } = options;
  const { redis, records } = store;
  const checkToken = createBearerAuth(options.apiTokens);
  const jsonBody = express.json({ type: () => true, limit: MAX_REQUEST_BODY_BYTES, strict: true });
  const router = Router({ strict: true, caseSensitive: true });

  async function loadRun(runId: string): Promise<RunRecord> {
    const record = isValidRunId(runId) ? await records.get(runId) : undefined;
    if (record === undefined) throw new ApiError("NOT_FOUND", `run ${JSON.stringify(runId.slice(0, 200))} not found`);
    return record;
  }

  router.use("/v1/runs", function authenticate(req: Request, _res: Response, next: NextFunction) {
    checkToken(req.get("authorization"));
    if (redis.status !== "ready") throw new ApiError("UNAVAILABLE", "redis is not reachable", { retryAfterSeconds: 2 });
    next();
  });

  router
    .route("/v1/runs")
    .get(async function listRuns(req: Request, res: Response) {
      const version = apiVersion(req);
      const filter = listFilter(req);
      const size = limit(req, LIST_LIMIT);
      const cursorText = query(req, "cursor");
      const page = await records.list(filter, size, cursorText === undefined ? undefined : decodeListCursor(cursorText));
      const body: RunListResponse = {
        runs: page.records.map((record) => toRunView(record, version)),
        next_cursor: page.nextCursor === undefined ? null : encodeListCursor(page.nextCursor),
      };
      res.json(body);
    })
    .post(jsonBody, async function createRun(req: Request, res: Response) {
      apiVersion(req);
      const body: unknown = req.body;
      if (!isRecord(body))
        throw invalid("request body must be a JSON object with workflow (an inline definition) or file (a path under the workflows directory)");
      for (const key of Object.keys(body)) {
        if (!CREATE_FIELDS.includes(key)) throw invalid(`unknown field ${JSON.stringify(key.slice(0, 100))} (known: ${CREATE_FIELDS.join(", ")})`);
      }
      if ((body["workflow"] === undefined) === (body["file"] === undefined)) {
        throw invalid("send exactly one of workflow (an inline definition) and file (a path under the workflows directory)");
      }
      const runId = body["run_id"];
      if (runId !== undefined && (typeof runId !== "string" || !isValidRunId(runId))) throw invalid('run_id must be 1-128 letters, digits, "_", "." or "-"');
      const concurrency = body["concurrency"];
      if (concurrency !== undefined && !isValidConcurrency(concurrency)) throw invalid("concurrency must be an integer between 1 and 1000");
      const file = body["file"];
      if (file !== undefined && (typeof file !== "string" || file === "")) throw invalid("file must be a non-empty string");
      let policy;
      try {
        policy = validateRunPolicy(body["policy"]);
      } catch (error) {
        if (error instanceof WorkflowValidationError) throw invalid(error.problems.join("; "));
        throw error;
      }

      let created;
      try {
        const workflow: unknown = typeof file === "string" ? await loadWorkflowFromDir(workflowsDir, file, { drivers }) : body["workflow"];
        created = await submitRun(store, workflow, body["input"], {
          drivers,
          ...(runId === undefined ? {} : { runId: runId }),
          ...(concurrency === undefined ? {} : { concurrency: concurrency }),
          ...(policy === undefined ? {} : { policy }),
        });
      } catch (error) {
        if (error instanceof WorkflowValidationError) {
          const source = error.context.source === undefined ? "" : ` (${error.context.source})`;
          throw new ApiError("INVALID_SPEC", `invalid workflow${source}: ${error.problems.join("; ")}`);
        }
        if (error instanceof WorkflowFileError) throw invalid(error.message);
        throw error;
      }
      const answer: CreateRunResponse = { run_id: created.run_id, attempt_id: created.attempt_id, state: created.state };
      if (created.created) {
        res.status(201).location(`/v1/runs/${created.run_id}`).json(answer);
      } else if (isTerminalRunState(created.state)) {
        throw new ApiError("ALREADY_TERMINAL", `run ${created.run_id} already ended (${created.state}); use a new run_id to run it again`);
      } else {
        res.status(200).json(answer);
      }
    })
    .all(methodNotAllowed("GET, HEAD, POST"));

  router
    .route("/v1/runs/:runId")
    .get(async function getRun(req: Request, res: Response) {
      const version = apiVersion(req);
      res.json(toRunView(await loadRun(runIdParam(req)), version));
    })
    .all(methodNotAllowed("GET, HEAD"));

  router
    .route("/v1/runs/:runId/events")
    .get(async function getEvents(req: Request, res: Response) {
      const version = apiVersion(req);
      const size = limit(req, EVENTS_LIMIT);
      const from = query(req, "from_event_id");
      if (from === "") throw invalid("from_event_id must not be empty (leave it out to read from the first event)");
      const record = await loadRun(runIdParam(req));
      let page;
      try {
        page = await store.events.page(record.run_id, from === undefined ? {} : { afterEventId: from }, size);
      } catch (error) {
        if (error instanceof UnknownEventCursorError) {
          throw invalid(`from_event_id ${JSON.stringify(from?.slice(0, 100))} is not an event of run ${record.run_id} (unknown, or older than the retention)`);
        }
        throw error;
      }
      const body: RunEventsResponse = {
        run_id: record.run_id,
        events: page.events.map((event) => (version === "v2" ? { ...event, event_type: event.event_type_v2 } : event)),
        next_from_event_id: page.events.at(-1)?.event_id ?? from ?? null,
        has_more: page.hasMore,
      };
      res.json(body);
    })
    .all(methodNotAllowed("GET, HEAD"));

  router
    .route("/v1/runs/:runId/stages")
    .get(async function getStages(req: Request, res: Response) {
      apiVersion(req);
      const record = await loadRun(runIdParam(req));
      const events = await store.events.read(record.run_id, {}, DEFAULT_MAX_EVENTS_PER_RUN);
      const body: RunStagesResponse = { run_id: record.run_id, attempt_id: record.attempt_id, state: record.state, stages: buildStageView(events) };
      res.json(body);
    })
    .all(methodNotAllowed("GET, HEAD"));

  router
    .route("/v1/runs/:runId/telemetry")
    .get(async function getTelemetry(req: Request, res: Response) {
      apiVersion(req);
      const fromSeq = nonNegativeInt(req, "from_seq") ?? 0;
      const stageName = stageParam(req, "stage_name");
      const size = limit(req, TELEMETRY_LIMIT);
      const record = await loadRun(runIdParam(req));
      const page = await store.samples.read(record.run_id, fromSeq, size, stageName);
      const body: RunTelemetryResponse = { run_id: record.run_id, attempt_id: record.attempt_id, next_seq: page.nextSeq, samples: page.items };
      res.json(body);
    })
    .all(methodNotAllowed("GET, HEAD"));

  router
    .route("/v1/runs/:runId/logs")
    .get(async function getLogs(req: Request, res: Response) {
      apiVersion(req);
      const fromSeq = nonNegativeInt(req, "from_seq") ?? 0;
      const stageName = stageParam(req, "stage");
      const size = limit(req, LOGS_LIMIT);
      const record = await loadRun(runIdParam(req));
      const page = await store.logs.read(record.run_id, fromSeq, size, stageName);
      const body: RunLogsResponse = { run_id: record.run_id, attempt_id: record.attempt_id, next_seq: page.nextSeq, lines: page.items };
      res.json(body);
    })
    .all(methodNotAllowed("GET, HEAD"));

  router
    .route("/v1/runs/:runId/cancel")
    .post(jsonBody, async function cancel(req: Request, res: Response) {
      const version = apiVersion(req);
      const body: unknown = req.body ?? {};
      if (!isRecord(body)) throw invalid('request body must be a JSON object, {"reason": "…"}, or empty');
      for (const key of Object.keys(body)) {
        if (key !== "reason") throw invalid(`unknown field ${JSON.stringify(key.slice(0, 100))} (known: reason)`);
      }
      const reason = body["reason"];
      if (reason !== undefined && (typeof reason !== "string" || reason.trim() === "" || reason.length > MAX_CANCEL_REASON_CHARS)) {
        throw invalid(`reason must be a non-empty string of at most ${MAX_CANCEL_REASON_CHARS} characters`);
      }
      const record = await loadRun(runIdParam(req));
      if (isTerminalRunState(record.state)) {
        res.status(200).json(toRunView(record, version));
        return;
      }
      await cancelRun(store, record.run_id, reason ?? "cancelled through the run API");
      const now = (await records.get(record.run_id)) ?? record;
      res.status(isTerminalRunState(now.state) ? 200 : 202).json(toRunView(now, version));
    })
    .all(methodNotAllowed("POST"));

  router.use("/v1/runs", function redisTrouble(error: unknown, _req: Request, _res: Response, next: NextFunction) {
    // A Redis command that failed while the connection dropped is the service being unavailable, not a bug.
    if (!(error instanceof ApiError) && error instanceof Error && redis.status !== "ready") {
      next(new ApiError("UNAVAILABLE", "redis is not reachable", { retryAfterSeconds: 2, cause: error }));
      return;
    }
    next(error);
  });
  return router;
}
