/**
 * How ingest's producers (client telemetry, OTLP) meet a slow or absent Redis: the same timeout before a request falls
 * back to the spool, the same 503 when nothing can take it, and the same replay pace for what was spooled.
 */
import { ApiError } from "@flowmeter/shared";
import type { Redis } from "ioredis";

/** Under the real CLI's 2 s request timeout, so a slow Redis still leaves time to spool and answer 202. */
export const ENQUEUE_TIMEOUT_MS = 1000;
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/**
 * Spool replay: items per add; how long a PING or an add may take (no client waits on a replay, so longer than a
 * request's enqueue: fewer adds that time out yet land); backoff, so a replay starts within ~2 s of Redis answering.
 */
export const REPLAY = { chunk: 50, timeoutMs: 5000, retryMinMs: 250, retryMaxMs: 2000 } as const;

const FAIL_FAST_STATUSES: ReadonlySet<string> = new Set(["reconnecting", "close", "end"]);

/** Between Redis's reconnect attempts: a send would only wait for its timeout, so fail over at once. */
export function redisIsAway(redis: Redis): boolean {
  return FAIL_FAST_STATUSES.has(redis.status);
}

export function unavailable(cause?: unknown): ApiError {
  return new ApiError("UNAVAILABLE", "the queue is unavailable; retry later", { retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS, cause });
}
