/**
 * `npm run bench`: starts a private pipeline (its own chDB directory, queue prefix and ports, the usual Redis),
 * sends cli_invocation entries over HTTP for a fixed time, batched (100 per request) as fast as it is answered,
 * one per request, and batched at a steady offered load (BENCH_STEADY_ENTRIES_PER_SECOND, default 10000, to see
 * freshness when the pipeline is not saturated), the same steady load while /query runs heavy scans back to back (a
 * query must not hold up inserts), and prints: entries/s acknowledged (202), entries/s visible in ClickHouse, freshness p50/p95 (202 → the
 * entry's command visible in command_stats), and the raw chDB insert rate of the same rows as the ceiling.
 *
 * Knobs: BENCH_SECONDS (per phase, default 15), BENCH_CONCURRENCY (requests in flight, default 16),
 * BENCH_BATCH_SIZE (default 100), BENCH_RUNNER_STAGES (default 400), BENCH_CPU_PROFILE_DIR (write V8 CPU profiles
 * of ingest and the worker there).
 *
 * Then the runner: one run of BENCH_RUNNER_STAGES short shell stages (8 at a time), its events delivered through the
 * real queue and worker (see bench-runner.ts).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { Agent, request as httpRequest } from "node:http";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { EnvReader, createLogger, type CliInvocationEvent } from "@flowmeter/shared";
import { childEntry, deleteQueuePrefix, freePort, parentEntry, tempDir } from "@flowmeter/test-utils";
import { CLI_INVOCATION_COLUMNS, insertJsonRows, openScratchDatabase, toClickHouseTime, toRow } from "@flowmeter/worker";
import { benchRunner, type RunnerBenchResult } from "./bench-runner.js";
import { chooseRedis } from "./redis-server.js";
import { SERVICE_ENTRY_POINTS } from "./services.js";
import { waitHealthy } from "./wait-healthy.js";

/** Entry ids in a template are this prefix plus a 3-digit entry index; each request swaps in ids of its own. */
const ID_SLOT = "00000000-0000-4000-8000-000000000";
const ID_SLOT_PATTERN = /00000000-0000-4000-8000-000000000(\d{3})/;

interface PhaseResult {
  name: string;
  seconds: number;
  acked: number;
  ackedPerSecond: number;
  visiblePerSecond: number;
  freshnessP50Ms: number;
  freshnessP95Ms: number;
  errors: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: 1024 });

/** POST with a keep-alive agent: fetch() costs the load generator several times more CPU per request, CPU the pipeline needs. */
function post(url: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(body);
  });
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** Entries of one request as a JSON template whose ids are swapped per request (serializing anew each time would load the CPU the pipeline needs). */
function requestTemplate(size: number, startedAt: Date): string[] {
  const drivers = ["loopback", "docker", "ssh", "k8s"];
  const entries: CliInvocationEvent[] = [];
  for (let index = 0; index < size; index += 1) {
    const id = `${ID_SLOT}${String(index).padStart(3, "0")}`;
    entries.push(
      index % 5 === 0
        ? parentEntry({ id, startedAt, durationMs: 200 + index * 37 })
        : childEntry(entries[0]?.properties.id ?? id, { id, startedAt, driver: drivers[index % drivers.length] ?? "loopback", stepName: `step-${index % 7}`, status: index % 9 === 0 ? "error" : "success", durationMs: 50 + ((index * 7919) % 2000) }),
    );
  }
  const body = size === 1 ? JSON.stringify(entries[0]) : JSON.stringify({ events: entries });
  // split() with a capture group keeps the entry indexes at the odd positions.
  return body.split(new RegExp(ID_SLOT_PATTERN, "g"));
}

function fillTemplate(parts: string[], runTag: string, sequence: number): string {
  let body = parts[0] ?? "";
  for (let index = 1; index < parts.length; index += 2) body += `${runTag}-${sequence}-${parts[index]}${parts[index + 1] ?? ""}`;
  return body;
}

