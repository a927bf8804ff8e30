/**
 * The recent telemetry samples of each run (host samples and step heartbeats), for `GET /v1/runs/{id}/telemetry`.
 * Written by the runner executing the run (with its events, see queue-delivery.ts), readable by every runner
 * process, since any of them may serve the API.
 *
 * `<prefix>:run:<run_id>:samples`: a stream, entry id `<seq>-0` (samples are 1-based per run), field `s` = the
 * sample JSON. Bounded: at most `capacity` samples, the oldest trimmed exactly at every append; the key expires
 * `retentionSeconds` after the run's last sample, so a run's buffer is released once it has ended and its
 * retention passed. `capacity` 0 disables the buffer: nothing is written, and reads answer no samples (the samples
 * still go to the run-events queue, so ClickHouse has them).
 */
import type { Redis } from "ioredis";
import type { TelemetrySample } from "@flowmeter/shared";
import { DEFAULT_EVENT_RETENTION_SECONDS, runKey } from "../delivery/run-event-store.js";

export const DEFAULT_TELEMETRY_BUFFER_SIZE = 5000;
const DUPLICATE_ENTRY = /equal or smaller than the target stream top item/;
/** Entries read per Redis call while filtering by stage. */
const SCAN_CHUNK = 500;

export interface RunSampleStoreOptions {
  prefix: string;
  /** Samples kept per run; 0 keeps none. */
  capacity?: number;
  retentionSeconds?: number;
}

export interface SamplePage {
  samples: TelemetrySample[];
  /** One past the last sample looked at (pass it as the next from_seq); `fromSeq` when there was none. */
  nextSeq: number;
}

/** Whether a sample concerns a stage: a heartbeat of it, or a host sample taken while it ran. */
function concernsStage(sample: TelemetrySample, stageName: string): boolean {
  return sample.kind === "heartbeat" ? sample.stage_name === stageName : sample.stage_name.split(",").includes(stageName);
}

export class RunSampleStore {
  readonly capacity: number;
  private readonly prefix: string;
  private readonly retentionSeconds: number;

  constructor(
    private readonly redis: Redis,
    options: RunSampleStoreOptions,
  ) {
    const capacity = options.capacity ?? DEFAULT_TELEMETRY_BUFFER_SIZE;
    if (!Number.isInteger(capacity) || capacity < 0) throw new Error(`capacity must be an integer of at least 0, got ${capacity}`);
    this.capacity = capacity;
    this.prefix = options.prefix;
    this.retentionSeconds = options.retentionSeconds ?? DEFAULT_EVENT_RETENTION_SECONDS;
  }

  /** Stores samples (in seq order per run); re-appended ones are skipped. A no-op when capacity is 0. */
  async append(samples: readonly TelemetrySample[]): Promise<void> {
    if (this.capacity === 0 || samples.length === 0) return;
    const pipeline = this.redis.pipeline();
    const runs = new Set<string>();
    for (const sample of samples) {
      runs.add(sample.run_id);
      pipeline.xadd(runKey(this.prefix, sample.run_id, "samples"), "MAXLEN", this.capacity, `${sample.seq}-0`, "s", JSON.stringify(sample));
    }
    for (const runId of runs) pipeline.expire(runKey(this.prefix, runId, "samples"), this.retentionSeconds);
    for (const [error] of (await pipeline.exec()) ?? []) {
      if (error !== null && !DUPLICATE_ENTRY.test(error.message)) throw error;
    }
  }

  /** Samples of a run with seq ≥ `fromSeq`, at most `limit`, optionally only those concerning `stageName`. */
  async read(runId: string, fromSeq: number, limit: number, stageName?: string): Promise<SamplePage> {
    const key = runKey(this.prefix, runId, "samples");
    const samples: TelemetrySample[] = [];
    let nextSeq = fromSeq;
    for (;;) {
      const count = stageName === undefined ? limit : SCAN_CHUNK;
      const entries = (await this.redis.xrange(key, `${nextSeq}-0`, "+", "COUNT", count)) as [string, string[]][];
      for (const [, fields] of entries) {
        const sample = JSON.parse(fields[1] ?? "null") as TelemetrySample;
        nextSeq = sample.seq + 1;
        if (stageName !== undefined && !concernsStage(sample, stageName)) continue;
        samples.push(sample);
        if (samples.length >= limit) return { samples, nextSeq };
      }
      if (entries.length < count) return { samples, nextSeq };
    }
  }
}
