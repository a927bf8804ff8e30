/**
 * The worker process killed with SIGKILL in the middle of its work loses nothing and counts nothing twice, in the
 * raw table and in every rollup: after an insert but before the acknowledgement (failpoint), between the raw part
 * and the view parts of an insert (failpoint), and at random moments while batches are in flight.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { createRedis } from "@flowmeter/platform";
import { JOB_CATALOG, type ClientTelemetryJob } from "@flowmeter/shared";
import { childEntry, deleteQueuePrefix, freePort, parentEntry, tempDir, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";

const dist = fileURLToPath(new URL("../dist/", import.meta.url));
/** A client entry's status in the outcome vocabulary of driver_stats and stage_stats (migrations 0045, 0047). */
const OUTCOME_OF_STATUS = "multiIf(status = 'success', 'succeeded', status = 'user_error', 'user_error', 'failed')";

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
    WORKER_WRITE_LOCK_TTL_MS: "2000",
    LOG_LEVEL: "warn",
  });

  /** Every worker started, so none outlives the file if a test fails midway. */
  const started: ChildProcess[] = [];

  function startWorker(extra: Record<string, string> = {}): ChildProcess {
    const child = spawn(process.execPath, [`${dist}main.js`], { env: { ...env(), ...extra }, stdio: ["ignore", "inherit", "inherit"] });
    worker = child;
    started.push(child);
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

  /** Half parents, half children (which feed every rollup), all tagged with `command` as command, workflow and driver. */
  async function enqueue(command: string, jobs: number, entriesPerJob: number): Promise<void> {
    const statuses = ["success", "error", "user_error"] as const;
    for (let job = 0; job < jobs; job += 1) {
      const entries = Array.from({ length: entriesPerJob }, (_, index) => {
        const status = statuses[index % statuses.length] ?? "success";
        const parent = parentEntry({ status, durationMs: 10 + index });
        const entry =
          index % 2 === 0
            ? parent
            : childEntry(parent.properties.id, { status, durationMs: 20 + index, workflowName: command, driver: command, stepName: `step-${index % 3}` });
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

  /** Each rollup beside the same GROUP BY over the raw table. */
  async function rollupsAndRaw(command: string): Promise<{ rollup: string; raw: string }[]> {
    const raw = `flowmeter.cli_invocations FINAL WHERE command = '${command}'`;
    const pairs = [
      [
        `SELECT minute, command, subcommand, status, sum(entries) FROM flowmeter.command_stats_1m WHERE command = '${command}' GROUP BY ALL ORDER BY ALL`,
        `SELECT toStartOfMinute(completed_at), command, subcommand, status, count() FROM ${raw} GROUP BY ALL ORDER BY ALL`,
      ],
      [
        `SELECT minute, driver, status, sum(entries) FROM flowmeter.driver_stats_1m WHERE source = 'client' AND driver = '${command}' GROUP BY ALL ORDER BY ALL`,
        `SELECT toStartOfMinute(completed_at), driver, ${OUTCOME_OF_STATUS}, count() FROM ${raw} AND is_child GROUP BY ALL ORDER BY ALL`,
      ],
      [
        `SELECT minute, workflow, stage, driver, status, sum(entries) FROM flowmeter.stage_stats_1m WHERE workflow = '${command}' GROUP BY ALL ORDER BY ALL`,
        `SELECT toStartOfMinute(completed_at), workflow_name, step_name, driver, ${OUTCOME_OF_STATUS}, count() FROM ${raw} AND is_child GROUP BY ALL ORDER BY ALL`,
      ],
    ];
    const compared: { rollup: string; raw: string }[] = [];
    for (const [rollup, fromRaw] of pairs) compared.push({ rollup: await query(rollup ?? ""), raw: await query(fromRaw ?? "") });
    return compared;
  }

  async function expectExactlyOnce(command: string, expected: number): Promise<void> {
    await waitFor(drained, { timeoutMs: 60_000, what: "queue drained after restart" });
    expect(await query(`SELECT count(), uniqExact(insert_id) FROM flowmeter.cli_invocations WHERE command = '${command}'`)).toBe(`${expected}\t${expected}`);
    expect(await query(`SELECT sum(count) FROM flowmeter.command_stats WHERE command = '${command}'`)).toBe(String(expected));
    for (const { rollup, raw } of await rollupsAndRaw(command)) {
      expect(raw).not.toBe("");
      expect(rollup).toBe(raw);
    }
    expect(await redis.exists(`${prefix}:partition-journal:0`)).toBe(0);
  }

  /** Raw rows and command_stats rows of `command`, read from the data directory while no worker runs. */
  function countWithoutWorker(command: string): { raw: number; rollup: number } {
    const script = `
      const { Session } = require("chdb");
      const session = new Session(process.argv[1]);
      const sql = "SELECT (SELECT count() FROM flowmeter.cli_invocations WHERE command = '${command}'), (SELECT sum(entries) FROM flowmeter.command_stats_1m WHERE command = '${command}')";
      process.stdout.write(session.query(sql, "TSV"));
      session.close();`;
    const counted = spawnSync(process.execPath, ["-e", script, `${data.path}/clickhouse`], {
      encoding: "utf8",
      cwd: fileURLToPath(new URL("..", import.meta.url)),
    });
    expect(counted.status, counted.stderr).toBe(0);
    const [raw, rollup] = counted.stdout.trim().split("\t").map(Number);
    return { raw: raw ?? NaN, rollup: rollup ?? NaN };
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
    for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
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

  it("SIGKILL between the raw part and the view parts of an insert: the rollups are completed after restart", async () => {
    const command = `gap-${randomUUID()}`;
    await enqueue(command, 100, 50);
    const first = startWorker({ FLOWMETER_FAILPOINT: "kill-after-raw-part" });
    expect((await exited(first)).signal).toBe("SIGKILL");
    // The kill landed in the gap: raw rows are committed whose rollup rows are not.
    const { raw, rollup } = countWithoutWorker(command);
    expect(raw).toBeGreaterThan(0);
    expect(rollup).toBeLessThan(raw);
    expect(await redis.exists(`${prefix}:partition-journal:0`)).toBe(1);

    startWorker();
    await expectExactlyOnce(command, 5000);
    worker?.kill("SIGTERM");
    expect((await exited(worker as ChildProcess)).code).toBe(0);
  }, 90_000);

  it("SIGKILL at random moments while batches are in flight: exactly once after restart", async () => {
    const command = `random-${randomUUID()}`;
    await enqueue(command, 400, 50);
    for (let kill = 0; kill < 4; kill += 1) {
      const running = startWorker();
      await waitFor(
        async () => {
          const text = await fetch(`http://127.0.0.1:${port}/metrics`)
            .then((response) => response.text())
            .catch(() => "");
          return /flowmeter_worker_flushes_total\{queue="client-telemetry",reason="[a-z]+"\} [1-9]/.test(text) ? true : undefined;
        },
        { what: "the worker flushing batches", intervalMs: 10 },
      );
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 400));
      running.kill("SIGKILL");
      await exited(running);
    }

    startWorker();
    await expectExactlyOnce(command, 20_000);
  }, 120_000);

  it("SIGTERM drains what is queued into ClickHouse before exiting", async () => {
    const command = `drain-${randomUUID()}`;
    if (!worker || worker.exitCode !== null) startWorker();
    await waitFor(
      async () =>
        (await fetch(`http://127.0.0.1:${port}/healthz`)
          .then((response) => response.ok)
          .catch(() => false)) || undefined,
    );
    await enqueue(command, 40, 50);
    worker?.kill("SIGTERM");
    expect((await exited(worker as ChildProcess)).code).toBe(0);
    expect(await drained()).toBe(true);
    startWorker();
    await waitFor(
      async () =>
        (await fetch(`http://127.0.0.1:${port}/healthz`)
          .then((response) => response.ok)
          .catch(() => false)) || undefined,
    );
    expect(await query(`SELECT count() FROM flowmeter.cli_invocations WHERE command = '${command}'`)).toBe("2000");
  }, 90_000);
});
