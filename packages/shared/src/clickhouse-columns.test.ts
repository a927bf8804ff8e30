import { describe, expect, expectTypeOf, it } from "vitest";
import { columnNames, type RowOf, type ValueOf } from "./clickhouse-columns.js";

describe("rows derived from ClickHouse column types", () => {
  it("maps each ClickHouse type to the value an insert takes", () => {
    expectTypeOf<ValueOf<"LowCardinality(String)">>().toEqualTypeOf<string>();
    expectTypeOf<ValueOf<"DateTime64(3, 'UTC')">>().toEqualTypeOf<string>();
    expectTypeOf<ValueOf<"FixedString(32)">>().toEqualTypeOf<string>();
    expectTypeOf<ValueOf<"Nullable(Int32)">>().toEqualTypeOf<number | null>();
    expectTypeOf<ValueOf<"Array(LowCardinality(String))">>().toEqualTypeOf<string[]>();
    expectTypeOf<ValueOf<"Map(LowCardinality(String), String)">>().toEqualTypeOf<Record<string, string>>();
    expectTypeOf<ValueOf<"Bool">>().toEqualTypeOf<boolean>();
    expectTypeOf<ValueOf<"UInt64">>().toEqualTypeOf<number>();
    expectTypeOf<ValueOf<"Decimal(10, 2)">>().toEqualTypeOf<never>();
  });

  it("gives a row every column, and the names in table order", () => {
    const columns = { id: "String", seq: "UInt64", done: "Bool" } as const;
    expectTypeOf<RowOf<typeof columns>>().toEqualTypeOf<{ id: string; seq: number; done: boolean }>();
    expect(columnNames(columns)).toEqual(["id", "seq", "done"]);
  });
});
