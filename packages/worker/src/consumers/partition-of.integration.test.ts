/** A partition's takeover selects its ids in SQL: the expression must agree with shared's partitionOfHash for every count. */
import { randomUUID } from "node:crypto";
import { entryIdHash, partitionOfHash } from "@flowmeter/shared";
import { openScratchDatabase, type ScratchDatabase } from "@flowmeter/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BlockWriter } from "../clickhouse/block-writer.js";
import * as worker from "../index.js";
import { partitionOfHashSql } from "./partition-writer.js";

describe("partitionOfHashSql", () => {
  let database: ScratchDatabase<BlockWriter>;
  beforeAll(async () => {
    database = await openScratchDatabase("partition-of", worker);
  });
  afterAll(() => database.close());

  it("puts every id in the partition partitionOfHash gives it", async () => {
    const ids = Array.from({ length: 500 }, () => randomUUID());
    const keys = ids.map((id) => JSON.stringify([id])).join("\n");
    for (const partitions of [2, 3, 7, 64]) {
      const rows = await database.rows<{ insert_id: string; partition: number }>(
        `SELECT insert_id, ${partitionOfHashSql("lower(hex(MD5(insert_id)))", partitions)} AS partition FROM format(JSONCompactEachRow, 'insert_id String', '${keys}')`,
      );
      expect(rows.map((row) => Number(row.partition))).toEqual(ids.map((id) => partitionOfHash(entryIdHash(id), partitions)));
    }
  });
});
