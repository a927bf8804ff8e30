/**
 * The README's path, for real: `flowmeter start` on the embedded default, the curl example's parent and child
 * entries visible in driver_stats, `flowmeter run` on the example workflow, and a clean SIGTERM.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteQueuePrefix, freePort, tempDir, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const cli = `${root}packages/cli/dist/main.js`;

describe("flowmeter start", () => {
  const data = tempDir("start");
  const prefix = testQueuePrefix("start");
  const ports = { ingest: 0, runner: 0, worker: 0 };
  let env: NodeJS.ProcessEnv;
  let pipeline: ChildProcess;
  let output = "";

  beforeAll(async () => {
    ports.ingest = await freePort();
    ports.runner = await freePort();
    ports.worker = await freePort();
    env = {
      ...process.env,
      FLOWMETER_DATA_DIR: data.path,
      REDIS_URL: testRedisUrl(),
      QUEUE_PREFIX: prefix,
      INGEST_PORT: String(ports.ingest),
      RUNNER_PORT: String(ports.runner),
      WORKER_METRICS_PORT: String(ports.worker),
    };
    pipeline = spawn(process.execPath, [cli, "start"], { env, stdio: ["ignore", "pipe", "pipe"] });
    pipeline.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    pipeline.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    for (const url of [`http://127.0.0.1:${ports.ingest}/healthz`, `http://127.0.0.1:${ports.worker}/healthz`, `http://127.0.0.1:${ports.runner}/v1/health`]) {
      await waitFor(
        async () =>
          (await fetch(url)
            .then((response) => response.ok)
            .catch(() => false))
            ? true
            : undefined,
        { timeoutMs: 30_000, what: `${url} (output so far:\n${output})` },
      );
    }
  }, 60_000);

  afterAll(async () => {
    if (pipeline.exitCode === null && pipeline.signalCode === null) pipeline.kill("SIGKILL");
    await deleteQueuePrefix(prefix);
    data.remove();
  });

  async function query(sql: string): Promise<string> {
    const response = await fetch(`http://127.0.0.1:${ports.worker}/query?format=TabSeparated`, { method: "POST", body: sql });
    return (await response.text()).trim();
  }

  it("answers the README's curl example with 202 and shows the child in driver_stats", async () => {
    const response = await fetch(`http://127.0.0.1:${ports.ingest}/ingest`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: readFileSync(`${root}examples/telemetry-batch.json`),
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ accepted: 2, rejected: [] });
    const row = await waitFor(async () => (await query("SELECT source, driver, status, count FROM flowmeter.driver_stats")) || undefined, {
      what: "driver_stats row",
    });
    expect(row).toBe("client\tloopback\terror\t1");
    expect(await query("SELECT command, subcommand, count FROM flowmeter.command_stats ORDER BY command")).toBe("model\tmethod\t1\nworkflow\trun\t1");
  });

  it("runs the example workflow with `flowmeter run` and exits with its outcome", async () => {
    const run = spawn(process.execPath, [cli, "run", `${root}examples/deploy.yaml`], { env, stdio: ["ignore", "pipe", "pipe"] });
    let printed = "";
    run.stdout?.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    run.stderr?.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => run.once("exit", resolve));
    expect(code, printed).toBe(0);
    expect(printed).toContain("run.finished");
    expect(printed).toContain("run succeeded");
    const stages = await waitFor(
      async () => {
        // The curl example's child ("validate") is a client row of the same workflow.
        const text = await query(
          "SELECT stage, groupArray(status) FROM (SELECT stage, status FROM flowmeter.stage_stats WHERE workflow = 'deploy' AND stage != 'validate' ORDER BY status) GROUP BY stage ORDER BY stage",
        );
        return text.split("\n").length === 5 ? text : undefined;
      },
      { what: "runner rows in stage_stats" },
    );
    expect(stages).toContain("publish\t['succeeded']");
    expect(stages).toContain("lint\t['succeeded']");
  }, 60_000);

  it("stops cleanly on SIGTERM", async () => {
    pipeline.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => pipeline.once("exit", resolve));
    expect(code, output).toBe(0);
    expect(output).toContain("worker stopped");
  }, 60_000);
});
