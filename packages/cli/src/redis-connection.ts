/**
 * How every command that needs Redis reaches it: a connection that has answered PING within a deadline, or exit 69
 * with a message naming the Redis it tried (credentials redacted). Without the deadline a Redis that refuses, never
 * answers (a frozen server accepts the TCP connection and stays silent) or has no such host leaves the command
 * waiting for good, printing nothing.
 */
import { createRedis, errorMessage, redactUrl, redisAnswers } from "@flowmeter/platform";
import type { Redis } from "ioredis";
import { CliError, EXIT } from "./cli-error.js";

/** How long a command waits for Redis before it gives up (exit 69). */
export const REDIS_CONNECT_TIMEOUT_MS = 5000;

export class RedisUnavailableError extends CliError {
  override readonly name: string = "RedisUnavailableError";
  constructor(message: string) {
    super(message, EXIT.unavailable);
  }
}

/**
 * A producer connection (fails fast while Redis is away) to the Redis at `url`, once it has answered PING; a
 * RedisUnavailableError naming `url` (redacted), the last connection error and `hint` when it has not within
 * `timeoutMs`. The caller disconnects it.
 */
export async function connectRedis(
  url: string,
  { timeoutMs = REDIS_CONNECT_TIMEOUT_MS, hint = "Is flowmeter running (npm start)?" }: { timeoutMs?: number; hint?: string } = {},
): Promise<Redis> {
  const redis = createRedis(url, "producer");
  let lastError = "";
  redis.on("error", (error) => (lastError = errorMessage(error)));
  const deadline = Date.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const answered = await Promise.race([
    (async () => {
      if (redis.status !== "ready") await new Promise((resolve) => redis.once("ready", resolve));
      return redisAnswers(redis, Math.max(1, deadline - Date.now()));
    })(),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
  ]).finally(() => clearTimeout(timer));
  if (answered) return redis;
  redis.disconnect();
  const why = lastError === "" ? "" : `; last error: ${lastError}`;
  throw new RedisUnavailableError(`Redis at ${redactUrl(url)} does not answer (no answer in ${timeoutMs / 1000} s${why}). ${hint}`);
}

/** True when the Redis at `url` answers PING within `timeoutMs` (a probe connection, closed after). */
export async function redisAnswersWithin(url: string, timeoutMs: number): Promise<boolean> {
  return connectRedis(url, { timeoutMs }).then(
    (redis) => {
      redis.disconnect();
      return true;
    },
    () => false,
  );
}
