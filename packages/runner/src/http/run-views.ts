/**
 * How the run API shows what the run store keeps: a record as a `Run` body, an event as the API version names it, and
 * a list position (the store's ListCursor) as the opaque `cursor`/`next_cursor` text clients pass back. The store
 * (store/run-records.ts, store/run-event-store.ts) knows nothing of these; this module only reads its types.
 */
import {
  ApiError,
  RUN_EVENT_V2_NAMES,
  type ApiVersion,
  type RunEvent,
  type RunEventType,
  type RunEventTypeV2,
  type RunEventView,
  type RunView,
} from "@flowmeter/shared";
import { listIndexes, type ListCursor, type RunListFilter, type RunRecord } from "../store/run-records.js";

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** The event type as an API version names it (a stored type is one of RUN_EVENT_TYPES). */
export function eventTypeFor(type: string, version: ApiVersion): RunEventType | RunEventTypeV2 {
  const stored = type as RunEventType;
  return version === "v2" ? (RUN_EVENT_V2_NAMES[stored] ?? stored) : stored;
}

/** The API body of a record. */
export function toRunView(record: RunRecord, version: ApiVersion): RunView {
  return {
    run_id: record.run_id,
    attempt_id: record.attempt_id,
    state: record.state,
    workflow: record.workflow,
    created_at: new Date(record.created_at_ms).toISOString(),
    started_at: iso(record.started_at_ms),
    ended_at: iso(record.ended_at_ms),
    runner_id: record.runner_id ?? null,
    heartbeat_at: iso(record.heartbeat_at_ms),
    lease_expires_at: iso(record.lease_expires_at_ms),
    terminal_reason: record.terminal_reason ?? null,
    error: record.error ?? null,
    cancel_reason: record.cancel_reason ?? null,
    policy: record.policy ?? null,
    rerun_of: record.rerun_of ?? null,
    waiting_reason: record.state === "queued" ? (record.waiting_reason ?? null) : null,
    last_event:
      record.last_event_id === undefined || record.last_seq === undefined
        ? null
        : { event_id: record.last_event_id, seq: record.last_seq, event_type: eventTypeFor(record.last_event_type ?? "", version) },
  };
}

/** A stored event as `GET /v1/runs/{id}/events` shows it: v2 names the type by its `event_type_v2`. */
export function toEventView(event: RunEvent, version: ApiVersion): RunEventView {
  return version === "v2" ? { ...event, event_type: event.event_type_v2 } : event;
}

/** The `next_cursor` text of a list position: base64url JSON, opaque to clients. */
export function encodeListCursor(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify([cursor.index, cursor.after])).toString("base64url");
}

/** The list position `text` names, for a list of `state`. Throws ApiError INVALID_PARAMS for anything encodeListCursor did not make, or made for a list of other runs. */
export function decodeListCursor(text: string, state: RunListFilter): ListCursor {
  const cursor = parseListCursor(text);
  if (cursor === undefined) throw new ApiError("INVALID_PARAMS", "cursor is not one this API returned (pass next_cursor unchanged)");
  if (!listIndexes(state).includes(cursor.index)) throw new ApiError("INVALID_PARAMS", `cursor belongs to a list of ${cursor.index} runs, not ${state}`);
  return cursor;
}

function parseListCursor(text: string): ListCursor | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
    const [index, after, ...rest] = Array.isArray(value) ? (value as unknown[]) : [];
    if (rest.length === 0 && (index === "active" || index === "terminal") && typeof after === "string" && (after === "" || /^\d{13}:/.test(after))) {
      return { index, after };
    }
  } catch {
    // not base64url JSON
  }
  return undefined;
}
