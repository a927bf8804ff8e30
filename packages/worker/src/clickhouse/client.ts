import { mkdirSync } from "node:fs";
import { createClient, type ClickHouseClient } from "@clickhouse/client";
import type { ClickHouseConfig } from "../config.js";
import { readSettings } from "./consistency-settings.js";
import { loadChdb } from "./load-chdb.js";

/**
 * A ClickHouse server when CLICKHOUSE_URL is set, otherwise embedded chDB on a local directory.
 * Only one process may open a chDB directory at a time; in the embedded default that is the worker.
 * On a cluster every read through the client is sequentially consistent (consistency-settings.ts): the worker's
 * "already stored?" lookup, its repair read-back and the migrations ledger never read a replica that lags. Over HTTP
 * these client settings travel with each request; they are never given to chDB, where they would stick to the session.
 */
export async function createClickHouse(
  config: Pick<ClickHouseConfig, "url" | "dataDir"> & Partial<Pick<ClickHouseConfig, "cluster">>,
): Promise<ClickHouseClient> {
  if (config.url !== undefined) {
    return createClient({
      url: config.url,
      request_timeout: 60_000,
      compression: { request: false, response: true },
      ...(config.cluster === undefined ? {} : { clickhouse_settings: readSettings(config.cluster) }),
    });
  }
  const { createChdbConnection } = await loadChdb(() => import("chdb/connection"));
  mkdirSync(config.dataDir, { recursive: true });
  // chdb implements the Connection contract of @clickhouse/client-common, a separately versioned copy of
  // the types @clickhouse/client bundles; the shapes match, the declarations don't unify.
  const connection = createChdbConnection({ path: config.dataDir }) as unknown as NonNullable<Parameters<typeof createClient>[0]>["connection"];
  return createClient({ connection });
}

export function describeClickHouse(config: Pick<ClickHouseConfig, "url" | "dataDir"> & Partial<Pick<ClickHouseConfig, "cluster">>): string {
  if (config.url === undefined) return `embedded chDB at ${config.dataDir}`;
  const url = new URL(config.url);
  url.password = url.password === "" ? "" : "***";
  return config.cluster === undefined ? `ClickHouse server at ${url.toString()}` : `ClickHouse cluster '${config.cluster}' through ${url.toString()}`;
}
