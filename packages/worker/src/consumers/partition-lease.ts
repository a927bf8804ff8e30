/**
 * A worker's hold on one partition of the client-telemetry stream: a Redis key (SET NX PX with an owner token) taken
 * before the worker consumes the partition's queue and renewed every third of its TTL while held. Only the holder
 * writes the partition, so its in-memory filter of stored ids (seen-ids.ts) is complete, and every write first checks
 * the lease is still its own (a worker that stalled past the TTL stops instead of writing beside the next holder).
 * A worker that dies frees the partition within the TTL; another worker listing the partition takes it over.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

export interface PartitionLease {
  readonly partition: number;
  /** Whether this worker still holds the lease (one Redis round trip). */
  isHeld(): Promise<boolean>;
  /** Resolves when the lease is lost (not renewed in time, or taken by another worker) or released. */
  readonly lost: Promise<void>;
  release(): Promise<void>;
}

const RENEW_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

function partitionLeaseKey(queuePrefix: string, partition: number): string {
  return `${queuePrefix}:partition-lease:${partition}`;
}

/** Takes the lease if it is free; undefined when another worker holds it. */
export async function tryAcquirePartitionLease(
  redis: Redis,
  options: { queuePrefix: string; partition: number; ttlMs: number },
): Promise<PartitionLease | undefined> {
  const key = partitionLeaseKey(options.queuePrefix, options.partition);
  const owner = randomUUID();
  if ((await redis.set(key, owner, "PX", options.ttlMs, "NX")) !== "OK") return undefined;
  let markLost: () => void = () => undefined;
  const lost = new Promise<void>((resolve) => {
    markLost = resolve;
  });
  let renewedAt = Date.now();
  const renewal = setInterval(() => {
    redis.eval(RENEW_SCRIPT, 1, key, owner, options.ttlMs).then(
      (renewed) => {
        if (renewed === 0) stop();
        else renewedAt = Date.now();
      },
      // Redis away: the lease is kept until its TTL could have run out since the last renewal.
      () => Date.now() - renewedAt >= options.ttlMs && stop(),
    );
  }, options.ttlMs / 3);
  const stop = () => {
    clearInterval(renewal);
    markLost();
  };
  return {
    partition: options.partition,
    async isHeld() {
      return Date.now() - renewedAt < options.ttlMs && (await redis.get(key)) === owner;
    },
    lost,
    async release() {
      stop();
      await redis.eval(RELEASE_SCRIPT, 1, key, owner).catch(() => undefined);
    },
  };
}
