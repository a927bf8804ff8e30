/**
 * Test-only fault injection (FLOWMETER_FAILPOINT), used by crash.integration.test.ts:
 * - `kill-after-insert`: SIGKILL once the first block is in ClickHouse, before the journal forgets it and before
 *   any job is acknowledged;
 * - `kill-after-raw-part` (embedded chDB only): SIGKILL the moment the first new part of flowmeter.cli_invocations
 *   is committed, which is before the parts of the views under it are. A thread of its own watches the table's
 *   directory, because the insert runs inside chDB where no JavaScript runs until it returns.
 */
import { Worker } from "node:worker_threads";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "@flowmeter/platform";
import type { WorkerConfig } from "./config.js";

/** Returns the hook to call after each insert, if the failpoint needs one. */
export async function armFailpoint(config: Pick<WorkerConfig, "failpoint">, clickhouse: ClickHouseClient, logger: Logger): Promise<(() => void) | undefined> {
  if (config.failpoint === "kill-after-insert") {
    return () => {
      logger.warn("failpoint kill-after-insert: killing the worker before acknowledging the batch");
      process.kill(process.pid, "SIGKILL");
    };
  }
  if (config.failpoint === "kill-after-raw-part") {
    const result = await clickhouse.query({
      query: "SELECT data_paths[1] AS path FROM system.tables WHERE database = 'flowmeter' AND name = 'cli_invocations'",
      format: "JSONEachRow",
    });
    const [table] = await result.json<{ path: string }>();
    if (table === undefined) throw new Error("failpoint kill-after-raw-part: flowmeter.cli_invocations not found");
    logger.warn("failpoint kill-after-raw-part: the worker dies when its first raw part is committed", { path: table.path });
    const watcher = new Worker(WATCH_FOR_NEW_PART, { eval: true, workerData: table.path });
    watcher.unref();
  }
  return undefined;
}

/** A part directory is `<partition>_<min block>_<max block>_<level>` (level 1 for a ReplacingMergeTree insert, which is optimized as it is written). */
const WATCH_FOR_NEW_PART = `
const { readdirSync } = require("node:fs");
const { workerData: path } = require("node:worker_threads");
const isPart = (name) => /^[^_]+_\\d+_\\d+_\\d+$/.test(name);
// The table's directory appears with its first part.
const list = () => { try { return readdirSync(path); } catch { return []; } };
const before = new Set(list());
// Every millisecond: well inside the 10–25 ms between the raw part and the views' parts, without burning a core.
const pause = new Int32Array(new SharedArrayBuffer(4));
for (;; Atomics.wait(pause, 0, 0, 1)) {
  for (const name of list()) {
    if (!before.has(name) && isPart(name)) process.kill(process.pid, "SIGKILL");
  }
}`;
