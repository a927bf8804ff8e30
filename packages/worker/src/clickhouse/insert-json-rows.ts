import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { ClickHouseClient } from "@clickhouse/client";

/**
 * Inserts rows as JSONEachRow with an insert_deduplication_token derived from their content, so the same
 * batch inserted twice (a retried flush) lands once in the table and in every materialized view under it.
 *
 * Settings go in the statement's SETTINGS clause, never in `clickhouse_settings`: through chDB those become
 * session SETs that stick, and a later insert inheriting an old token is silently dropped (NOTES-clickhouse.md).
 */
export async function insertJsonRows(client: ClickHouseClient, table: string, rows: readonly object[]): Promise<void> {
  if (rows.length === 0) return;
  const body = rows.map((row) => JSON.stringify(row)).join("\n");
  const token = createHash("sha256").update(table).update(body).digest("hex");
  const result = await client.exec({
    query: `INSERT INTO ${table} SETTINGS insert_deduplication_token = '${token}', deduplicate_blocks_in_dependent_materialized_views = 1 FORMAT JSONEachRow`,
    values: Readable.from([body]),
  });
  // An HTTP connection is only released once its response is read.
  for await (const _chunk of result.stream) {
    // drain
  }
}

/** ClickHouse DateTime64 text for JSONEachRow ('2026-05-09 12:00:01.000'), always UTC. */
export function toClickHouseTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace("T", " ").replace("Z", "");
}
