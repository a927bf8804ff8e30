/**
 * Bodies of the run API (docs/spec.md §5), served by every runner process. The runner's `src/http/openapi.ts` describes the
 * same shapes as JSON Schema, and its tests check real answers against it.
 */
import type { HostSample, RunEvent, RunFailedReason, RunPolicy, StageLogLine, StepHeartbeat } from "./run-events.js";

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
export type TerminalReason = "succeeded" | "cancelled" | RunFailedReason | "failed";

/** `?api_version=`: v2 answers PascalCase event types (RUN_EVENT_V2_NAMES) wherever an event type appears. */
export type ApiVersion = "v1" | "v2";

/** One run, as `GET /v1/runs/{id}` (and each item of the list) answers it. Times are RFC 3339, UTC. */
export interface RunView {
  run_id: string;
  /** The run's one execution attempt; runs are never re-run (a run whose runner died ends failed, runner_restarted). */
  attempt_id: string;
  state: RunState;
  workflow: string;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  /** The runner process that took the run (host-pid-random). */
  runner_id: string | null;
  /** Last lease renewal by that runner, and when the lease runs out unless renewed again. */
  heartbeat_at: string | null;
  lease_expires_at: string | null;
  terminal_reason: TerminalReason | null;
  /** run.failed error, or null. */
  error: string | null;
  /** Set once a cancel was asked for (the first reason wins). */
  cancel_reason: string | null;
  /** The policy the run was submitted with, or null. */
  policy: RunPolicy | null;
  /** The latest stored event; event_type is PascalCase with api_version=v2. */
  last_event: { event_id: string; seq: number; event_type: string } | null;
}

export interface CreateRunRequest {
  /** An inline workflow (docs/spec.md §6a); exactly one of workflow and file. */
  workflow?: unknown;
  /** A workflow file (YAML or JSON) under the runner's RUNNER_WORKFLOWS_DIR. */
  file?: string;
  input?: unknown;
  /** Idempotency key: 1-128 letters, digits, "_", "." or "-". Default: a new UUID v7. */
  run_id?: string;
  /** Stages at once for this run (overrides the workflow's). */
  concurrency?: number;
  policy?: RunPolicy;
}

export interface CreateRunResponse {
  run_id: string;
  attempt_id: string;
  state: RunState;
}

export interface CancelRunRequest {
  reason?: string;
}

export interface RunListResponse {
  runs: RunView[];
  /** Pass as `cursor` for the next page; null on the last page. */
  next_cursor: string | null;
}

/** An event as the events endpoint answers it: with api_version=v2 `event_type` is the PascalCase name. */
export type RunEventView = Omit<RunEvent, "event_type"> & { event_type: string };

export interface RunEventsResponse {
  run_id: string;
  events: RunEventView[];
  /** Pass as `from_event_id` to read on (the last event returned; the cursor given when none was). null: no events yet. */
  next_from_event_id: string | null;
  /** More events are stored after this page. */
  has_more: boolean;
}

export const STAGE_STATUSES = ["queued", "running", "succeeded", "failed", "skipped"] as const;
export type StageStatus = (typeof STAGE_STATUSES)[number];

/** One stage of a run, folded from its events (the latest attempt's figures). */
export interface StageView {
  stage_name: string;
  group_id: string | null;
  /** From stage.queued; [] when that event is not stored. */
  depends_on: string[];
  driver: string | null;
  status: StageStatus;
  stage_attempt: number;
  started_at: string | null;
  completed_at: string | null;
  duration_ms: number | null;
  exit_code: number | null;
}

export interface RunStagesResponse {
  run_id: string;
  attempt_id: string;
  state: RunState;
  stages: StageView[];
}

export interface RunTelemetryResponse {
  run_id: string;
  attempt_id: string;
  /** Pass as `from_seq` to read on: one past the last sample looked at. */
  next_seq: number;
  samples: Array<HostSample | StepHeartbeat>;
}

export interface RunLogsResponse {
  run_id: string;
  attempt_id: string;
  /** Pass as `from_seq` to read on: one past the last line looked at. */
  next_seq: number;
  lines: StageLogLine[];
}
