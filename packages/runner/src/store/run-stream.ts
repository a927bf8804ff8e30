/**
 * A bounded, per-run Redis stream of items numbered 1, 2, 3… within the run: telemetry samples
 * (`GET /v1/runs/{id}/telemetry`) and stage log lines (`GET /v1/runs/{id}/logs`). Written by the runner executing
 * the run (with its events, see delivery/queue-delivery.ts), readable by every runner process, since any of them may
 * serve the API.
 *
 * Key `<prefix>:run:<run_id>:<samples|logs>` (run-keys.ts), entry id `<seq>-0` (so a replayed item is refused by
 * Redis, not stored twice), field `s` = the item's JSON. At most `capacity` items, the oldest trimmed exactly at every
 * append; the key expires `retentionSeconds` after the run's last item. `capacity` 0 disables the stream: nothing is
 * written and reads answer nothing (the items still go to the run-events queue, so ClickHouse has them).
 */
import type { Redis } from "ioredis";
import { DEFAULT_EVENT_RETENTION_SECONDS, runKey } from "./run-keys.js";

const DUPLICATE_ENTRY = /equal or smaller than the target stream top item/;
/** Entries read per Redis call while filtering by stage. */
const SCAN_CHUNK = 500;

export interface RunStreamOptions<T> {
  prefix: string;
  suffix: "samples" | "logs";
  /** Items kept per run; 0 keeps none. */
  capacity: number;
  retentionSeconds?: number;
  /** Whether an item concerns a stage, for reads filtered by stage. */
  concernsStage: (item: T, stageName: string) => boolean;
}

export interface RunStreamPage<T> {
  items: T[];
  /** One past the last item looked at (pass it as the next from_seq); `fromSeq` when there was none. */
  nextSeq: number;
}

export class RunStream<T extends { run_id: string; seq: number }> {
  readonly capacity: number;
  private readonly retentionSeconds: number;

  constructor(
    private readonly redis: Redis,
    private readonly options: RunStreamOptions<T>,
  ) {
    if (!Number.isInteger(options.capacity) || options.capacity < 0) throw new Error(`capacity must be an integer of at least 0, got ${options.capacity}`);
    this.capacity = options.capacity;
    this.retentionSeconds = options.retentionSeconds ?? DEFAULT_EVENT_RETENTION_SECONDS;
  }

  private key(runId: string): string {
    return runKey(this.options.prefix, runId, this.options.suffix);
  }

  /** Stores items (in seq order per run); re-appended ones are skipped. A no-op when capacity is 0. */
  async append(items: readonly T[]): Promise<void> {
    if (this.capacity === 0 || items.length === 0) return;
    const pipeline = this.redis.pipeline();
    const runs = new Set<string>();
    for (const item of items) {
      runs.add(item.run_id);
      pipeline.xadd(this.key(item.run_id), "MAXLEN", this.capacity, `${item.seq}-0`, "s", JSON.stringify(item));
    }
    for (const runId of runs) pipeline.expire(this.key(runId), this.retentionSeconds);
    for (const [error] of (await pipeline.exec()) ?? []) {
      if (error !== null && !DUPLICATE_ENTRY.test(error.message)) throw error;
    }
  }

  /**
   * Items of a run with seq ≥ `fromSeq`, at most `limit`, optionally only those concerning `stageName` and those
   * `keep` keeps (the stream is read on until `limit` are found or it ends; it holds at most `capacity` items).
   */
  async read(runId: string, fromSeq: number, limit: number, stageName?: string, keep?: (item: T) => boolean): Promise<RunStreamPage<T>> {
    const key = this.key(runId);
    const items: T[] = [];
    let nextSeq = fromSeq;
    for (;;) {
      const count = stageName === undefined && keep === undefined ? limit : SCAN_CHUNK;
      const entries = (await this.redis.xrange(key, `${nextSeq}-0`, "+", "COUNT", count)) as [string, string[]][];
      for (const [, fields] of entries) {
        const item = JSON.parse(fields[1] ?? "null") as T;
        nextSeq = item.seq + 1;
        if (stageName !== undefined && !this.options.concernsStage(item, stageName)) continue;
        if (keep !== undefined && !keep(item)) continue;
        items.push(item);
        if (items.length >= limit) return { items, nextSeq };
      }
      if (entries.length < count) return { items, nextSeq };
    }
  }

  /** The newest `count` items of a run (oldest first), optionally only those concerning `stageName`. */
  async tail(runId: string, count: number, stageName?: string): Promise<T[]> {
    const items: T[] = [];
    let before = "+";
    for (;;) {
      const entries = (await this.redis.xrevrange(this.key(runId), before, "-", "COUNT", SCAN_CHUNK)) as [string, string[]][];
      for (const [id, fields] of entries) {
        before = `(${id}`;
        const item = JSON.parse(fields[1] ?? "null") as T;
        if (stageName !== undefined && !this.options.concernsStage(item, stageName)) continue;
        items.push(item);
        if (items.length >= count) return items.reverse();
      }
      if (entries.length < SCAN_CHUNK) return items.reverse();
    }
  }
}
