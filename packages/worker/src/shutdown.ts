import type { ClientTelemetryConsumer } from "./consumers/client-telemetry.consumer.js";

/**
 * Graceful stop: keep consuming until nothing is waiting or active (or the timeout passes), then stop taking
 * jobs, flush the last batch and close. Returns the jobs still queued when it gave up.
 */
export async function drainThenClose(consumer: ClientTelemetryConsumer, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const pendingJobs = async () => {
    const counts = await consumer.queue.getJobCounts("waiting", "active", "prioritized");
    return Object.values(counts).reduce((sum, count) => sum + count, 0);
  };
  let left = await pendingJobs().catch(() => 0);
  while (left > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    left = await pendingJobs().catch(() => 0);
  }
  await consumer.close();
  return pendingJobs().catch(() => 0);
}
