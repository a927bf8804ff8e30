/**
 * End to end: the real pipeline (`flowmeter start`: ingest + worker on chDB, and the runner) on loopback with free
 * ports, scraped every second by the real Prometheus binary, which also loads infra's alert rules. After some client
 * telemetry, the Prometheus HTTP API must show each service's key series with the values
 * that traffic implies, every alert rule must evaluate without error against the real metrics, and every
 * Prometheus expression of the dashboards must be accepted by the server.
 *
 * Needs Redis (REDIS_URL, default 127.0.0.1:6379), a built repo, and Debian's `prometheus` package: without it
 * the test is skipped, except in CI (CI=true), where it fails.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify as stringifyYaml } from "yaml";
import { childEntry, deleteQueuePrefix, freePort, parentEntry, tempDir, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";
import { INFRA_DIR, REPO_ROOT, checkTools, flowmeterBin, runnerMain, toolPath } from "./ops-test-support.js";

const tools = checkTools(["prometheus"]);

interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

interface PromRule {
  name: string;
  health: string;
  lastError?: string;
  lastEvaluation?: string;
}

interface Running {
  name: string;
  child: ChildProcess;
  output: string[];
}

function launch(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): Running {
  const child = spawn(command, args, { env, cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const running: Running = { name, child, output: [] };
  const keep = (chunk: Buffer) => {
    running.output.push(chunk.toString("utf8"));
    if (running.output.length > 200) running.output.shift();
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return running;
}

async function stop(running: Running | undefined, timeoutMs = 30_000): Promise<number | string | null> {
  if (running === undefined) return null;
  const { child } = running;
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
  const exited = new Promise<number | string | null>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const result = await exited;
  clearTimeout(timer);
  return result;
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

describe.skipIf(tools.skip)(`Prometheus scrapes the running pipeline${tools.note}`, () => {
  let data: ReturnType<typeof tempDir> | undefined;
  const prefix = testQueuePrefix("ops-scrape");
  const ports = { ingest: 0, runner: 0, worker: 0, prometheus: 0 };
  const processes: Running[] = [];
  let flowmeter: Running | undefined;
  let runner: Running | undefined;
  let prometheus: Running | undefined;

  function diagnostics(): string {
    return processes
      .map((running) => `--- ${running.name} (exit ${String(running.child.exitCode ?? running.child.signalCode)})\n${running.output.join("").slice(-3000)}`)
      .join("\n");
  }

  async function query(expr: string): Promise<PromSample[]> {
    const response = await fetch(`http://127.0.0.1:${ports.prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as { status: string; error?: string; data: { result: PromSample[] } };
    if (body.status !== "success") throw new Error(`${expr}: ${body.error ?? body.status}`);
    return body.data.result;
  }

  /** Polls until `expr` returns series and every value satisfies `ok`; returns the values. */
  async function expectSeries(expr: string, ok: (value: number) => boolean, what: string): Promise<number[]> {
    return waitFor(
      async () => {
        const values = (await query(expr)).map((sample) => Number(sample.value[1]));
        return values.length > 0 && values.every(ok) ? values : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: `${what} (${expr})` },
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${diagnostics()}`);
    });
  }

  beforeAll(async () => {
    const prometheusBinary = toolPath(tools, "prometheus"); // in CI, fails here when the package is missing
    data = tempDir("ops-scrape");
    ports.ingest = await freePort();
    ports.runner = await freePort();
    ports.worker = await freePort();
    ports.prometheus = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FLOWMETER_DATA_DIR: data.path,
      REDIS_URL: testRedisUrl(),
      QUEUE_PREFIX: prefix,
      INGEST_PORT: String(ports.ingest),
      RUNNER_PORT: String(ports.runner),
      WORKER_METRICS_PORT: String(ports.worker),
      WORKER_BATCH_MAX_WAIT_MS: "200",
      RUNNER_SAMPLE_INTERVAL_MS: "200",
      LOG_LEVEL: "warn",
    };
    flowmeter = launch("flowmeter start", process.execPath, [flowmeterBin(), "start"], env);
    processes.push(flowmeter);
    await waitFor(
      async () =>
        (await answers(`http://127.0.0.1:${ports.ingest}/healthz`)) && (await answers(`http://127.0.0.1:${ports.worker}/healthz`)) ? true : undefined,
      {
        timeoutMs: 45_000,
        intervalMs: 200,
        what: "ingest and worker to answer /healthz",
      },
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${diagnostics()}`);
    });
    // `start` may or may not launch the runner yet; when it does, the runner is up by now or within a few seconds.
    const runnerUp = await waitFor(async () => ((await answers(`http://127.0.0.1:${ports.runner}/v1/health`)) ? true : undefined), {
      timeoutMs: 5000,
      intervalMs: 200,
    }).catch(() => false);
    if (!runnerUp) {
      runner = launch("runner", process.execPath, [runnerMain()], env);
      processes.push(runner);
      await waitFor(async () => ((await answers(`http://127.0.0.1:${ports.runner}/v1/health`)) ? true : undefined), {
        timeoutMs: 20_000,
        intervalMs: 200,
        what: "the runner",
      }).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${diagnostics()}`);
      });
    }

    const config = {
      global: { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" },
      rule_files: [join(INFRA_DIR, "prometheus/rules/flowmeter.rules.yml")],
      scrape_configs: [
        { job_name: "ingest", static_configs: [{ targets: [`127.0.0.1:${ports.ingest}`] }] },
        { job_name: "worker", static_configs: [{ targets: [`127.0.0.1:${ports.worker}`] }] },
        { job_name: "runner", static_configs: [{ targets: [`127.0.0.1:${ports.runner}`] }] },
      ],
    };
    const configPath = join(data.path, "prometheus.yml");
    writeFileSync(configPath, stringifyYaml(config));
    prometheus = launch(
      "prometheus",
      prometheusBinary,
      [
        `--config.file=${configPath}`,
        `--storage.tsdb.path=${join(data.path, "prometheus")}`,
        `--web.listen-address=127.0.0.1:${ports.prometheus}`,
        "--log.level=warn",
      ],
      env,
    );
    processes.push(prometheus);
    await waitFor(async () => ((await answers(`http://127.0.0.1:${ports.prometheus}/-/ready`)) ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: "prometheus /-/ready",
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${diagnostics()}`);
    });
  }, 90_000);

  afterAll(async () => {
    await stop(prometheus);
    await stop(runner);
    await stop(flowmeter, 45_000);
    await deleteQueuePrefix(prefix);
    data?.remove();
  }, 90_000);

  it("shows each service's key series with the values the traffic implies", async () => {
    const parent = parentEntry();
    const entries = [
      parent,
      childEntry(parent.insert_id ?? "", { driver: "shell" }),
      childEntry(parent.insert_id ?? "", { driver: "loopback", status: "success" }),
    ];
    const response = await fetch(`http://127.0.0.1:${ports.ingest}/ingest`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ events: entries }),
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ accepted: 3, rejected: [] });

    for (const job of ["ingest", "worker", "runner"]) await expectSeries(`up{job="${job}"}`, (value) => value === 1, `${job} scraped`);
    await expectSeries('sum(flowmeter_ingest_requests_total{route="/ingest", status="202"})', (value) => value >= 1, "202 answers counted");
    await expectSeries("sum(flowmeter_ingest_entries_accepted_total)", (value) => value === 3, "accepted entries");
    await expectSeries('sum(flowmeter_worker_rows_inserted_total{table="cli_invocations"})', (value) => value === 3, "client rows written");
    await expectSeries("flowmeter_runner_up", (value) => value === 1, "runner up");
    await expectSeries("flowmeter_runner_active_runs", (value) => value === 0, "runner idle");
    await expectSeries("flowmeter_runner_events_spooled", (value) => value === 0, "nothing spooled while Redis answers");
    await expectSeries("flowmeter_runner_heartbeat_age_seconds", (value) => value === 0, "no stage running");
    // Label sets are created at start, so dashboards and rate() see every driver × outcome from the first scrape.
    await expectSeries('count(flowmeter_runner_stage_outcomes_total{driver="shell"})', (value) => value === 5, "stage outcome series per status");
    await expectSeries("max by (queue) (flowmeter_worker_queue_lag_seconds)", (value) => value >= 0 && value < 60, "queue lag sampled");
    await expectSeries('max by (queue) (flowmeter_worker_queue_depth{state="waiting"})', (value) => value >= 0, "queue depth sampled");
    await expectSeries("sum(flowmeter_worker_insert_batch_rows_count)", (value) => value >= 1, "insert batches observed");
    await expectSeries('flowmeter_process_resident_memory_bytes{job="worker"}', (value) => value > 0, "default process metrics");
  }, 60_000);

  it("evaluates every alert rule without error, none firing on a healthy pipeline", async () => {
    const expected = [...readFileSync(join(INFRA_DIR, "prometheus/rules/flowmeter.rules.yml"), "utf8").matchAll(/^\s*- alert: (\w+)/gm)].map(
      (match) => match[1],
    );
    const rules = await waitFor(
      async () => {
        const response = await fetch(`http://127.0.0.1:${ports.prometheus}/api/v1/rules`);
        const body = (await response.json()) as { data: { groups: { rules: PromRule[] }[] } };
        const all = body.data.groups.flatMap((group) => group.rules);
        return all.length === expected.length && all.every((rule) => rule.health !== "unknown") ? all : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500, what: "every rule evaluated once" },
    );
    expect(rules.map((rule) => rule.name).sort()).toEqual([...expected].sort());
    for (const rule of rules) expect(rule.health, `${rule.name}: ${rule.lastError ?? ""}`).toBe("ok");
    const firing = await query('ALERTS{alertstate="firing"}');
    expect(firing.map((sample) => sample.metric["alertname"])).toEqual([]);
  }, 30_000);

  it("accepts every Prometheus expression of the dashboards", async () => {
    const files = ["pipeline-health.json"];
    let count = 0;
    for (const file of files) {
      const dashboard = JSON.parse(readFileSync(join(INFRA_DIR, "grafana/dashboards", file), "utf8")) as {
        panels: { title: string; targets?: { expr?: string }[] }[];
      };
      for (const panel of dashboard.panels) {
        for (const target of panel.targets ?? []) {
          if (target.expr === undefined) continue;
          const expr = target.expr.replaceAll("$__rate_interval", "1m");
          await expect(query(expr), `${panel.title}: ${expr}`).resolves.toBeDefined();
          count++;
        }
      }
    }
    expect(count).toBeGreaterThan(20);
  }, 30_000);
});
