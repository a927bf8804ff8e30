import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import { EnvReader, createLogger, type Logger } from "@flowmeter/platform";

/**
 * What a scratch database is built from: the worker's own client factory, production migrator and block writer.
 * Callers pass the worker's module (`import * as worker from "@flowmeter/worker"`; the worker's own tests pass
 * `../index.js`, so they test their sources). test-utils does not import the worker: the worker's tests use
 * test-utils, and a dependency back would make the two packages a cycle.
 */
export interface ScratchDatabaseWorker<Writer extends { close(): Promise<void> }> {
  createClickHouse(config: { url: undefined; dataDir: string }): Promise<ClickHouseClient>;
  createBlockWriter(config: { url: undefined; dataDir: string }, clickhouse: ClickHouseClient): Promise<Writer>;
  migrate(clickhouse: ClickHouseClient, migrationsDir: string, logger: Logger): Promise<unknown>;
  readClickHouseConfig(reader: EnvReader): { migrationsDir: string };
}

export interface ScratchDatabase<Writer> {
  clickhouse: ClickHouseClient;
  writer: Writer;
  /** The chDB data directory's parent, removed by close(). */
  dir: string;
  rows<T>(query: string): Promise<T[]>;
  close(): Promise<void>;
}

/**
 * Embedded chDB in a fresh temporary directory with every migration applied by the production runner: for
 * tests and the bench. One process may open one chDB directory at a time.
 */
export async function openScratchDatabase<Writer extends { close(): Promise<void> }>(
  name: string,
  worker: ScratchDatabaseWorker<Writer>,
): Promise<ScratchDatabase<Writer>> {
  const dir = mkdtempSync(join(tmpdir(), `flowmeter-${name}-`));
  const config = { url: undefined, dataDir: join(dir, "clickhouse") };
  const clickhouse = await worker.createClickHouse(config);
  await worker.migrate(clickhouse, worker.readClickHouseConfig(new EnvReader({})).migrationsDir, createLogger("migrate", "warn"));
  const writer = await worker.createBlockWriter(config, clickhouse);
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
