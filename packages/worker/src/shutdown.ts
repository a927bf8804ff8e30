import type { QueueConsumer } from "./consumers/queue-consumer.js";

/**
 * Graceful stop: keep consuming until nothing is waiting or active (or the timeout passes), then stop taking
 * jobs, flush the last batches and close. Returns the jobs still queued when it gave up.
 */
export async function drainThenClose(consumers: readonly QueueConsumer[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const pendingJobs = async () =>
    (await Promise.all(consumers.map((consumer) => consumer.pendingJobs().catch(() => 0)))).reduce((sum, count) => sum + count, 0);
  let left = await pendingJobs();
  while (left > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    left = await pendingJobs();
  }
  await Promise.all(consumers.map((consumer) => consumer.close()));
  return pendingJobs();
}
