/**
 * The recent events of each run, kept in Redis so any process can read or follow them: the CLI's `followRun`
 * now, the run API's `GET /v1/runs/{id}/events?from_event_id=` later.
 *
 * Layout, under the queue prefix:
 * - `<prefix>:run:<run_id>:events`: a stream, one entry per event (field `e` = the event JSON), entry id
 *   `<seq + 1>-0`, so entries are ordered by seq, a seq cursor maps to an entry id, and re-appending an event
 *   (a spool replay) is refused by Redis instead of duplicated;
 * - `<prefix>:run:<run_id>:event-ids`: a hash event_id → seq, to resume from an event_id;
 * - `<prefix>:run:<run_id>:cancel`: set when a cancel was requested (see cancel-run.ts).
 * Retention: each stream is capped (~`maxEventsPerRun`, oldest trimmed) and every key expires
 * `retentionSeconds` after the run's last event.
 */
import type { Redis } from "ioredis";
import { isTerminalRunEvent, type RunEvent } from "@flowmeter/shared";
import { UnknownEventCursorError } from "../errors.js";

export const DEFAULT_EVENT_RETENTION_SECONDS = 7 * 86_400;
export const DEFAULT_MAX_EVENTS_PER_RUN = 10_000;

export interface RunEventStoreOptions {
  /** The queue prefix (QUEUE_PREFIX), so one prefix holds a deployment's queues and run events. */
  prefix: string;
  retentionSeconds?: number;
  maxEventsPerRun?: number;
}

/** Where to start reading: after a seq, or after an event_id; from the first event when neither is given. */
export interface EventCursor {
  afterSeq?: number;
  afterEventId?: string;
}

const DUPLICATE_ENTRY = /equal or smaller than the target stream top item/;

export function runKey(prefix: string, runId: string, suffix: "events" | "event-ids" | "cancel"): string {
  return `${prefix}:run:${runId}:${suffix}`;
}

function parseEntries(entries: [string, string[]][]): RunEvent[] {
  return entries.map(([, fields]) => JSON.parse(fields[1] ?? "null") as RunEvent);
}

export class RunEventStore {
  readonly prefix: string;
  readonly retentionSeconds: number;
  private readonly maxEventsPerRun: number;

  constructor(
    private readonly redis: Redis,
    options: RunEventStoreOptions,
  ) {
    this.prefix = options.prefix;
    this.retentionSeconds = options.retentionSeconds ?? DEFAULT_EVENT_RETENTION_SECONDS;
    this.maxEventsPerRun = options.maxEventsPerRun ?? DEFAULT_MAX_EVENTS_PER_RUN;
  }

  /** Appends events (in seq order per run). Events already stored are skipped, so a replay is harmless. */
  async append(events: readonly RunEvent[]): Promise<void> {
    if (events.length === 0) return;
    const pipeline = this.redis.pipeline();
    const runs = new Set<string>();
    for (const event of events) {
      runs.add(event.run_id);
      pipeline.xadd(runKey(this.prefix, event.run_id, "events"), "MAXLEN", "~", this.maxEventsPerRun, `${event.seq + 1}-0`, "e", JSON.stringify(event));
      pipeline.hset(runKey(this.prefix, event.run_id, "event-ids"), event.event_id, String(event.seq));
    }
    for (const runId of runs) {
      pipeline.expire(runKey(this.prefix, runId, "events"), this.retentionSeconds);
      pipeline.expire(runKey(this.prefix, runId, "event-ids"), this.retentionSeconds);
    }
    const results = (await pipeline.exec()) ?? [];
    for (const [error] of results) {
      if (error !== null && !DUPLICATE_ENTRY.test(error.message)) throw error;
    }
  }

  /** Events of a run after the cursor, in seq order, at most `limit`. */
  async read(runId: string, cursor: EventCursor = {}, limit = 1000): Promise<RunEvent[]> {
    const after = await this.resolveCursor(runId, cursor);
    const entries = (await this.redis.xrange(runKey(this.prefix, runId, "events"), `${after + 2}-0`, "+", "COUNT", limit)) as [string, string[]][];
    return parseEntries(entries);
  }

  /** The run's latest stored event. */
  async last(runId: string): Promise<RunEvent | undefined> {
    const entries = (await this.redis.xrevrange(runKey(this.prefix, runId, "events"), "+", "-", "COUNT", 1)) as [string, string[]][];
    return parseEntries(entries)[0];
  }

  /**
   * Yields the run's events after the cursor as they are stored, until the terminal event (included) or until
   * `signal` aborts. Blocks on Redis, so give it a connection of its own.
   */
  async *follow(runId: string, cursor: EventCursor = {}, options: { blockMs?: number; signal?: AbortSignal } = {}): AsyncGenerator<RunEvent> {
    let after = await this.resolveCursor(runId, cursor);
    const key = runKey(this.prefix, runId, "events");
    while (options.signal?.aborted !== true) {
      const reply = (await this.redis.xread("COUNT", 500, "BLOCK", options.blockMs ?? 1000, "STREAMS", key, `${after + 1}-0`)) as
        | [string, [string, string[]][]][]
        | null;
      for (const event of parseEntries(reply?.[0]?.[1] ?? [])) {
        after = event.seq;
        yield event;
        if (isTerminalRunEvent(event)) return;
      }
    }
  }

  private async resolveCursor(runId: string, cursor: EventCursor): Promise<number> {
    if (cursor.afterEventId !== undefined) {
      const seq = await this.redis.hget(runKey(this.prefix, runId, "event-ids"), cursor.afterEventId);
      if (seq === null) throw new UnknownEventCursorError(runId, cursor.afterEventId);
      return Number(seq);
    }
    return cursor.afterSeq ?? -1;
  }
}
