/**
 * A ClickHouse table's columns written once, as names and ClickHouse types in table order, and the row type derived
 * from them: a column added to the list is a field every row mapping must fill (a compile error until it does), and a
 * row cannot carry a field the table lacks. The types are those `DESCRIBE TABLE` prints (the worker's registry test,
 * packages/worker/src/clickhouse/raw-tables.integration.test.ts, compares them).
 */

/** Column name → ClickHouse type, in the table's column order. */
export type ColumnTypes = Readonly<Record<string, string>>;

/** The JavaScript value a JSONCompactEachRow insert takes for a ClickHouse type; `never` for a type not handled here. */
export type ValueOf<Type extends string> = Type extends `Nullable(${infer Inner})`
  ? ValueOf<Inner> | null
  : Type extends `LowCardinality(${infer Inner})`
    ? ValueOf<Inner>
    : Type extends `Array(${infer Inner})`
      ? ValueOf<Inner>[]
      : Type extends `Map(${string}, ${infer Value})`
        ? Record<string, ValueOf<Value>>
        : Type extends "Bool"
          ? boolean
          : Type extends `${"UInt" | "Int"}${8 | 16 | 32 | 64}` | "Float32" | "Float64"
            ? number
            : Type extends "String" | `FixedString(${number})` | "Date" | `DateTime${string}` | "UUID"
              ? string
              : never;

/** One row of a table with these columns. */
export type RowOf<Columns extends ColumnTypes> = { -readonly [Name in keyof Columns & string]: ValueOf<Columns[Name]> };

/** The column names, in table order. */
export function columnNames<Columns extends ColumnTypes>(columns: Columns): readonly (keyof Columns & string)[] {
  return Object.keys(columns);
}
