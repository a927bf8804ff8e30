/**
 * Finds a Redis for `flowmeter start`: REDIS_URL if set, else the one on 127.0.0.1:6379, else a private
 * redis-server under the data directory (AOF on, noeviction: queued telemetry must never be evicted).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { DEFAULT_REDIS_URL, type Logger } from "@flowmeter/platform";
import { RedisUnavailableError, connectRedis, redisAnswersWithin } from "./redis-connection.js";

export { RedisUnavailableError };

export const REDIS_INSTALL_HINT =
  "flowmeter needs Redis (its queues live there). Install it and run `npm start` again:\n" +
  "  Debian/Ubuntu: sudo apt-get install -y redis-server\n" +
  "  macOS:         brew install redis\n" +
  "or point REDIS_URL at a Redis server (redis://host:6379).";

export interface RedisChoice {
  url: string;
  /** The private server we launched, to stop on shutdown. */
  process: ChildProcess | undefined;
}

/** A 202 is only as durable as Redis: say so when the Redis in use keeps nothing on disk or may evict queued jobs. */
async function warnAboutDurability(url: string, logger: Logger): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on("error", () => {});
  try {
    await redis.connect();
    const [, appendonly] = (await redis.config("GET", "appendonly")) as string[];
    const [, save] = (await redis.config("GET", "save")) as string[];
    const [, policy] = (await redis.config("GET", "maxmemory-policy")) as string[];
    if (appendonly !== "yes" && (save ?? "") === "") {
      logger.warn(
        "this Redis keeps nothing on disk (appendonly no, no save): queued telemetry is lost if it restarts; set REDIS_URL to a Redis with AOF, or stop it and let npm start launch its own",
        { url },
      );
    }
    if (policy !== "noeviction") logger.warn(`this Redis may evict keys (maxmemory-policy ${policy}); queued telemetry needs noeviction`, { url });
  } catch {
    // CONFIG may be disabled (managed Redis); nothing to say then.
  } finally {
    redis.disconnect();
  }
}

function redisServerInstalled(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

export async function chooseRedis(configuredUrl: string | undefined, dataDir: string, logger: Logger, port = 6379): Promise<RedisChoice> {
  if (configuredUrl !== undefined) {
    const redis = await connectRedis(configuredUrl, {
      hint: "REDIS_URL names it: start that Redis, or unset REDIS_URL to let flowmeter use or launch a local one.",
    });
    redis.disconnect();
    return { url: configuredUrl, process: undefined };
  }
  const localUrl = port === 6379 ? DEFAULT_REDIS_URL : `redis://127.0.0.1:${port}`;
  if (await redisAnswersWithin(localUrl, 1000)) {
    logger.info("using the Redis already running", { url: localUrl });
    await warnAboutDurability(localUrl, logger);
    return { url: localUrl, process: undefined };
  }
  if (!redisServerInstalled()) throw new RedisUnavailableError(`nothing answers on ${localUrl} and redis-server is not installed.\n${REDIS_INSTALL_HINT}`);

  const dir = join(dataDir, "redis");
  mkdirSync(dir, { recursive: true });
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--appendonly",
    "yes",
    "--appendfsync",
    "everysec",
    "--save",
    "",
    "--maxmemory-policy",
    "noeviction",
  ];
  const server = spawn("redis-server", args, { stdio: ["ignore", "ignore", "inherit"], detached: true });
  logger.info("launching a private redis-server", { url: localUrl, dir, appendonly: "yes", maxmemory_policy: "noeviction" });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) break;
    if (await redisAnswersWithin(localUrl, 500)) return { url: localUrl, process: server };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  server.kill("SIGKILL");
  throw new RedisUnavailableError(
    `the private redis-server on ${localUrl} did not start (is the port in use by something that is not Redis?).\n${REDIS_INSTALL_HINT}`,
  );
}
