import { mkdirSync } from "node:fs";
import { createClient, type ClickHouseClient } from "@clickhouse/client";
import type { ClickHouseConfig } from "../config.js";
import { loadChdb } from "./load-chdb.js";

/**
 * A ClickHouse server when CLICKHOUSE_URL is set, otherwise embedded chDB on a local directory.
 * Only one process may open a chDB directory at a time; in the embedded default that is the worker.
 */
export async function createClickHouse(config: Pick<ClickHouseConfig, "url" | "dataDir">): Promise<ClickHouseClient> {
  if (config.url !== undefined) {
    return createClient({ url: config.url, request_timeout: 60_000, compression: { request: false, response: true } });
  }
  const { createChdbConnection } = await loadChdb(() => import("chdb/connection"));
  mkdirSync(config.dataDir, { recursive: true });
  // chdb implements the Connection contract of @clickhouse/client-common, a separately versioned copy of
  // the types @clickhouse/client bundles; the shapes match, the declarations don't unify.
  const connection = createChdbConnection({ path: config.dataDir }) as unknown as NonNullable<Parameters<typeof createClient>[0]>["connection"];
  return createClient({ connection });
}

export function describeClickHouse(config: Pick<ClickHouseConfig, "url" | "dataDir">): string {
  if (config.url === undefined) return `embedded chDB at ${config.dataDir}`;
  const url = new URL(config.url);
  url.password = url.password === "" ? "" : "***";
  return `ClickHouse server at ${url.toString()}`;
}