export async function bench(env: NodeJS.ProcessEnv): Promise<number> {
  const reader = new EnvReader(env);
  const seconds = reader.int("BENCH_SECONDS", 15, { min: 1, max: 3600 });
  const concurrency = reader.int("BENCH_CONCURRENCY", 16, { min: 1, max: 1024 });
  const batchSize = reader.int("BENCH_BATCH_SIZE", 100, { min: 2, max: 1000 });
  const runnerStages = reader.int("BENCH_RUNNER_STAGES", 400, { min: 8, max: 100_000 });
  const steadyRate = reader.int("BENCH_STEADY_ENTRIES_PER_SECOND", 10_000, { min: 100, max: 1_000_000 });
  const profileDir = reader.optionalString("BENCH_CPU_PROFILE_DIR");
  reader.finish(undefined);
  const logger = createLogger("bench", "info");
  const nodeFlags = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];

  const data = tempDir("bench");
  const redis = await chooseRedis(env["REDIS_URL"], data.path, logger);
  const prefix = `fmtest-bench-${randomBytes(4).toString("hex")}`;
  const [ingestPort, workerPort] = [await freePort(), await freePort()];
  const serviceEnv = {
    ...env,
    // The bench measures the embedded default in a directory of its own, never a configured server.
    CLICKHOUSE_URL: "",
    FLOWMETER_DATA_DIR: data.path,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: prefix,
    INGEST_PORT: String(ingestPort),
    WORKER_METRICS_PORT: String(workerPort),
    INGEST_RATE_LIMIT_ENTRIES_PER_SECOND: "0",
    LOG_LEVEL: env["LOG_LEVEL"] ?? "warn",
  };
  const migrated = spawnSync(process.execPath, [SERVICE_ENTRY_POINTS.migrate()], { env: serviceEnv, stdio: "inherit" });
  if (migrated.status !== 0) return 1;
  const services: ChildProcess[] = (["worker", "ingest"] as const).map((name) => spawn(process.execPath, [...nodeFlags, SERVICE_ENTRY_POINTS[name]()], { env: serviceEnv, stdio: "inherit" }));
  const ingestUrl = `http://127.0.0.1:${ingestPort}`;
  const workerUrl = `http://127.0.0.1:${workerPort}`;
  if (!(await waitHealthy([`${ingestUrl}/healthz`, `${workerUrl}/healthz`], 60_000))) throw new Error("ingest and the worker did not become healthy within 60 s");

  const query = async (sql: string): Promise<string> => {
    for (;;) {
      const response = await post(`${workerUrl}/query?format=TabSeparated`, sql);
      if (response.status === 200) return response.body.trim();
      // The heavy-query phase keeps /query busy: wait for a free slot as a client would.
      if (response.status !== 429) throw new Error(`query failed: ${response.body}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const storedRows = async () => Number(await query("SELECT count() FROM flowmeter.cli_invocations"));

  /**
   * `entriesPerSecond` paces the senders to an offered load; undefined sends as fast as the pipeline answers.
   * `alongside` runs in a loop for the phase's duration (the heavy /query load of the "+ heavy query" phase).
   */
  async function runPhase(name: string, entriesPerRequest: number, entriesPerSecond?: number, alongside?: () => Promise<unknown>): Promise<PhaseResult> {
    const runTag = `${name}-${randomBytes(3).toString("hex")}`;
    const parts = requestTemplate(entriesPerRequest, new Date());
    const rowsBefore = await storedRows();
    const startedAt = performance.now();
    const deadline = startedAt + seconds * 1000;
    let sequence = 0;
    let acked = 0;
    let errors = 0;

    const requestInterval = entriesPerSecond === undefined ? 0 : (1000 * entriesPerRequest) / entriesPerSecond;
    const sender = async () => {
      while (performance.now() < deadline) {
        const due = startedAt + sequence * requestInterval;
        if (due > performance.now()) await new Promise((resolve) => setTimeout(resolve, due - performance.now()));
        const body = fillTemplate(parts, runTag, (sequence += 1));
        const response = await post(`${ingestUrl}/ingest`, body).catch(() => undefined);
        if (response?.status === 202) acked += (JSON.parse(response.body) as { accepted: number }).accepted;
        else errors += 1;
      }
    };

    // Freshness probes: one entry with its own command every 250 ms; a poller notes when each shows in command_stats.
    const probeAcked = new Map<string, number>();
    const probeVisible = new Map<string, number>();
    const probeMinute = new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString().slice(0, 19).replace("T", " ");
    const prober = async () => {
      for (let probe = 0; performance.now() < deadline; probe += 1) {
        const entry = parentEntry();
        entry.properties.invocation.command = `probe-${runTag}-${probe}`;
        const response = await post(`${ingestUrl}/ingest`, JSON.stringify(entry)).catch(() => undefined);
        if (response?.status === 202) probeAcked.set(entry.properties.invocation.command, performance.now());
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    };
    let polling = true;
    const poller = async () => {
      while (polling) {
        const seen = await query(`SELECT DISTINCT command FROM flowmeter.command_stats WHERE minute >= '${probeMinute}' AND startsWith(command, 'probe-${runTag}-')`).catch(() => "");
        const now = performance.now();
        for (const command of seen.split("\n")) if (command !== "" && !probeVisible.has(command)) probeVisible.set(command, now);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };

    const polled = poller();
    const background = async () => {
      while (alongside !== undefined && performance.now() < deadline) await alongside();
    };
    const backgroundDone = background();
    await Promise.all([...Array.from({ length: concurrency }, sender), prober()]);
    const sendSeconds = (performance.now() - startedAt) / 1000;
    const expected = rowsBefore + acked + probeAcked.size;
    let visibleAt = performance.now();
    for (let stored = await storedRows(); stored < expected; stored = await storedRows()) {
      if (performance.now() - visibleAt > 120_000) throw new Error(`only ${stored - rowsBefore} of ${expected - rowsBefore} acknowledged entries became visible`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    visibleAt = performance.now();
    await backgroundDone;
    await new Promise((resolve) => setTimeout(resolve, 500));
    polling = false;
    await polled;

    const freshness = [...probeAcked].map(([command, ackedAt]) => (probeVisible.get(command) ?? visibleAt) - ackedAt).sort((a, b) => a - b);
    const result: PhaseResult = {
      name,
      seconds: sendSeconds,
      acked,
      ackedPerSecond: acked / sendSeconds,
      visiblePerSecond: acked / ((visibleAt - startedAt) / 1000),
      freshnessP50Ms: quantile(freshness, 0.5),
      freshnessP95Ms: quantile(freshness, 0.95),
      errors,
    };
    logger.info("phase done", { phase: name, acked, errors });
    return result;
  }

  let results: PhaseResult[];
  let runner: RunnerBenchResult;
  try {
    results = [
      await runPhase(`batched-${batchSize}`, batchSize),
      await runPhase("single", 1),
      await runPhase(`steady-${steadyRate}/s`, batchSize, steadyRate),
      // The same offered load while /query runs 5-second full scans back to back.
      await runPhase(`steady+heavy query`, batchSize, steadyRate, () => post(`${workerUrl}/query`, "SELECT count() FROM numbers(5e9) WHERE number % 7 = 3").catch(() => undefined)),
    ];
    runner = await benchRunner({
      redisUrl: redis.url,
      prefix,
      spoolDir: `${data.path}/spool`,
      stages: runnerStages,
      countStored: async (runId) => Number(await query(`SELECT count() FROM flowmeter.run_events WHERE run_id = '${runId}'`)),
    });
  } finally {
    agent.destroy();
    for (const service of services.reverse()) {
      service.kill("SIGTERM");
      await new Promise((resolve) => service.once("exit", resolve));
    }
  }

  // Ceiling: the same rows inserted straight into a fresh chDB directory (the worker has let go of its own).
  const ceiling = await openScratchDatabase("bench-ceiling");
  const parts = requestTemplate(batchSize, new Date());
  const ceilingRows = Math.max(200_000, Math.min(1_000_000, results[0]?.acked ?? 0));
  const events: CliInvocationEvent[] = [];
  for (let sequence = 0; events.length < ceilingRows; sequence += 1) {
    events.push(...(JSON.parse(fillTemplate(parts, "ceiling", sequence)) as { events: CliInvocationEvent[] }).events);
  }
  const receivedAt = toClickHouseTime(Date.now());
  const rows = events.map((event) => toRow(event, receivedAt));
  const ceilingStarted = performance.now();
  for (let offset = 0; offset < rows.length; offset += 50_000) await insertJsonRows(ceiling.clickhouse, "flowmeter.cli_invocations", CLI_INVOCATION_COLUMNS, rows.slice(offset, offset + 50_000));
  const ceilingPerSecond = rows.length / ((performance.now() - ceilingStarted) / 1000);
  await ceiling.close();

  const redisClient = new Redis(redis.url);
  await deleteQueuePrefix(prefix, redis.url).catch(() => undefined);
  redisClient.disconnect();
  redis.process?.kill("SIGTERM");
  data.remove();

  const format = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "n/a");
  const lines = [
    "",
    `flowmeter bench: ${seconds} s per phase, ${concurrency} requests in flight, embedded chDB, Redis ${redis.url}`,
    "",
    "phase              acked entries/s   visible entries/s   freshness p50   freshness p95   acked    errors",
    ...results.map((result) =>
      [
        result.name.padEnd(18),
        format(result.ackedPerSecond).padStart(15),
        format(result.visiblePerSecond).padStart(19),
        `${format(result.freshnessP50Ms)} ms`.padStart(15),
        `${format(result.freshnessP95Ms)} ms`.padStart(15),
        format(result.acked).padStart(9),
        String(result.errors).padStart(8),
      ].join(" "),
    ),
    "",
    `ceiling: raw chDB insert of the same rows into cli_invocations (+ rollup views): ${format(ceilingPerSecond)} rows/s (${format(rows.length)} rows)`,
    `end to end / ceiling (batched): ${(((results[0]?.visiblePerSecond ?? 0) / ceilingPerSecond) * 100).toFixed(1)} %`,
    `targets (2 cores): >= 50,000 entries/s end to end batched, freshness p95 <= 5,000 ms; steady+heavy query keeps the steady phase's rate`,
    "",
    `runner: ${runner.stages} short stages (sh -c true, 8 at a time) in ${runner.runSeconds.toFixed(1)} s, ${runner.events} events`,
    `  event emission on the stage path: ${runner.emitMicrosPerStage.toFixed(1)} µs per stage (delivery, off the path: ${runner.deliverMicrosPerEvent.toFixed(1)} µs wall time per event)`,
    `  events/s emitted: ${format(runner.eventsPerSecond)}; visible in run_events: ${format(runner.visiblePerSecond)}`,
    "",
  ];
  process.stdout.write(lines.join("\n"));
  return 0;
}

export const benchInternals = { requestTemplate, fillTemplate };
