/**
 * The worker process killed with SIGKILL in the middle of its work loses nothing and counts nothing twice:
 * once after a ClickHouse insert but before the acknowledgement (failpoint), once at a random moment.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { JOB_CATALOG, createRedis, type ClientTelemetryJob } from "@flowmeter/shared";
import { deleteQueuePrefix, freePort, parentEntry, tempDir, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";

const dist = fileURLToPath(new URL("../dist/", import.meta.url));

describe("worker killed mid-batch", () => {
  const data = tempDir("crash");
  const prefix = testQueuePrefix("crash");
  const redis = createRedis(testRedisUrl(), "worker");
  const queue = new Queue<ClientTelemetryJob>(JOB_CATALOG.clientTelemetry.queue, { connection: redis, prefix });
  let port = 0;
  let worker: ChildProcess | undefined;

  const env = () => ({
    ...process.env,
    FLOWMETER_DATA_DIR: data.path,
    QUEUE_PREFIX: prefix,
    REDIS_URL: testRedisUrl(),
    WORKER_METRICS_PORT: String(port),
    WORKER_BATCH_MAX_ROWS: "2000",
    WORKER_BATCH_MAX_WAIT_MS: "200",
    WORKER_LOCK_DURATION_MS: "2000",
    WORKER_STALLED_INTERVAL_MS: "1000",
    LOG_LEVEL: "warn",
  });

  function startWorker(extra: Record<string, string> = {}): ChildProcess {
    const child = spawn(process.execPath, [`${dist}main.js`], { env: { ...env(), ...extra }, stdio: ["ignore", "inherit", "inherit"] });
    worker = child;
    return child;
  }

  const exited = (child: ChildProcess) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
      else child.once("exit", (code, signal) => resolve({ code, signal }));
    });

  async function query(sql: string): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${port}/query?format=TabSeparated`, { method: "POST", body: sql });
    if (!response.ok) throw new Error(`query failed: ${response.status} ${await response.text()}`);
    return (await response.text()).trim();
  }

  async function enqueue(command: string, jobs: number, entriesPerJob: number): Promise<void> {
    for (let job = 0; job < jobs; job += 1) {
      const entries = Array.from({ length: entriesPerJob }, () => {
        const entry = parentEntry();
        entry.properties.invocation.command = command;
        return entry;
      });
      await queue.add(JOB_CATALOG.clientTelemetry.jobName, { entries, receivedAtMs: Date.now() }, JOB_CATALOG.clientTelemetry.options);
    }
  }

  async function drained(): Promise<true | undefined> {
    const counts = await queue.getJobCounts("waiting", "active", "delayed", "failed");
    return Object.values(counts).every((count) => count === 0) ? true : undefined;
  }

  async function expectExactlyOnce(command: string, expected: number): Promise<void> {
    await waitFor(drained, { timeoutMs: 60_000, what: "queue drained after restart" });
    expect(await query(`SELECT count(), uniqExact(insert_id) FROM flowmeter.cli_invocations WHERE command = '${command}'`)).toBe(`${expected}\t${expected}`);
    expect(await query(`SELECT sum(count) FROM flowmeter.command_stats WHERE command = '${command}'`)).toBe(String(expected));
  }

  beforeAll(async () => {
    port = await freePort();
    const migrated = spawnSync(process.execPath, [`${dist}migrate-main.js`], { env: env(), encoding: "utf8" });
    expect(migrated.status, migrated.stderr).toBe(0);
  });

  afterAll(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      worker.kill("SIGTERM");
      await exited(worker);
    }
    await queue.close();
    redis.disconnect();
    await deleteQueuePrefix(prefix);
    data.remove();
  });

  it("SIGKILL after the insert, before the ack: every entry exactly once after restart", async () => {
    const command = `crash-${randomUUID()}`;
    await enqueue(command, 100, 50);
    const first = startWorker({ FLOWMETER_FAILPOINT: "kill-after-insert" });
    expect((await exited(first)).signal).toBe("SIGKILL");
    expect(await drained()).toBeUndefined();

    startWorker();
    await expectExactlyOnce(command, 5000);
    worker?.kill("SIGTERM");
    expect((await exited(worker as ChildProcess)).code).toBe(0);
  }, 90_000);

  it("SIGKILL at a random moment while batches are in flight: exactly once after restart", async () => {
    const command = `random-${randomUUID()}`;
    await enqueue(command, 200, 50);
    const first = startWorker();
    await waitFor(async () => {
      const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text()).catch(() => "");
      return /flowmeter_worker_rows_inserted_total\{table="cli_invocations"\} [1-9]/.test(text) ? true : undefined;
    }, { what: "first rows written", intervalMs: 20 });
    first.kill("SIGKILL");
    await exited(first);

    startWorker();
    await expectExactlyOnce(command, 10_000);
  }, 90_000);

  it("SIGTERM drains what is queued into ClickHouse before exiting", async () => {
    const command = `drain-${randomUUID()}`;
    if (!worker || worker.exitCode !== null) startWorker();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).then((response) => response.ok).catch(() => false)) || undefined);
    await enqueue(command, 40, 50);
    worker?.kill("SIGTERM");
    expect((await exited(worker as ChildProcess)).code).toBe(0);
    expect(await drained()).toBe(true);
    startWorker();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).then((response) => response.ok).catch(() => false)) || undefined);
    expect(await query(`SELECT count() FROM flowmeter.cli_invocations WHERE command = '${command}'`)).toBe("2000");
  }, 90_000);
});
