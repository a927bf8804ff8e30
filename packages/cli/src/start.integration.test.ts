/**
 * The README's path, for real: `flowmeter start` on the embedded default, the curl example's parent and child
 * entries visible in driver_stats, `flowmeter run` on the example workflow, a failing stage's output through
 * `npx flowmeter run` and `npx flowmeter logs` (and in ClickHouse's run_logs), and a clean SIGTERM.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
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
    expect(row).toBe("client\tloopback\tfailed\t1");
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

  /** `npx flowmeter …` from the repository, as a user runs it; resolves with the exit code and everything printed. */
  async function npxFlowmeter(args: string[]): Promise<{ code: number | null; printed: string }> {
    const child = spawn("npx", ["flowmeter", ...args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    let printed = "";
    child.stdout?.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    return { code, printed };
  }

  it("shows a failed stage's last lines under it (npx flowmeter run), all of them with npx flowmeter logs, and stores them in run_logs", async () => {
    const file = `${data.path}/fails.yaml`;
    writeFileSync(
      file,
      [
        "name: fails",
        "stages:",
        "  - name: a",
        "    driver: shell",
        '    run: "echo about to fail; echo disk full >&2; exit 3"',
        "  - name: b",
        "    driver: shell",
        '    run: "echo fine"',
        "",
      ].join("\n"),
    );
    const run = await npxFlowmeter(["run", file]);
    expect(run.code, run.printed).toBe(1);
    const runId = /run (\S+) of workflow fails submitted/.exec(run.printed)?.[1] ?? "";
    expect(runId, run.printed).not.toBe("");
    const afterFailure = run.printed.slice(run.printed.indexOf("stage.failed a"));
    expect(afterFailure.split("\n").slice(1, 3).sort(), run.printed).toEqual(["    │ a (stderr): disk full", "    │ a: about to fail"]);

    const all = await npxFlowmeter(["logs", runId]);
    expect(all.code, all.printed).toBe(0);
    expect(all.printed.trim().split("\n").sort()).toEqual(["a (stderr): disk full", "a: about to fail", "b: fine"]);
    const onlyB = await npxFlowmeter(["logs", runId, "b", "--follow"]); // the run has ended: --follow returns at once
    expect([onlyB.code, onlyB.printed]).toEqual([0, "b: fine\n"]);
    expect((await npxFlowmeter(["logs", "no-such-run"])).code).toBe(66);

    const stored = await waitFor(
      async () => {
        const text = await query(`SELECT stage_name, stream, line FROM flowmeter.run_logs WHERE run_id = '${runId}' ORDER BY stage_name, stream`);
        return text.split("\n").length === 3 ? text : undefined;
      },
      { what: "the run's lines in run_logs" },
    );
    expect(stored).toBe("a\tstderr\tdisk full\na\tstdout\tabout to fail\nb\tstdout\tfine");
  }, 60_000);

  it("stops cleanly on SIGTERM", async () => {
    pipeline.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => pipeline.once("exit", resolve));
    expect(code, output).toBe(0);
    expect(output).toContain("worker stopped");
  }, 60_000);
});
