/**
 * Two workers write at the same time, each its own partition of the client-telemetry stream, with exact results
 * (issue #22): ingest cuts the stream into FLOWMETER_PARTITIONS=2 queues; each worker holds one partition's lease and
 * writes its own chDB directory, as a shard of a cluster would. Every shard holds exactly the acknowledged entries
 * of its partition, once, re-sends included, its rollups equal to its raw rows, and the union of the shards is what
 * was acknowledged.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { partitionOf } from "@flowmeter/shared";
import { deleteQueuePrefix, freePort, parentEntry, postIngest, tempDir, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVICE_ENTRY_POINTS } from "./services.js";
import { waitHealthy } from "./wait-healthy.js";

const PARTITIONS = 2;

describe("two workers, two partitions, two shards", () => {
  const prefix = testQueuePrefix("partitions");
  const shards = Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, data: tempDir(`shard-${partition}`), port: 0 }));
  const ingestData = tempDir("partitions-ingest");
  let ingestPort = 0;
  const started: ChildProcess[] = [];

  const baseEnv = (dataDir: string) => ({
    ...process.env,
    FLOWMETER_DATA_DIR: dataDir,
    QUEUE_PREFIX: prefix,
    REDIS_URL: testRedisUrl(),
    FLOWMETER_PARTITIONS: String(PARTITIONS),
    LOG_LEVEL: "warn",
  });

  function start(entryPoint: string, env: Record<string, string | undefined>): void {
    started.push(spawn(process.execPath, [entryPoint], { env, stdio: ["ignore", "inherit", "inherit"] }));
  }

  async function query(port: number, sql: string): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${port}/query?format=TabSeparated`, { method: "POST", body: sql });
    if (!response.ok) throw new Error(`query failed: ${response.status} ${await response.text()}`);
    return (await response.text()).trim();
  }

  async function metric(port: number, line: RegExp): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(line.exec(text)?.[1] ?? "NaN");
  }

  beforeAll(async () => {
    for (const shard of shards) {
      const migrated = spawnSync(process.execPath, [SERVICE_ENTRY_POINTS.migrate()], { env: baseEnv(shard.data.path), encoding: "utf8" });
      expect(migrated.status, migrated.stderr).toBe(0);
      shard.port = await freePort();
      start(SERVICE_ENTRY_POINTS.worker(), {
        ...baseEnv(shard.data.path),
        WORKER_PARTITIONS: String(shard.partition),
        WORKER_METRICS_PORT: String(shard.port),
        WORKER_BATCH_MAX_WAIT_MS: "200",
      });
    }
    ingestPort = await freePort();
    start(SERVICE_ENTRY_POINTS.ingest(), { ...baseEnv(ingestData.path), INGEST_PORT: String(ingestPort) });
    const urls = [...shards.map((shard) => `http://127.0.0.1:${shard.port}/healthz`), `http://127.0.0.1:${ingestPort}/healthz`];
    expect(await waitHealthy(urls, 60_000)).toBe(true);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(
      started.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once("exit", () => resolve());
            child.kill("SIGTERM");
          }),
      ),
    );
    for (const shard of shards) shard.data.remove();
    ingestData.remove();
    await deleteQueuePrefix(prefix);
  }, 60_000);

  it("each worker writes its partition into its shard at the same time as the other, exactly once", async () => {
    // Both partitions are held at once, each by its own worker.
    for (const shard of shards) {
      await waitFor(
        async () =>
          (await metric(shard.port, new RegExp(`flowmeter_worker_partition_held\\{partition="${shard.partition}"\\} (\\d+)`))) === 1 ? true : undefined,
        {
          what: `partition ${shard.partition} held by its worker`,
        },
      );
    }
    const command = `partitions-${randomUUID()}`;
    const entries = Array.from({ length: 2000 }, () => {
      const entry = parentEntry();
      entry.properties.invocation.command = command;
      return entry;
    });
    const send = async (batch: typeof entries): Promise<number[]> => {
      const statuses: number[] = [];
      for (let start = 0; start < batch.length; start += 100) statuses.push(await postIngest(ingestPort, JSON.stringify(batch.slice(start, start + 100))));
      return statuses;
    };
    // Batches go out from two senders at once; then a client re-sends 400 of them in other batches.
    const statuses = (await Promise.all([send(entries.slice(0, 1000)), send(entries.slice(1000))])).flat();
    expect(statuses.every((status) => status === 202)).toBe(true);
    expect(await send([...entries.slice(1700), ...entries.slice(0, 100)].reverse())).toEqual([202, 202, 202, 202]);

    const expected = shards.map(({ partition }) => entries.filter((entry) => partitionOf(entry.insert_id ?? "", PARTITIONS) === partition).length);
    expect(expected[0]).toBeGreaterThan(800);
    expect(expected[1]).toBeGreaterThan(800);
    for (const [index, shard] of shards.entries()) {
      await waitFor(
        async () => {
          const rollup = await query(shard.port, `SELECT sum(count) FROM flowmeter.command_stats WHERE command = '${command}'`);
          return rollup === String(expected[index]) ? true : undefined;
        },
        { timeoutMs: 60_000, what: `shard ${shard.partition}'s rollup at ${expected[index]}` },
      );
      const raw = await query(shard.port, `SELECT count(), uniqExact(insert_id) FROM flowmeter.cli_invocations WHERE command = '${command}'`);
      expect(raw).toBe(`${expected[index]}\t${expected[index]}`);
      const ids = (await query(shard.port, `SELECT insert_id FROM flowmeter.cli_invocations WHERE command = '${command}' ORDER BY insert_id`)).split("\n");
      expect(ids.every((id) => partitionOf(id, PARTITIONS) === shard.partition)).toBe(true);
    }
    // The union of the shards is every acknowledged entry.
    const union = new Set<string>();
    for (const shard of shards) {
      for (const id of (await query(shard.port, `SELECT insert_id FROM flowmeter.cli_invocations WHERE command = '${command}'`)).split("\n")) union.add(id);
    }
    expect([...union].sort()).toEqual(entries.map((entry) => entry.insert_id ?? "").sort());
    // The 400 re-sent entries were dropped by their partition's writer: as stored, or as twice in one batch when the
    // re-send came within the same flush.
    const dropped = await Promise.all(
      shards.map(({ port }) => metric(port, /flowmeter_worker_duplicates_dropped_total\{table="cli_invocations",reason="stored"\} (\d+)/)),
    );
    const inBatch = await Promise.all(
      shards.map(({ port }) => metric(port, /flowmeter_worker_duplicates_dropped_total\{table="cli_invocations",reason="in_batch"\} (\d+)/)),
    );
    expect([...dropped, ...inBatch].reduce((sum, count) => sum + (Number.isNaN(count) ? 0 : count), 0)).toBeGreaterThanOrEqual(400);
  }, 120_000);
});
