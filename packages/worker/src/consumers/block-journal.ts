/**
 * Every block a worker inserts is recorded in Redis before the insert and forgotten after it succeeded. A block
 * still recorded is one whose insert may have been cut short (a worker killed, an ambiguous error): its raw part
 * may be committed without the parts of the views under it. Re-inserting exactly that block with its token is the
 * only safe repair: ClickHouse skips what landed and writes what did not, table by table (block-writer.ts). Any
 * writer of the table does it before its own next insert, so no one decides "already stored" on a raw row whose
 * rollup rows may be missing. Replaying a block another worker is still inserting is harmless for the same reason.
 */
import type { Redis } from "ioredis";
import type { Block } from "../clickhouse/block-writer.js";

export interface BlockJournal {
  record(block: Block): Promise<void>;
  forget(block: Pick<Block, "table" | "token">): Promise<void>;
  /** Blocks recorded for a table, oldest first. */
  pending(table: string): Promise<Block[]>;
}

export function createBlockJournal(redis: Redis, queuePrefix: string): BlockJournal {
  const indexKey = (table: string) => `${queuePrefix}:blocks:${table}`;
  const blockKey = (token: string) => `${queuePrefix}:block:${token}`;
  return {
    async record(block) {
      await redis
        .multi()
        .hset(blockKey(block.token), { table: block.table, columns: block.columns.join(","), rows: block.rows, body: block.body })
        .zadd(indexKey(block.table), Date.now(), block.token)
        .exec()
        .then(failedCommand);
    },
    async forget({ table, token }) {
      await redis.multi().zrem(indexKey(table), token).unlink(blockKey(token)).exec().then(failedCommand);
    },
    async pending(table) {
      const tokens = await redis.zrange(indexKey(table), 0, -1);
      const blocks: Block[] = [];
      for (const token of tokens) {
        const fields = await redis.hgetallBuffer(blockKey(token));
        const { columns, rows, body } = fields;
        if (columns === undefined || rows === undefined || body === undefined) {
          // Forgotten by another writer between the two reads.
          await redis.zrem(indexKey(table), token);
          continue;
        }
        blocks.push({ table, columns: columns.toString().split(","), rows: Number(rows.toString()), body, token });
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
