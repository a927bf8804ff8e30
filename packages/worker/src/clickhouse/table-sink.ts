/**
 * What the worker needs to know of a raw table to write it exactly once: its columns, and the columns that identify
 * a row (the last is the record's id; a time before it, where the table is ordered by (time, id), makes the lookup of
 * stored rows follow the sort key; cli_invocations uses its id alone with a bloom filter index instead).
 */
import type { ClickHouseClient } from "@clickhouse/client";

/** Every raw table the worker writes, as its metrics label. */
export const TABLE_LABELS = ["cli_invocations", "run_events", "run_telemetry", "ingestion_warnings"] as const;

export interface TableSink<Row extends object> {
  /** Fully qualified, e.g. flowmeter.cli_invocations. */
  table: string;
  /** The table's name as a metrics label. */
  label: (typeof TABLE_LABELS)[number];
  columns: readonly (keyof Row & string)[];
  identity: readonly { column: keyof Row & string; type: string }[];
}

/** A row's identity as one printable string: its identity columns' values as ClickHouse prints them, in a JSON array. */
export function identityOf<Row extends object>(sink: TableSink<Row>, row: Row): string {
  return JSON.stringify(sink.identity.map(({ column }) => String(row[column])));
}

/**
 * The identities among `rows` that are already stored. The keys travel as one string literal read by
 * format(), which keeps the query's syntax tree small for any batch size, and the lookup follows the sort
 * key, so its cost follows the batch, not the table.
 */
export async function findStoredIdentities<Row extends object>(client: ClickHouseClient, sink: TableSink<Row>, rows: readonly Row[]): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const names = sink.identity.map(({ column }) => column);
  const keys = rows.map((row) => JSON.stringify(names.map((name) => row[name]))).join("\n");
  const literal = keys.replaceAll("\\", "\\\\").replaceAll("'", "\\'");
  const schema = sink.identity.map(({ column, type }) => `${column} ${type}`).join(", ").replaceAll("'", "\\'");
  const tuple = names.join(", ");
  const result = await client.query({
    query: `SELECT ${tuple} FROM ${sink.table} WHERE (${tuple}) IN (SELECT ${tuple} FROM format(JSONCompactEachRow, '${schema}', '${literal}'))`,
    format: "JSONCompactEachRow",
    // Harmless if it sticks to a chDB session: it only raises the parser's size limit.
    clickhouse_settings: { max_query_size: "268435456" },
  });
  const stored = await result.json<unknown[]>();
  return new Set(stored.map((values) => JSON.stringify(values.map(String))));
}
