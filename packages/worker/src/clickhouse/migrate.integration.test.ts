import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClickHouseClient } from "@clickhouse/client";
import { EnvReader, createLogger } from "@flowmeter/platform";
import { tempDir } from "@flowmeter/test-utils";
import { parseWorkerConfig, readRetentionConfig } from "../config.js";
import { createClickHouse } from "./client.js";
import { insertBlockThroughClient, toBlock } from "./block-writer.js";
import { MigrationError, migrate } from "./migrate.js";
import { applyRetention } from "./retention.js";
import { CLI_INVOCATION_COLUMNS } from "@flowmeter/shared";

const logger = createLogger("test", "error");
const migrationsDir = parseWorkerConfig({}).clickhouse.migrationsDir;

describe("migrations on chDB", () => {
  const data = tempDir("migrate");
  let clickhouse: ClickHouseClient;

  beforeAll(async () => {
    clickhouse = await createClickHouse({ url: undefined, dataDir: data.path });
  });
  afterAll(async () => {
    await clickhouse.close();
    data.remove();
  });

  async function rows<T>(query: string): Promise<T[]> {
    return (await clickhouse.query({ query, format: "JSONEachRow" })).json<T>();
  }

  it("applies every file once, then nothing", async () => {
    const first = await migrate(clickhouse, migrationsDir, logger);
    expect(first.applied[0]).toBe("0001_create_cli_invocations");
    const second = await migrate(clickhouse, migrationsDir, logger);
    expect(second.applied).toEqual([]);
    const ledger = await rows<{ version: number }>("SELECT version FROM flowmeter.schema_migrations ORDER BY version");
    expect(ledger.map((row) => row.version)).toEqual(first.applied.map((name) => Number(name.slice(0, 4))));
  });

  it("cli_invocations COLUMNS match DESCRIBE TABLE", async () => {
    const described = await rows<{ name: string }>("DESCRIBE TABLE flowmeter.cli_invocations");
    expect(described.map((column) => column.name)).toEqual([...CLI_INVOCATION_COLUMNS]);
  });

  it("refuses an applied file that changed, and a new file numbered below the highest applied", async () => {
    const edited = tempDir("migrations-edited");
    cpSync(migrationsDir, edited.path, { recursive: true });
    writeFileSync(join(edited.path, "0002_create_driver_stats_1m.sql"), "SELECT 1");
    await expect(migrate(clickhouse, edited.path, logger)).rejects.toThrow(MigrationError);
    await expect(migrate(clickhouse, edited.path, logger)).rejects.toThrow(/changed after it was applied/);
    edited.remove();

    const misplaced = tempDir("migrations-misplaced");
    cpSync(migrationsDir, misplaced.path, { recursive: true });
    writeFileSync(join(misplaced.path, "0000_create_nothing.sql"), "SELECT 1");
    await expect(migrate(clickhouse, misplaced.path, logger)).rejects.toThrow(/numbered below the highest applied/);
    misplaced.remove();
  });

  // docs/clickhouse-notes.md: through chDB, per-query settings become sticky session SETs; an insert that inherits
  // an old insert_deduplication_token is dropped without an error. Different inserts must all land.
  it("two different inserts both land, and a plain insert after them lands too", async () => {
    await clickhouse.command({
      query: "CREATE TABLE IF NOT EXISTS flowmeter.hazard_probe (id String) ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100",
    });
    await insertBlockThroughClient(clickhouse, toBlock("flowmeter.hazard_probe", ["id"], [{ id: "a" }]));
    await insertBlockThroughClient(clickhouse, toBlock("flowmeter.hazard_probe", ["id"], [{ id: "b" }]));
    await insertBlockThroughClient(clickhouse, toBlock("flowmeter.hazard_probe", ["id"], [{ id: "a" }]));
    await clickhouse.insert({ table: "flowmeter.hazard_probe", values: [{ id: "c" }], format: "JSONEachRow" });
    await clickhouse.insert({ table: "flowmeter.hazard_probe", values: [{ id: "d" }], format: "JSONEachRow" });
    const ids = await rows<{ id: string }>("SELECT id FROM flowmeter.hazard_probe ORDER BY id");
    expect(ids.map((row) => row.id)).toEqual(["a", "b", "c", "d"]);
    const [token] = await rows<{ token: string }>("SELECT getSetting('insert_deduplication_token') AS token");
    expect(token?.token).toBe("");
  });

  it("sets each table's TTL from the retention settings, changes it, and removes it for 0", async () => {
    const ttlOf = async (table: string): Promise<string> => {
      const [row] = await rows<{ engine_full: string }>(`SELECT engine_full FROM system.tables WHERE database = 'flowmeter' AND name = '${table}'`);
      return /TTL (.*?) SETTINGS/.exec(row?.engine_full ?? "")?.[1] ?? "";
    };
    await applyRetention(clickhouse, readRetentionConfig(new EnvReader({})), logger);
    expect(await ttlOf("run_telemetry")).toBe("toDateTime(ts) + toIntervalDay(30)");
    expect(await ttlOf("run_logs")).toBe("toDateTime(ts) + toIntervalDay(30)");
    expect(await ttlOf("cli_invocations")).toBe("");
    await applyRetention(clickhouse, readRetentionConfig(new EnvReader({ FLOWMETER_RAW_TTL_DAYS: "90", FLOWMETER_ROLLUP_TTL_DAYS: "400" })), logger);
    expect(await ttlOf("cli_invocations")).toBe("toDateTime(started_at) + toIntervalDay(90)");
    expect(await ttlOf("command_stats_1m")).toBe("toDateTime(minute) + toIntervalDay(400)");
    await applyRetention(clickhouse, readRetentionConfig(new EnvReader({ FLOWMETER_TELEMETRY_TTL_DAYS: "0", FLOWMETER_LOGS_TTL_DAYS: "7" })), logger);
    expect(await ttlOf("cli_invocations")).toBe("");
    expect(await ttlOf("run_telemetry")).toBe("");
    expect(await ttlOf("run_logs")).toBe("toDateTime(ts) + toIntervalDay(7)");
    expect(await ttlOf("cli_invocation_ids")).toBe("toDateTime(received_at) + toIntervalDay(8)");
    await applyRetention(clickhouse, readRetentionConfig(new EnvReader({ FLOWMETER_DEDUP_HORIZON_DAYS: "14" })), logger);
    expect(await ttlOf("cli_invocation_ids")).toBe("toDateTime(received_at) + toIntervalDay(14)");
  });

  it("refuses rollups kept shorter than raw rows", () => {
    const reader = new EnvReader({ FLOWMETER_RAW_TTL_DAYS: "90", FLOWMETER_ROLLUP_TTL_DAYS: "30" });
    readRetentionConfig(reader);
    expect(() => reader.finish(undefined)).toThrow(/FLOWMETER_ROLLUP_TTL_DAYS \(30\) must be 0 \(forever\) or at least FLOWMETER_RAW_TTL_DAYS \(90\)/);
  });
});
