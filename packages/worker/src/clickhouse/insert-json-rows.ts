import type { ClickHouseClient } from "@clickhouse/client";
import { insertBlockThroughClient, toBlock } from "./block-writer.js";

/** Rows inserted as one deduplicated block through the client (tests and fixtures; the worker uses a BlockWriter). */
export async function insertJsonRows<Row extends object>(
  client: ClickHouseClient,
  table: string,
  columns: readonly (keyof Row & string)[],
  rows: readonly Row[],
): Promise<void> {
  await insertBlockThroughClient(client, toBlock(table, columns, rows));
}

/** ClickHouse DateTime64 text ('2026-05-09 12:00:01.000'), always UTC. */
export function toClickHouseTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace("T", " ").replace("Z", "");
}

const UTC_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** ClickHouse DateTime64 text of an ISO 8601 timestamp; the common `toISOString()` shape is rewritten without a Date. */
export function isoToClickHouseTime(iso: string): string {
  if (UTC_MILLIS.test(iso)) return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
  const epochMs = Date.parse(iso);
  return toClickHouseTime(Number.isFinite(epochMs) ? epochMs : 0);
}
