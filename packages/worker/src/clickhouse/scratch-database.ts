import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import { EnvReader, createLogger } from "@flowmeter/shared";
import { readClickHouseConfig } from "../config.js";
import { createBlockWriter, type BlockWriter } from "./block-writer.js";
import { createClickHouse } from "./client.js";
import { migrate } from "./migrate.js";

export interface ScratchDatabase {
  clickhouse: ClickHouseClient;
  writer: BlockWriter;
  /** The chDB data directory's parent, removed by close(). */
  dir: string;
  rows<T>(query: string): Promise<T[]>;
  close(): Promise<void>;
}

/**
 * Embedded chDB in a fresh temporary directory with every migration applied by the production runner: for
 * tests and the bench. One process may open one chDB directory at a time.
 */
export async function openScratchDatabase(name: string): Promise<ScratchDatabase> {
  const dir = mkdtempSync(join(tmpdir(), `flowmeter-${name}-`));
  const config = { url: undefined, dataDir: join(dir, "clickhouse") };
  const clickhouse = await createClickHouse(config);
  await migrate(clickhouse, readClickHouseConfig(new EnvReader({})).migrationsDir, createLogger("migrate", "warn"));
  const writer = await createBlockWriter(config, clickhouse);
  return {
    clickhouse,
    writer,
    dir,
    rows: async <T>(query: string) => (await clickhouse.query({ query, format: "JSONEachRow" })).json<T>(),
    async close() {
      await writer.close();
      await clickhouse.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
