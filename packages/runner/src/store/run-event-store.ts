/**
 * The recent events of each run, kept in Redis so any process can read or follow them: the CLI's `followRun`, the
 * run API's `GET /v1/runs/{id}/events?from_event_id=`, the stage view and the reconciler. Keys: run-keys.ts.
 *
 * Appending is one Lua script per run (run-scripts.ts): events after the terminal one are refused ("fenced") and
 * reported, and storing the terminal event also ends the run's record, atomically. A re-appended event (a spool
 * replay) is refused by Redis (its entry id is its seq) instead of duplicated.
 * Retention: each stream is capped (~`maxEventsPerRun`, oldest trimmed) and every key expires
 * `retentionSeconds` after the run's last event.
 */
import type { Redis } from "ioredis";
import { isTerminalRunEvent, type RunEvent } from "@flowmeter/shared";
import { UnknownEventCursorError } from "../errors.js";
import { eventScriptKeys, runKey, type RunLimits } from "./run-keys.js";
import { RUN_SCRIPTS } from "./run-scripts.js";

/** Where to start reading: after a seq, or after an event_id; from the first event when neither is given. */
export interface EventCursor {
  afterSeq?: number;
  afterEventId?: string;
}

const TERMINAL_STATES = { "run.finished": "succeeded", "run.failed": "failed", "run.cancelled": "cancelled" } as const;

/** An event as the scripts take it: seq, event_id, event_type, terminal state, terminal reason, detail, ts_ms, JSON. */
export function eventScriptArgs(event: RunEvent): string[] {
  let state = "";
  let reason = "";
  let detail = "";
  if (event.event_type === "run.finished") {
    [state, reason] = [TERMINAL_STATES[event.event_type], "succeeded"];
  } else if (event.event_type === "run.failed") {
    [state, reason, detail] = [TERMINAL_STATES[event.event_type], event.payload.reason ?? "failed", event.payload.error];
  } else if (event.event_type === "run.cancelled") {
    [state, reason, detail] = [TERMINAL_STATES[event.event_type], "cancelled", event.payload.reason];
  }
  return [String(event.seq), event.event_id, event.event_type, state, reason, detail, String(event.ts_ms), JSON.stringify(event)];
}

function parseEntries(entries: [string, string[]][]): RunEvent[] {
  return entries.map(([, fields]) => JSON.parse(fields[1] ?? "null") as RunEvent);
}

export class RunEventStore {
  constructor(
    private readonly redis: Redis,
    private readonly limits: RunLimits,
  ) {}

  /**
   * Appends events (in seq order per run). Events already stored are skipped, so a replay is harmless. Returns the
   * events refused because their run had already ended (another process stored its terminal event first): they
   * must not be passed on either.
   */
  async append(events: readonly RunEvent[]): Promise<RunEvent[]> {
    const byRun = new Map<string, RunEvent[]>();
    for (const event of events) {
      const list = byRun.get(event.run_id);
      if (list === undefined) byRun.set(event.run_id, [event]);
      else list.push(event);
    }
    const fenced: RunEvent[] = [];
    for (const [runId, runEvents] of byRun) {
      const refused = (await RUN_SCRIPTS.append.run(this.redis, eventScriptKeys(this.limits.prefix, runId), [
        runId,
        this.limits.maxEventsPerRun,
        this.limits.retentionSeconds,
        ...runEvents.flatMap(eventScriptArgs),
      ])) as string[];
      if (refused.length > 0) {
        const ids = new Set(refused);
        fenced.push(...runEvents.filter((event) => ids.has(event.event_id)));
      }
    }
    return fenced;
  }

  /** Events of a run after the cursor, in seq order, at most `limit`. */
  async read(runId: string, cursor: EventCursor = {}, limit = 1000): Promise<RunEvent[]> {
    return (await this.page(runId, cursor, limit)).events;
  }

  /** Like read, and says whether more events are stored after the page. */
  async page(runId: string, cursor: EventCursor = {}, limit = 1000): Promise<{ events: RunEvent[]; hasMore: boolean }> {
    const after = await this.resolveCursor(runId, cursor);
    const entries = (await this.redis.xrange(runKey(this.limits.prefix, runId, "events"), `${after + 2}-0`, "+", "COUNT", limit + 1)) as [string, string[]][];
    return { events: parseEntries(entries.slice(0, limit)), hasMore: entries.length > limit };
  }

  /** The run's latest stored event. */
  async last(runId: string): Promise<RunEvent | undefined> {
    const entries = (await this.redis.xrevrange(runKey(this.limits.prefix, runId, "events"), "+", "-", "COUNT", 1)) as [string, string[]][];
    return parseEntries(entries)[0];
  }

  /**
   * Yields the run's events after the cursor as they are stored, until the terminal event (included) or until
   * `signal` aborts. Blocks on Redis, so give it a connection of its own.
   */
  async *follow(runId: string, cursor: EventCursor = {}, options: { blockMs?: number; signal?: AbortSignal } = {}): AsyncGenerator<RunEvent> {
    let after = await this.resolveCursor(runId, cursor);
    const key = runKey(this.limits.prefix, runId, "events");
    while (options.signal?.aborted !== true) {
      const reply = await this.redis.xread("COUNT", 500, "BLOCK", options.blockMs ?? 1000, "STREAMS", key, `${after + 1}-0`);
      for (const event of parseEntries(reply?.[0]?.[1] ?? [])) {
        after = event.seq;
        yield event;
        if (isTerminalRunEvent(event)) return;
      }
    }
  }

  private async resolveCursor(runId: string, cursor: EventCursor): Promise<number> {
    if (cursor.afterEventId !== undefined) {
      const seq = await this.redis.hget(runKey(this.limits.prefix, runId, "event-ids"), cursor.afterEventId);
      if (seq === null) throw new UnknownEventCursorError(runId, cursor.afterEventId);
      return Number(seq);
    }
    return cursor.afterSeq ?? -1;
  }
}
