import type { RunEvent, RunState } from "@flowmeter/shared";
import { buildRunEvents } from "../execution/run-event-sequencer.js";
import type { RunStore } from "../store/run-store.js";

/**
 * Asks the fleet to cancel a run, wherever it executes. Idempotent; the first reason wins.
 * - running: marks it cancelled in Redis and tells the runners listening now; its runner stops the stages (running
 *   ones stage.failed, exit_code -1; the others stage.skipped), then run.cancelled. Resolves once Redis has the
 *   request, not when the run has ended.
 * - queued (no runner took it yet): ends it at once with run.cancelled (RunStore.endRun); a runner taking its job
 *   later does nothing.
 * - no record yet: the mark alone; a runner that takes the run later cancels it at once.
 * - ended: nothing changes.
 * Resolves with the state the run had when asked (undefined: no record), or `cancelled` for a queued run it ended.
 */
export async function cancelRun(store: RunStore, runId: string, reason: string): Promise<RunState | undefined> {
  await store.ready();
  const state = await store.records.requestCancel(runId, reason);
  if (state !== undefined && state !== "queued" && state !== "running") return state;
  await store.markCancel(runId, reason);
  if (state !== "queued") return state;

  // Queued: end it here. If a runner claimed it meanwhile, `endRun` changes nothing and that runner cancels it (the mark).
  const record = await store.records.get(runId);
  if (record === undefined || record.state !== "queued") return record?.state ?? state;
  const lastSeq = (await store.events.last(runId))?.seq ?? -1;
  const cancelReason = record.cancel_reason ?? reason;
  const [cancelled] = buildRunEvents(runId, record.attempt_id, lastSeq + 1, (events) =>
    events.emit(
      "run.cancelled",
      { message: `run of workflow "${record.workflow}" cancelled before a runner started it: ${cancelReason}`, level: "warn" },
      { workflow: record.workflow, duration_ms: 0, reason: cancelReason },
    ),
  ) as [RunEvent];
  const result = await store.endRun(runId, { state: "queued", lastSeq, requireExpiredLease: false }, [cancelled]);
  if (result !== "ended_now") return (await store.records.get(runId))?.state ?? state;
  return "cancelled";
}
