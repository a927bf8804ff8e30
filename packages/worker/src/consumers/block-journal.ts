/**
 * An insert into a table with materialized views is not atomic: ClickHouse commits the raw part before the views'
 * parts, so a worker killed in between (or an insert failing in a view) leaves raw rows whose rollup rows were never
 * written, which an "already stored?" lookup would then hide for good (docs/clickhouse-notes.md). So before such an
 * insert the worker records the block's token and the identities of its rows, and forgets them once the insert
 * returned. A block still recorded is repaired before the table is written again (under the table's lock): its rows
 * are read back from the raw table and inserted again with the same token, which ClickHouse skips where the block
 * landed and writes where it did not, view by view (block-writer.ts). No row of it in the raw table means the raw part
 * never committed: the block is forgotten and its rows come back with their jobs.
 */
import type { Redis } from "ioredis";

export interface RecordedBlock {
  table: string;
  token: string;
  /** identityOf() of each row, in block order. */
  identities: readonly string[];
}

export interface BlockJournal {
  record(block: RecordedBlock): Promise<void>;
  forget(block: Pick<RecordedBlock, "table" | "token">): Promise<void>;
  /** Blocks recorded for a table, oldest first. */
  pending(table: string): Promise<RecordedBlock[]>;
}

export function createBlockJournal(redis: Redis, queuePrefix: string): BlockJournal {
  const indexKey = (table: string) => `${queuePrefix}:blocks:${table}`;
  const blockKey = (token: string) => `${queuePrefix}:block:${token}`;
  return {
    async record(block) {
      await redis
        .multi()
        .set(blockKey(block.token), block.identities.join("\n"))
        .zadd(indexKey(block.table), Date.now(), block.token)
        .exec()
        .then(failedCommand);
    },
    async forget({ table, token }) {
      await redis.multi().zrem(indexKey(table), token).unlink(blockKey(token)).exec().then(failedCommand);
    },
    async pending(table) {
      const blocks: RecordedBlock[] = [];
      for (const token of await redis.zrange(indexKey(table), 0, -1)) {
        const identities = await redis.get(blockKey(token));
        if (identities === null) await redis.zrem(indexKey(table), token);
        else blocks.push({ table, token, identities: identities.split("\n") });
      }
      return blocks;
    },
  };
}

/** MULTI answers each command's error in place instead of rejecting. */
function failedCommand(results: [Error | null, unknown][] | null): void {
  const failed = results?.find(([error]) => error !== null);
  if (failed?.[0]) throw failed[0];
  if (results === null) throw new Error("redis transaction aborted");
}
