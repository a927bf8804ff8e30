/**
 * The run API (docs/spec.md §5): `/v1/runs…`. Stateless over Redis: records, events, samples and log lines are read from
 * and written to the run store (store/run-store.ts), so every runner process (and any app built on the same Redis and
 * prefix) answers the same.
 * Runs are executed by whichever runner takes them from the `runs` queue, not necessarily the one answering.
 */
import { methodNotAllowed } from "@flowmeter/platform";
import {
  ApiError,
  isTerminalRunState,
  type ApiVersion,
  type CancelRunRequest,
  type CreateRunRequest,
  type CreateRunResponse,
  type RunEventsResponse,
  type RunListResponse,
  type RunLogsResponse,
  type RunStagesResponse,
  type RunTelemetryResponse,
} from "@flowmeter/shared";
import { Router, type NextFunction, type Request, type Response } from "express";
import { RerunRefusedError, RunIdConflictError, UnknownEventCursorError, WorkflowFileError, WorkflowValidationError } from "../errors.js";
import { cancelRun } from "../fleet/cancel-run.js";
import { rerunRun } from "../fleet/rerun-run.js";
import { submitRun } from "../fleet/submit-run.js";
import { isValidRunId, type RunListFilter, type RunRecord } from "../store/run-records.js";
import { logLineMatches, type RunStore } from "../store/run-store.js";
import type { RunStream, RunStreamPage } from "../store/run-stream.js";
import { buildStageView } from "../store/stage-view.js";
import { loadWorkflowFromDir } from "../workflow/workflows-dir.js";
import { DEFAULT_API_MAX_ACTIVE_RUNS } from "../config.js";
import { FULL_RETRY_AFTER_SECONDS } from "./api-limits.js";
import { operation, type ValidatedRequest } from "./api-validation.js";
import { createBearerAuth } from "./bearer-auth.js";
import { jsonBody } from "./json-body.js";
import { decodeListCursor, encodeListCursor, toEventView, toRunView } from "./run-views.js";

export interface RunApiOptions {
  /** The fleet's runs; its connection is a producer one, so requests answer 503 at once while Redis is away. */
  store: RunStore;
  /** Absolute; `file` paths resolve under it. */
  workflowsDir: string;
  /** Driver names workflows are validated against. */
  drivers: readonly string[];
  /** Bearer tokens; empty: no auth. */
  apiTokens: readonly string[];
  /** Active runs (queued, running) past which new runs are refused 429 (RUNNER_API_MAX_ACTIVE_RUNS); default DEFAULT_API_MAX_ACTIVE_RUNS. */
  maxActiveRuns?: number;
}

/** Every documented operation's request check (OpenAPI document, api-validation.ts). */
const REQUESTS = {
  listRuns: operation("/v1/runs", "get"),
  createRun: operation("/v1/runs", "post"),
  getRun: operation("/v1/runs/{run_id}", "get"),
  getEvents: operation("/v1/runs/{run_id}/events", "get"),
  getStages: operation("/v1/runs/{run_id}/stages", "get"),
  getTelemetry: operation("/v1/runs/{run_id}/telemetry", "get"),
  getLogs: operation("/v1/runs/{run_id}/logs", "get"),
  cancel: operation("/v1/runs/{run_id}/cancel", "post"),
  rerun: operation("/v1/runs/{run_id}/rerun", "post"),
};

/** The run id path parameter, as a string (express 5 may give arrays for repeated wildcard params; ours are plain). */
function runIdParam(req: Request): string {
  return String(req.params["runId"] ?? "");
}

