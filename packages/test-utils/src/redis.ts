import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { DEFAULT_REDIS_URL } from "@flowmeter/platform";

export function testRedisUrl(): string {
  return process.env["REDIS_URL"] ?? DEFAULT_REDIS_URL;
}

/** A BullMQ key prefix of its own for one test, so test runs never see each other's jobs. */
export function testQueuePrefix(name: string): string {
  return `fmtest-${name}-${randomBytes(4).toString("hex")}`;
}

/** Deletes every key under `prefix:`; refuses prefixes that are not test prefixes. */
export async function deleteQueuePrefix(prefix: string, url = testRedisUrl()): Promise<void> {
  if (!prefix.startsWith("fmtest-")) throw new Error(`refusing to delete keys under non-test prefix ${prefix}`);
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}
