/**
 * What a raw table is to the worker: its definition (defineRawTable), written once in the registry (raw-tables.ts),
 * and what writing it exactly once needs: the columns that identify a row (the last is the record's id; a time
 * before it, where the table is ordered by (time, id), makes the lookup of stored rows follow the sort key;
 * cli_invocations uses its id alone, looked up in cli_invocation_ids).
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { columnNames, type ColumnTypes, type RowOf } from "@flowmeter/shared";
import type { RetentionConfig } from "../config.js";

/** Which setting a table's rows are kept for, counted from which of its time columns. */
export interface Retention<Column extends string = string> {
  keep: keyof RetentionConfig;
  column: Column;
}

/**
 * A raw table, written once. Its Row type is derived from `columns` (shared's RowOf), so `toRow` must fill every
 * column and nothing else.
 */
export interface RawTableDefinition<Columns extends ColumnTypes, Source extends unknown[]> {
  /** Fully qualified; the part after `flowmeter.` is its metrics label. */
  name: `flowmeter.${string}`;
  /** Every column, in table order, with its ClickHouse type as DESCRIBE TABLE prints it. */
  columns: Columns;
  /** The columns that identify a row: a record stored twice has the same values in them. */
  identity: readonly (keyof Columns & string)[];
  /**
   * On a cluster, which shard a row goes to (cluster-ddl.ts). It must follow from the row's identity, so a block
   * inserted again sends each row to the shard that stored it first, where the token or lookup finds it.
   */
  shardingKey: string;
  retention: Retention<keyof Columns & string>;
  /**
   * Materialized views read the table: a cut-short insert must be repaired (the rows re-inserted with their token) or
   * the views miss rows. The registry test checks it against the engine's own dependencies.
   */
  readByViews: boolean;
  /**
   * Who writes it: insert-once.ts (through the table lock and the block journal, repaired at start-up when views read
   * it) or partition-writer.ts (by partition lease, with the partition's own journal).
   */
  writtenBy: "insert-once" | "partition-writer";
  /** The one mapping from what the queue carries to the table's row. */
  toRow: (...source: Source) => RowOf<Columns>;
}

/** A table whatever its row type: what the lookup, the journal's repair, retention, cluster DDL and metrics need. */
export interface RawTableShape {
  /** Fully qualified, e.g. flowmeter.cli_invocations. */
  name: string;
  /** The table's name as a metrics label. */
  label: string;
  columns: readonly string[];
  columnTypes: ColumnTypes;
  identity: readonly { column: string; type: string }[];
  shardingKey: string;
  retention: Retention;
  readByViews: boolean;
  writtenBy: "insert-once" | "partition-writer";
}

export interface RawTable<Row extends object, Source extends unknown[] = never[]> extends RawTableShape {
  columns: readonly (keyof Row & string)[];
  identity: readonly { column: keyof Row & string; type: string }[];
  toRow: (...source: Source) => Row;
}

export function defineRawTable<const Columns extends ColumnTypes, Source extends unknown[]>(
  definition: RawTableDefinition<Columns, Source>,
): RawTable<RowOf<Columns>, Source> {
  const { columns } = definition;
  return {
    ...definition,
    label: definition.name.slice("flowmeter.".length),
    columns: columnNames(columns),
    columnTypes: columns,
    identity: definition.identity.map((column) => ({ column, type: columns[column] as string })),
  };
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
