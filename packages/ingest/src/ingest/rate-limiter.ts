/**
 * Token bucket per key (API key or remote address), counted in entries. A bucket holds up to `burst`
 * tokens and refills at `ratePerSecond`. A request larger than the burst is let through when the bucket
 * is full and leaves it in debt, so a low limit never blocks a request outright.
 */
export type RateLimitDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

export interface RateLimiter {
  take(key: string, entries: number): RateLimitDecision;
}

export interface RateLimiterOptions {
  /** 0 disables the limiter. */
  ratePerSecond: number;
  /** Defaults to twice the rate. */
  burst?: number;
  /** Buckets kept before idle ones are dropped; bounds memory when keys are remote addresses. */
  maxKeys?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export function createRateLimiter({ ratePerSecond, burst = ratePerSecond * 2, maxKeys = 10_000, now = Date.now }: RateLimiterOptions): RateLimiter {
  const buckets = new Map<string, Bucket>();

  function refill(bucket: Bucket, nowMs: number): void {
    bucket.tokens = Math.min(burst, bucket.tokens + ((nowMs - bucket.updatedMs) / 1000) * ratePerSecond);
    bucket.updatedMs = nowMs;
  }

  function evict(nowMs: number): void {
    for (const [key, bucket] of buckets) {
      refill(bucket, nowMs);
      if (bucket.tokens >= burst) buckets.delete(key);
    }
    // Still too many active keys: drop the oldest (Map keeps insertion order).
    for (const key of buckets.keys()) {
      if (buckets.size < maxKeys) break;
      buckets.delete(key);
    }
  }

  return {
    take(key, entries) {
      if (ratePerSecond <= 0 || entries <= 0) return { ok: true };
      const nowMs = now();
      let bucket = buckets.get(key);
      if (bucket === undefined) {
        if (buckets.size >= maxKeys) evict(nowMs);
        bucket = { tokens: burst, updatedMs: nowMs };
        buckets.set(key, bucket);
      } else {
        refill(bucket, nowMs);
      }
      const needed = Math.min(entries, burst);
      if (bucket.tokens >= needed) {
        bucket.tokens -= entries;
        return { ok: true };
      }
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((needed - bucket.tokens) / ratePerSecond)) };
    },
  };
}
