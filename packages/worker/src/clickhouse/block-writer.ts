/**
 * The one way rows reach a raw table: as a block, the rows serialized once as JSONCompactEachRow bytes, with an
 * insert_deduplication_token derived from those bytes. The same block inserted twice lands once in the table, and
 * (with deduplicate_blocks_in_dependent_materialized_views) once in every materialized view's target, each view
 * checking its own copy: so re-inserting a block whose raw part was committed without its view parts fills the views
 * in (docs/clickhouse-notes.md).
 *
 * Embedded chDB gets the block through chDB's raw insert on a session of its own (bytes handed to the engine's
 * parallel parser, off the event loop); a server gets it through @clickhouse/client.
 *
 * Settings go in the statement's SETTINGS clause, never in `clickhouse_settings`: through chDB those become
 * session SETs that stick, and a later insert inheriting an old token is silently dropped (docs/clickhouse-notes.md).
 * They are built in one place, insertSettings() (consistency-settings.ts), which adds a cluster's quorum settings.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { ClickHouseClient } from "@clickhouse/client";
import type { ClickHouseConfig } from "../config.js";
import { insertSettings, settingsClause } from "./consistency-settings.js";
import { loadChdb } from "./load-chdb.js";

export interface Block {
  /** Fully qualified, e.g. flowmeter.cli_invocations. */
  table: string;
  columns: readonly string[];
  /** One JSON array per row, values in column order, newline-separated. */
  body: Buffer;
  token: string;
  rows: number;
}

export interface BlockWriter {
  insert(block: Block): Promise<void>;
  close(): Promise<void>;
}

export function toBlock<Row extends object>(table: string, columns: readonly (keyof Row & string)[], rows: readonly Row[]): Block {
  const body = Buffer.from(rows.map((row) => JSON.stringify(columns.map((column) => row[column]))).join("\n"));
  const token = createHash("sha256").update(table).update(body).digest("hex");
  return { table, columns, body, token, rows: rows.length };
}

/** A block of rows already serialized as JSONCompactEachRow lines (one per row, values in `columns` order). */
export function blockOfLines(table: string, columns: readonly string[], lines: readonly string[]): Block {
  const body = Buffer.from(lines.join("\n"));
  const token = createHash("sha256").update(table).update(body).digest("hex");
  return { table, columns, body, token, rows: lines.length };
}

/** `cluster`: CLICKHOUSE_CLUSTER, when the table is a Distributed one over a cluster's replicas. */
export async function insertBlockThroughClient(client: ClickHouseClient, block: Block, { cluster }: { cluster?: string | undefined } = {}): Promise<void> {
  if (block.rows === 0) return;
  const result = await client.exec({
    query: `INSERT INTO ${block.table} (${block.columns.join(", ")}) SETTINGS ${settingsClause(insertSettings(block.token, cluster))} FORMAT JSONCompactEachRow`,
    values: Readable.from([block.body]),
  });
  // An HTTP connection is only released once its response is read.
  for await (const _chunk of result.stream) {
    // drain
  }
}

export async function createBlockWriter(
  config: Pick<ClickHouseConfig, "url" | "dataDir"> & Partial<Pick<ClickHouseConfig, "cluster">>,
  client: ClickHouseClient,
): Promise<BlockWriter> {
  if (config.url !== undefined) {
    return { insert: (block) => insertBlockThroughClient(client, block, { cluster: config.cluster }), close: async () => undefined };
  }
  const { Session } = await loadChdb(() => import("chdb"));
  const session = new Session(config.dataDir);
  return {
    async insert(block) {
      if (block.rows === 0) return;
      await session.insert({
        table: block.table,
        columns: block.columns,
        values: block.body,
        format: "JSONCompactEachRow",
        // CLICKHOUSE_CLUSTER needs CLICKHOUSE_URL (config.ts): chDB is always one server.
        settings: insertSettings(block.token, undefined),
      });
    },
    async close() {
      session.close();
    },
  };
}
