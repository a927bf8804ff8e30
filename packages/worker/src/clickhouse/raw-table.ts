/**
 * What the worker needs to know of a raw table to write it exactly once: its columns, and the columns that identify
 * a row (the last is the record's id; a time before it, where the table is ordered by (time, id), makes the lookup of
 * stored rows follow the sort key; cli_invocations uses its id alone with a bloom filter index instead).
 */
import type { ClickHouseClient } from "@clickhouse/client";

/** Every raw table the worker writes, as its metrics label. */
export const TABLE_LABELS = ["cli_invocations", "cli_invocation_ids", "run_events", "run_telemetry", "run_logs", "ingestion_warnings"] as const;

/** A table whatever its row type: what the lookup and the journal's repair need. */
export interface RawTableShape {
  /** Fully qualified, e.g. flowmeter.cli_invocations. */
  name: string;
  /** The table's name as a metrics label. */
  label: (typeof TABLE_LABELS)[number];
  columns: readonly string[];
  identity: readonly { column: string; type: string }[];
  /** Materialized views read the table: its inserts go through the block journal (consumers/block-journal.ts). */
  hasViews: boolean;
}

export interface RawTable<Row extends object> extends RawTableShape {
  columns: readonly (keyof Row & string)[];
  identity: readonly { column: keyof Row & string; type: string }[];
}

/** A row's identity as one printable string: its identity columns' values as ClickHouse prints them, in a JSON array. */
export function identityOf<Row extends object>(table: RawTable<Row>, row: Row): string {
  return JSON.stringify(table.identity.map(({ column }) => String(row[column])));
}

/**
 * `WHERE (identity columns) IN (…)` for the given keys (JSON arrays of the identity columns' values, one per line).
 * The keys travel as one string literal read by format(), which keeps the query's syntax tree small for any number
 * of keys, and the lookup follows the sort key (or the table's bloom filter index), so its cost follows the keys,
 * not the table.
 */
function whereIdentityIn(table: RawTableShape, keys: string): string {
  const literal = keys.replaceAll("\\", "\\\\").replaceAll("'", "\\'");
  const schema = table.identity
    .map(({ column, type }) => `${column} ${type}`)
    .join(", ")
    .replaceAll("'", "\\'");
  const tuple = table.identity.map(({ column }) => column).join(", ");
  return `WHERE (${tuple}) IN (SELECT ${tuple} FROM format(JSONCompactEachRow, '${schema}', '${literal}'))`;
}

// Harmless if it sticks to a chDB session: it only raises the parser's size limit.
const LONG_QUERIES = { max_query_size: "268435456" };

/** The identities among `rows` that are already stored. */
export async function findStoredIdentities<Row extends object>(client: ClickHouseClient, table: RawTable<Row>, rows: readonly Row[]): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const names = table.identity.map(({ column }) => column);
  const keys = rows.map((row) => JSON.stringify(names.map((name) => row[name]))).join("\n");
  const result = await client.query({
    query: `SELECT ${names.join(", ")} FROM ${table.name} ${whereIdentityIn(table, keys)}`,
    format: "JSONCompactEachRow",
    clickhouse_settings: LONG_QUERIES,
  });
  const stored = await result.json<unknown[]>();
  return new Set(stored.map((values) => JSON.stringify(values.map(String))));
}

/** The stored rows with these identities (identityOf() strings), as JSONCompactEachRow in `table.columns` order. */
export async function readBackRows(client: ClickHouseClient, table: RawTableShape, identities: readonly string[]): Promise<Buffer> {
  const result = await client.query({
    query: `SELECT ${table.columns.join(", ")} FROM ${table.name} ${whereIdentityIn(table, identities.join("\n"))} LIMIT 1 BY ${table.identity.map(({ column }) => column).join(", ")}`,
    format: "JSONCompactEachRow",
    clickhouse_settings: LONG_QUERIES,
  });
  return Buffer.from(await result.text());
}
