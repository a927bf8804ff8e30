import { partitionCountKey } from "@flowmeter/shared";
import { Redis, type RedisOptions } from "ioredis";

/**
 * `producer` connections (ingest, runner enqueue) fail fast when Redis is away, so a request can answer 503
 * instead of hanging; `worker` connections retry forever, as BullMQ workers require.
 */
export function createRedis(url: string, role: "producer" | "worker", extra: RedisOptions = {}): Redis {
  const options: RedisOptions =
    role === "producer"
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: (times) => Math.min(times * 200, 2000) }
      : { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 200, 2000) };
  return new Redis(url, { ...options, ...extra, lazyConnect: false });
}

/** True when `connection` is ready and its server answers PING within `timeoutMs` (a health check that never hangs). */
export async function redisAnswers(connection: Redis, timeoutMs = 1000): Promise<boolean> {
  if (connection.status !== "ready") return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    return (await Promise.race([connection.ping(), timeout])) === "PONG";
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** True when a Redis server answers PING at `url` within `timeoutMs` (a probe connection, closed after). */
export async function redisAnswersAt(url: string, timeoutMs = 1000): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs, enableOfflineQueue: false });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return await redisAnswers(probe, timeoutMs);
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * The client-telemetry stream's partition count is fixed for a queue prefix: the first ingest or worker to reach Redis
 * records FLOWMETER_PARTITIONS, and a process started with another count is refused (entries would go to queues no
 * worker reads, or one entry's copies to two partitions). Returns the problem, or undefined when the counts agree.
 */
export async function partitionCountProblem(connection: Redis, queuePrefix: string, partitions: number): Promise<string | undefined> {
  const key = partitionCountKey(queuePrefix);
  await connection.set(key, String(partitions), "NX");
  const recorded = Number(await connection.get(key));
  if (recorded === partitions) return undefined;
  return (
    `FLOWMETER_PARTITIONS=${partitions}, but the queues under QUEUE_PREFIX=${queuePrefix} are cut into ${recorded} partitions ` +
    `(recorded in Redis at ${key}); start every ingest and worker with FLOWMETER_PARTITIONS=${recorded}, or use a new QUEUE_PREFIX`
  );
}