export function createRunRoutes(options: RunApiOptions): Router {
  const { store, workflowsDir, drivers } = options;
  const { redis, records } = store;
  const checkToken = createBearerAuth(options.apiTokens);
  const router = Router({ strict: true, caseSensitive: true });

  const maxActiveRuns = options.maxActiveRuns ?? DEFAULT_API_MAX_ACTIVE_RUNS;

  /** 429 while the fleet has maxActiveRuns runs queued or running (a re-sent create of an existing run is answered as usual). */
  async function refuseWhenFull(existingRunId?: string): Promise<void> {
    if ((await records.activeCount()) < maxActiveRuns) return;
    if (existingRunId !== undefined && isValidRunId(existingRunId) && (await records.get(existingRunId)) !== undefined) return;
    throw new ApiError(
      "TOO_MANY_REQUESTS",
      `the runners have ${maxActiveRuns} or more runs queued or running (RUNNER_API_MAX_ACTIVE_RUNS); retry after ${FULL_RETRY_AFTER_SECONDS} s`,
      { retryAfterSeconds: FULL_RETRY_AFTER_SECONDS },
    );
  }

  async function loadRun(runId: string): Promise<RunRecord> {
    const record = isValidRunId(runId) ? await records.get(runId) : undefined;
    if (record === undefined) throw new ApiError("NOT_FOUND", `run ${JSON.stringify(runId.slice(0, 200))} not found`);
    return record;
  }

  /** A page of a run's samples or log lines, read alike: from a seq, optionally only one stage's. */
  async function streamPage<T extends { run_id: string; seq: number }>(
    req: Request,
    stream: RunStream<T>,
    check: (req: Request) => ValidatedRequest,
    stageParameter: string,
    keep?: (query: Record<string, unknown>) => ((item: T) => boolean) | undefined,
  ): Promise<{ record: RunRecord; page: RunStreamPage<T> }> {
    const { query } = check(req);
    const record = await loadRun(runIdParam(req));
    const stage = query[stageParameter] as string | undefined;
    const page = await stream.read(record.run_id, query["from_seq"] as number, query["limit"] as number, stage, keep?.(query));
    return { record, page };
  }

  router.use("/v1/runs", function authenticate(req: Request, _res: Response, next: NextFunction) {
    checkToken(req.get("authorization"));
    if (redis.status !== "ready") throw new ApiError("UNAVAILABLE", "redis is not reachable", { retryAfterSeconds: 2 });
    next();
  });

  router
    .route("/v1/runs")
    .get(async function listRuns(req: Request, res: Response) {
      const { query } = REQUESTS.listRuns(req);
      const version = query["api_version"] as ApiVersion;
      const cursorText = query["cursor"] as string | undefined;
      const since = query["since"] as string | undefined;
      const sinceMs = since === undefined ? undefined : Date.parse(since);
      if (sinceMs !== undefined && (Number.isNaN(sinceMs) || !/^\d{4}-\d{2}-\d{2}T/.test(since ?? ""))) {
        throw new ApiError("INVALID_PARAMS", `since must be an RFC 3339 time (2026-01-31T12:00:00Z), not ${JSON.stringify(since?.slice(0, 50))}`);
      }
      const state = (query["state"] ?? "all") as RunListFilter;
      const page = await records.list(
        {
          state,
          ...(query["workflow"] === undefined ? {} : { workflow: query["workflow"] as string }),
          ...(sinceMs === undefined ? {} : { sinceMs }),
        },
        query["limit"] as number,
        cursorText === undefined ? undefined : decodeListCursor(cursorText, state),
      );
      const body: RunListResponse = {
        runs: page.records.map((record) => toRunView(record, version)),
        next_cursor: page.nextCursor === undefined ? null : encodeListCursor(page.nextCursor),
      };
      res.json(body);
    })
    .post(...jsonBody(), async function createRun(req: Request, res: Response) {
      const body = REQUESTS.createRun(req).body as CreateRunRequest;
      await refuseWhenFull(body.run_id);
      let created;
      try {
        const workflow: unknown = body.file === undefined ? body.workflow : await loadWorkflowFromDir(workflowsDir, body.file, { drivers });
        created = await submitRun(store, workflow, body.input, {
          drivers,
          ...(body.run_id === undefined ? {} : { runId: body.run_id }),
          ...(body.concurrency === undefined ? {} : { concurrency: body.concurrency }),
          ...(body.policy === undefined ? {} : { policy: body.policy }),
        });
      } catch (error) {
        if (error instanceof WorkflowValidationError) {
          const source = error.context.source === undefined ? "" : ` (${error.context.source})`;
          throw new ApiError("INVALID_SPEC", `invalid workflow${source}: ${error.problems.join("; ")}`);
        }
        if (error instanceof WorkflowFileError) throw new ApiError("INVALID_PARAMS", error.message);
        if (error instanceof RunIdConflictError) throw new ApiError("RUN_ID_CONFLICT", error.message);
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
      const version = REQUESTS.getRun(req).query["api_version"] as ApiVersion;
      res.json(toRunView(await loadRun(runIdParam(req)), version));
    })
    .all(methodNotAllowed("GET, HEAD"));

  router
    .route("/v1/runs/:runId/events")
    .get(async function getEvents(req: Request, res: Response) {
      const { query } = REQUESTS.getEvents(req);
      const version = query["api_version"] as ApiVersion;
      const from = query["from_event_id"] as string | undefined;
      const record = await loadRun(runIdParam(req));
      let page;
      try {
        page = await store.events.page(record.run_id, from === undefined ? {} : { afterEventId: from }, query["limit"] as number);
      } catch (error) {
        if (error instanceof UnknownEventCursorError) {
          throw new ApiError(
            "INVALID_PARAMS",
            `from_event_id ${JSON.stringify(from?.slice(0, 100))} is not an event of run ${record.run_id} (unknown, or older than the retention)`,
          );
        }
        throw error;
      }
      const body: RunEventsResponse = {
        run_id: record.run_id,
        events: page.events.map((event) => toEventView(event, version)),
        next_from_event_id: page.events.at(-1)?.event_id ?? from ?? null,
        has_more: page.hasMore,
      };
      res.json(body);
    })
    .all(methodNotAllowed("GET, HEAD"));

  router
    .route("/v1/runs/:runId/stages")
    .get(async function getStages(req: Request, res: Response) {
      REQUESTS.getStages(req);
      const record = await loadRun(runIdParam(req));
      const events = await store.events.read(record.run_id, {}, store.limits.maxEventsPerRun);
      const body: RunStagesResponse = { run_id: record.run_id, attempt_id: record.attempt_id, state: record.state, stages: buildStageView(events) };
      res.json(body);
    })
    .all(methodNotAllowed("GET, HEAD"));

  router
    .route("/v1/runs/:runId/telemetry")
    .get(async function getTelemetry(req: Request, res: Response) {
      const { record, page } = await streamPage(req, store.samples, REQUESTS.getTelemetry, "stage_name");
      const body: RunTelemetryResponse = { run_id: record.run_id, attempt_id: record.attempt_id, next_seq: page.nextSeq, samples: page.items };
      res.json(body);
    })
    .all(methodNotAllowed("GET, HEAD"));

  router
    .route("/v1/runs/:runId/logs")
    .get(async function getLogs(req: Request, res: Response) {
      const { record, page } = await streamPage(req, store.logs, REQUESTS.getLogs, "stage", (query) => {
        const text = query["q"] as string | undefined;
        return text === undefined ? undefined : (line) => logLineMatches(line, text);
      });
      const body: RunLogsResponse = { run_id: record.run_id, attempt_id: record.attempt_id, next_seq: page.nextSeq, lines: page.items };
      res.json(body);
    })
    .all(methodNotAllowed("GET, HEAD"));

  router
    .route("/v1/runs/:runId/cancel")
    .post(...jsonBody(), async function cancel(req: Request, res: Response) {
      const { query, body } = REQUESTS.cancel(req);
      const version = query["api_version"] as ApiVersion;
      const { reason } = body as CancelRunRequest;
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

  router
    .route("/v1/runs/:runId/rerun")
    .post(async function rerun(req: Request, res: Response) {
      const { query } = REQUESTS.rerun(req);
      const version = query["api_version"] as ApiVersion;
      const old = await loadRun(runIdParam(req));
      await refuseWhenFull();
      let created;
      try {
        created = await rerunRun(store, old.run_id, { failedOnly: query["failed_only"] as boolean, drivers });
      } catch (error) {
        if (error instanceof RerunRefusedError) {
          if (error.reason === "unknown") throw new ApiError("NOT_FOUND", error.message);
          // The request is well formed, but the run's state refuses it: 409, as for a create conflicting with a run.
          throw new ApiError("INVALID_PARAMS", error.message, { status: 409 });
        }
        if (error instanceof WorkflowValidationError)
          throw new ApiError("INVALID_SPEC", `the run's workflow is not valid here any more: ${error.problems.join("; ")}`);
        throw error;
      }
      const record = await records.get(created.run_id);
      if (record === undefined) throw new Error(`run ${created.run_id} was created but its record is gone`);
      res.status(201).location(`/v1/runs/${created.run_id}`).json(toRunView(record, version));
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
