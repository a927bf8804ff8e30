import { describe, expect, it } from "vitest";
import { createRateLimiter } from "./rate-limiter.js";

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let current = start;
  return { now: () => current, advance: (ms) => (current += ms) };
}

describe("createRateLimiter", () => {
  it("allows a burst of twice the rate, then refills at the rate", () => {
    const time = clock();
    const limiter = createRateLimiter({ ratePerSecond: 10, now: time.now });
    expect(limiter.take("a", 20)).toEqual({ ok: true });
    expect(limiter.take("a", 1)).toEqual({ ok: false, retryAfterSeconds: 1 });
    time.advance(500);
    expect(limiter.take("a", 5)).toEqual({ ok: true });
    expect(limiter.take("a", 5)).toEqual({ ok: false, retryAfterSeconds: 1 });
    time.advance(1000);
    expect(limiter.take("a", 10)).toEqual({ ok: true });
  });

  it("computes Retry-After from the missing tokens", () => {
    const time = clock();
    const limiter = createRateLimiter({ ratePerSecond: 2, now: time.now });
    expect(limiter.take("a", 4)).toEqual({ ok: true });
    expect(limiter.take("a", 4)).toEqual({ ok: false, retryAfterSeconds: 2 });
    time.advance(1000);
    expect(limiter.take("a", 4)).toEqual({ ok: false, retryAfterSeconds: 1 });
  });

  it("keeps one bucket per key", () => {
    const limiter = createRateLimiter({ ratePerSecond: 1, now: clock().now });
    expect(limiter.take("a", 2)).toEqual({ ok: true });
    expect(limiter.take("a", 1).ok).toBe(false);
    expect(limiter.take("b", 2)).toEqual({ ok: true });
  });

  it("lets a request larger than the burst through when the bucket is full, leaving it in debt", () => {
    const time = clock();
    const limiter = createRateLimiter({ ratePerSecond: 10, now: time.now });
    expect(limiter.take("a", 50)).toEqual({ ok: true });
    // 30 tokens in debt: a full bucket (20) is 5 s away.
    expect(limiter.take("a", 50)).toEqual({ ok: false, retryAfterSeconds: 5 });
    time.advance(5000);
    expect(limiter.take("a", 50)).toEqual({ ok: true });
  });

  it("is disabled with a rate of 0", () => {
    const limiter = createRateLimiter({ ratePerSecond: 0 });
    for (let i = 0; i < 10; i += 1) expect(limiter.take("a", 1_000_000)).toEqual({ ok: true });
  });

  it("bounds the number of buckets it keeps", () => {
    const time = clock();
    const limiter = createRateLimiter({ ratePerSecond: 1, maxKeys: 3, now: time.now });
    for (const key of ["a", "b", "c", "d", "e"]) expect(limiter.take(key, 2)).toEqual({ ok: true });
    // "a" was dropped to make room, so it starts again with a full bucket.
    expect(limiter.take("a", 2)).toEqual({ ok: true });
  });
});
