/**
 * The Redis the bench's pipeline uses, found as `flowmeter start` finds one: REDIS_URL if set (it must answer), else
 * the one on 127.0.0.1:6379, else a private redis-server under the bench's directory with the settings
 * `flowmeter start` gives the one it launches (append-only file, fsync every second; Redis's default noeviction).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { DEFAULT_REDIS_URL, redisAnswersAt, type Logger } from "@flowmeter/platform";
import { freePort, startPrivateRedis } from "@flowmeter/test-utils";

export interface BenchRedis {
  url: string;
  /** Stops the private redis-server, if the bench launched one. */
  stop(): Promise<void>;
}

export async function benchRedis(configuredUrl: string | undefined, dir: string, logger: Logger): Promise<BenchRedis> {
  if (configuredUrl !== undefined) {
    if (await redisAnswersAt(configuredUrl, 2000)) return { url: configuredUrl, stop: async () => undefined };
    throw new Error(`REDIS_URL=${configuredUrl} does not answer: start that Redis, or unset REDIS_URL`);
  }
  if (await redisAnswersAt(DEFAULT_REDIS_URL, 1000)) return { url: DEFAULT_REDIS_URL, stop: async () => undefined };
  if (spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status !== 0)
    throw new Error("nothing answers on 127.0.0.1:6379 and redis-server is not installed: install Redis, or set REDIS_URL");
  mkdirSync(dir, { recursive: true });
  const server = await startPrivateRedis(await freePort(), dir, { appendfsync: "everysec" });
  logger.info("nothing answers on 127.0.0.1:6379: launched a private redis-server", { url: server.url, dir });
  return { url: server.url, stop: () => server.kill() };
}
