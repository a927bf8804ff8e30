/**
 * One writer per raw table at a time, across every worker: a Redis lock (SET NX PX with an owner token) held from
 * the lookup of stored rows to the end of the insert, and renewed while held. Two workers holding copies of one
 * record (a stalled job delivered again, a client re-sending) therefore meet in order: the second one finds the
 * record stored. A worker that dies holding the lock frees it within `ttlMs`. ClickHouse wants about one insert per
 * table per second anyway, so serialising them costs no throughput: each insert carries a whole batch.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

export interface TableLock {
  /** Runs `work` holding the table's lock; throws if the lock is not free within `waitMs`. */
  hold<T>(table: string, work: () => Promise<T>): Promise<T>;
}

const RENEW_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const POLL_MS = 25;

export function createTableLock(redis: Redis, options: { queuePrefix: string; ttlMs: number; waitMs: number; onLost: (table: string) => void }): TableLock {
  const { queuePrefix, ttlMs, waitMs } = options;
  return {
    async hold(table, work) {
      const key = `${queuePrefix}:lock:${table}`;
      const owner = randomUUID();
      const deadline = Date.now() + waitMs;
      while ((await redis.set(key, owner, "PX", ttlMs, "NX")) !== "OK") {
        if (Date.now() > deadline) throw new Error(`${table} stayed locked by another worker for ${waitMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      const renewal = setInterval(() => {
        redis.eval(RENEW_SCRIPT, 1, key, owner, ttlMs).then(
          (renewed) => renewed === 0 && options.onLost(table),
          () => undefined,
        );
      }, ttlMs / 3);
      try {
        return await work();
      } finally {
        clearInterval(renewal);
        await redis.eval(RELEASE_SCRIPT, 1, key, owner).catch(() => undefined);
      }
    },
  };
}
