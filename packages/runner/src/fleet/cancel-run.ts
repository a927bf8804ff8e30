import type { Redis } from "ioredis";
import { Queue } from "bullmq";
import { JOB_CATALOG, type RunEvent, type RunEventsJob, type RunState } from "@flowmeter/shared";
import { DEFAULT_EVENT_RETENTION_SECONDS, RunEventStore, runKey } from "../delivery/run-event-store.js";
import { buildRunEvents } from "../execution/run-event-sequencer.js";
import { RunRecords } from "../runs/run-records.js";

/** The pub/sub channel every RunConsumer of a prefix listens on for cancel requests. */
export function cancelChannel(prefix: string): string {
  return `${prefix}:runner:cancel`;
}

export interface CancelMessage {
  run_id: string;
  reason: string;
}

export interface CancelRunOptions {
  /** How long the cancel mark of a run not started yet is kept. */
  retentionSeconds?: number;
  /**
   * Where the run.cancelled event of a queued run goes besides the event store (the run-events queue, for the
   * worker). Default: a job on the prefix's run-events queue, through `redis`.
   */
  publish?: (events: readonly RunEvent[]) => void | Promise<void>;
}

/**
 * Asks the fleet to cancel a run, wherever it executes. Idempotent; the first reason wins.
 * - running: marks it cancelled in Redis and tells the runners listening now; its runner stops the stages (running
 *   ones stage.failed, exit_code -1; the others stage.skipped), then run.cancelled. Resolves once Redis has the
 *   request, not when the run has ended.
 * - queued (no runner took it yet): ends it at once with run.cancelled; a runner taking its job later does nothing.
 * - no record yet: the mark alone; a runner that takes the run later cancels it at once.
 * - ended: nothing changes.
 * Resolves with the state the run had when asked (undefined: no record), or `cancelled` for a queued run it ended.
 */
export async function cancelRun(redis: Redis, prefix: string, runId: string, reason: string, options: CancelRunOptions = {}): Promise<RunState | undefined> {
  const retentionSeconds = options.retentionSeconds ?? DEFAULT_EVENT_RETENTION_SECONDS;
  const records = new RunRecords(redis, { prefix, retentionSeconds });
  const state = await records.requestCancel(runId, reason);
  if (state !== undefined && state !== "queued" && state !== "running") return state;
  const message: CancelMessage = { run_id: runId, reason };
  await redis
    .multi()
    .set(runKey(prefix, runId, "cancel"), reason, "EX", retentionSeconds, "NX")
    .publish(cancelChannel(prefix), JSON.stringify(message))
    .exec();
  if (state !== "queued") return state;

  // Queued: end it here. If a runner claimed it meanwhile, `end` changes nothing and that runner cancels it (the mark).
  const record = await records.get(runId);
  if (record === undefined || record.state !== "queued") return record?.state ?? state;
  const lastSeq = (await new RunEventStore(redis, { prefix }).last(runId))?.seq ?? -1;
  const cancelReason = record.cancel_reason ?? reason;
  const [cancelled] = buildRunEvents(runId, record.attempt_id, lastSeq + 1, (events) =>
    events.emit(
      "run.cancelled",
      { message: `run of workflow "${record.workflow}" cancelled before a runner started it: ${cancelReason}`, level: "warn" },
      { workflow: record.workflow, duration_ms: 0, reason: cancelReason },
    ),
  ) as [RunEvent];
  const result = await records.end(runId, { state: "queued", lastSeq, requireExpiredLease: false }, [cancelled]);
  if (result !== "ended_now") return (await records.get(runId))?.state ?? state;
  await (options.publish ?? ((events: readonly RunEvent[]) => publishToQueue(redis, prefix, events)))([cancelled]);
  return "cancelled";
}

async function publishToQueue(redis: Redis, prefix: string, events: readonly RunEvent[]): Promise<void> {
  const queue = new Queue<RunEventsJob>(JOB_CATALOG.runEvents.queue, { connection: redis, prefix });
  try {
    await queue.add(JOB_CATALOG.runEvents.jobName, { events: [...events], samples: [], producedAtMs: Date.now() }, JOB_CATALOG.runEvents.options);
  } finally {
    await queue.close();
  }
}
