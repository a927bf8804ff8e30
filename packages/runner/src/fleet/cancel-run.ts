import type { Redis } from "ioredis";
import { DEFAULT_EVENT_RETENTION_SECONDS, runKey } from "../delivery/run-event-store.js";

/** The pub/sub channel every RunConsumer of a prefix listens on for cancel requests. */
export function cancelChannel(prefix: string): string {
  return `${prefix}:runner:cancel`;
}

export interface CancelMessage {
  run_id: string;
  reason: string;
}

/**
 * Asks the fleet to cancel a run, wherever it executes: marks it cancelled in Redis (a runner that takes the run
 * later cancels it at once) and tells the runners listening now. Idempotent; the run ends `run.cancelled`
 * unless it has already ended. Resolves once Redis has the request, not when the run has ended.
 */
export async function cancelRun(redis: Redis, prefix: string, runId: string, reason: string, retentionSeconds = DEFAULT_EVENT_RETENTION_SECONDS): Promise<void> {
  const message: CancelMessage = { run_id: runId, reason };
  await redis
    .multi()
    .set(runKey(prefix, runId, "cancel"), reason, "EX", retentionSeconds, "NX")
    .publish(cancelChannel(prefix), JSON.stringify(message))
    .exec();
}
