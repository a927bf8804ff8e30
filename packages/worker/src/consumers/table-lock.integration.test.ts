import { afterAll, describe, expect, it } from "vitest";
import { createRedis } from "@flowmeter/platform";
import { deleteQueuePrefix, testQueuePrefix, testRedisUrl } from "@flowmeter/test-utils";
import { createTableLock } from "./table-lock.js";

describe("table lock", () => {
  const prefix = testQueuePrefix("table-lock");
  const redis = createRedis(testRedisUrl(), "worker");
  const lost: string[] = [];
  const lock = createTableLock(redis, { queuePrefix: prefix, ttlMs: 1000, waitMs: 10_000, onLost: (table) => lost.push(table) });

  afterAll(async () => {
    redis.disconnect();
    await deleteQueuePrefix(prefix);
  });

  it("lets one holder in at a time, across callers, and keeps the lock past its TTL while held", async () => {
    const order: string[] = [];
    let releaseFirst: () => void = () => undefined;
    const firstHolds = new Promise<void>((resolve) => (releaseFirst = resolve));
    const first = lock.hold("t", async () => {
      order.push("first in");
      await firstHolds;
      order.push("first out");
    });
    const second = lock.hold("t", async () => {
      order.push("second in");
    });
    // Held three TTLs: renewal keeps it.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(order).toEqual(["first in"]);
    releaseFirst();
    await Promise.all([first, second]);
    expect(order).toEqual(["first in", "first out", "second in"]);
    expect(lost).toEqual([]);
    expect(await redis.exists(`${prefix}:lock:t`)).toBe(0);
  });

  it("is free again once the TTL of a holder that died has passed", async () => {
    await redis.set(`${prefix}:lock:u`, "a worker that died", "PX", 1000);
    const startedAt = Date.now();
    await lock.hold("u", async () => undefined);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(900);
  });

  it("gives up when the lock is not free within its wait", async () => {
    const impatient = createTableLock(redis, { queuePrefix: prefix, ttlMs: 10_000, waitMs: 200, onLost: () => undefined });
    await redis.set(`${prefix}:lock:v`, "another worker", "PX", 10_000);
    await expect(impatient.hold("v", async () => undefined)).rejects.toThrow(/stayed locked/);
  });
});
