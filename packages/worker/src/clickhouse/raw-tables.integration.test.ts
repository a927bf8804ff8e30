/**
 * The registry (raw-tables.ts) against ClickHouse after every migration: a table definition that drifts from its
 * migrations, a view the registry does not know reads a table, or a table nobody gave a retention setting fails here.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClickHouseClient } from "@clickhouse/client";
import { createLogger } from "@flowmeter/platform";
import { tempDir } from "@flowmeter/test-utils";
import { parseWorkerConfig } from "../config.js";
import { createClickHouse } from "./client.js";
import { migrate } from "./migrate.js";
import { RAW_TABLES, RETAINED_TABLES, RETENTION_EXEMPT, ROLLUP_TABLES } from "./raw-tables.js";

const logger = createLogger("test", "error");

interface TableRow {
  name: string;
  engine: string;
  dependencies_table: string[];
  create_table_query: string;
}

describe("the raw tables registry against the migrated schema", () => {
  const data = tempDir("raw-tables");
  let clickhouse: ClickHouseClient;
  let tables: TableRow[];

  async function rows<T>(query: string): Promise<T[]> {
    return (await clickhouse.query({ query, format: "JSONEachRow" })).json<T>();
  }

  beforeAll(async () => {
    clickhouse = await createClickHouse({ url: undefined, dataDir: data.path });
    await migrate(clickhouse, parseWorkerConfig({}).clickhouse.migrationsDir, logger);
    tables = await rows<TableRow>("SELECT name, engine, dependencies_table, create_table_query FROM system.tables WHERE database = 'flowmeter' ORDER BY name");
  });
  afterAll(async () => {
    await clickhouse.close();
    data.remove();
  });

  it.each(RAW_TABLES.map((table) => [table.name, table] as const))("%s: columns and types equal DESCRIBE TABLE", async (name, table) => {
    const described = await rows<{ name: string; type: string }>(`DESCRIBE TABLE ${name}`);
    expect(described.map((column) => [column.name, column.type])).toEqual(Object.entries(table.columnTypes));
  });

  it("marks a raw table read by views exactly when a materialized view depends on it", () => {
    const materializedViews = tables.filter((table) => table.engine === "MaterializedView");
    expect(materializedViews.length).toBeGreaterThan(0);
    for (const table of RAW_TABLES) {
      const label = table.label;
      const dependents = tables.find((row) => row.name === label)?.dependencies_table ?? [];
      // The engine's dependency list, and the views' own queries, say the same thing.
      const readers = materializedViews.filter((view) => new RegExp(`\\bFROM flowmeter\\.${label}\\b`).test(view.create_table_query)).map((view) => view.name);
      expect([...dependents].sort(), label).toEqual(readers.sort());
      expect(table.readByViews, `${label}: readByViews`).toBe(readers.length > 0);
    }
  });

  it("gives every table of the flowmeter database a retention entry, or names it exempt", () => {
    const stored = tables.filter((table) => table.engine !== "View" && table.engine !== "MaterializedView").map((table) => `flowmeter.${table.name}`);
    const known = [...RETAINED_TABLES.map((table) => table.name), ...RETENTION_EXEMPT];
    expect(stored.filter((name) => !known.includes(name))).toEqual([]);
    expect(known.filter((name) => !stored.includes(name))).toEqual([]);
  });

  it("keeps each table by a time column it has", async () => {
    for (const { name, retention } of RETAINED_TABLES) {
      const described = await rows<{ name: string; type: string }>(`DESCRIBE TABLE ${name}`);
      expect(described.find((column) => column.name === retention.column)?.type, `${name}.${retention.column}`).toMatch(/^DateTime/);
    }
  });

  it("lists as rollups exactly the tables materialized views write", () => {
    const targets = tables
      .filter((table) => table.engine === "MaterializedView")
      .map((view) => /\bTO (flowmeter\.\w+)/.exec(view.create_table_query)?.[1] ?? `${view.name}: no TO table`);
    expect([...new Set(targets)].sort()).toEqual(ROLLUP_TABLES.map((table) => table.name).sort());
  });
});
