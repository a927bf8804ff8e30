/**
 * `npm run bench`: starts a private pipeline (its own chDB directory, queue prefix and ports, the usual Redis) and
 * drives it over HTTP, phase by phase:
 * - batched (100 entries per request) and one entry per request, each as fast as ingest answers; a bare express
 *   hello-world driven the same way gives the yardstick for requests/s;
 * - offered load stepped up (BENCH_STEP_START, +BENCH_STEP_INCREMENT entries/s, BENCH_STEP_SECONDS each) until the
 *   queue no longer drains within 2 s of a step's end: the highest step that drained is the sustainable rate;
 * - steady at 80 % of that rate (freshness), and the same while /query runs heavy scans back to back;
 * - optionally a soak at that rate (BENCH_SOAK_SECONDS) for the services' peak RSS;
 * - the large table (issue #22, bench-prefill.ts): the worker stopped, BENCH_PREFILL_ROWS rows written into its chDB
 *   directory by the engine's own INSERT … SELECT (ids within the dedup horizon too, as migration 0024 fills them),
 *   the worker restarted (its takeover timed from its "partition taken over" line), then the batched and steady
 *   phases again, printed beside their empty-table figures.
 * After each phase it checks that rows visible equal entries acknowledged and that every rollup equals a GROUP BY
 * over the raw table. It prints entries/s acknowledged (202) and visible, freshness p50/p95 (202 → the entry's
 * command visible in command_stats), inserts per table per second, CPU per entry by process, the engine's ceiling
 * (the same rows as bytes through chDB's raw insert, nothing else running) and the runner's figures (bench-runner.ts:
 * a runner started through @flowmeter/runner's startRunner in this process).
 *
 * Knobs: BENCH_SECONDS (per phase, default 15), BENCH_CONCURRENCY (requests in flight, default 16), BENCH_BATCH_SIZE
 * (default 100), BENCH_STEADY_ENTRIES_PER_SECOND (skip the search, use this rate), BENCH_RUNNER_STAGES (default 400),
 * BENCH_RUNNER_FLOOD_RUNS (default 40), BENCH_CPU_PROFILE_DIR (write V8 CPU profiles of ingest and the worker there),
 * BENCH_PREFILL_ROWS (default 100,000,000; 0 skips the large table), BENCH_PREFILL_MERGE_WAIT_SECONDS (default 300: how
 * long the prefill waits for the engine's merges of its parts before the worker is restarted).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { Agent, request as httpRequest } from "node:http";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import { EnvReader, createLogger } from "@flowmeter/platform";
import { type CliInvocationEvent } from "@flowmeter/shared";
import { childEntry, deleteQueuePrefix, freePort, openScratchDatabase, parentEntry, tempDir } from "@flowmeter/test-utils";
import * as workerPackage from "@flowmeter/worker";
import { cpuSeconds, machineDescription, peakRssBytes, rssBytes, startExpressHelloWorld } from "./bench-machine.js";
import { PREFILL_PREFIX, parseTakeover, prefill, type PrefillResult, type Takeover } from "./bench-prefill.js";
import { chooseRedis } from "flowmeter/redis-server";
import { SERVICE_ENTRY_POINTS } from "flowmeter/services";
import { waitHealthy as answersHealthy } from "flowmeter/wait-healthy";
import { benchRunner, type RunnerBenchResult } from "./bench-runner.js";

export const BENCH_USAGE = `usage: npm run bench [-- --help]   (once built: node packages/bench/dist/main.js)

Starts a private pipeline (its own chDB directory, queue prefix and ports) and prints throughput, freshness and the
runner's event rate; exits 1 if a phase was not exact. Environment: BENCH_SECONDS (15 per phase), BENCH_CONCURRENCY
(16), BENCH_BATCH_SIZE (100), BENCH_STEADY_ENTRIES_PER_SECOND (unset: searched), BENCH_STEP_START (5000),
BENCH_STEP_INCREMENT (5000), BENCH_STEP_SECONDS (8), BENCH_SOAK_SECONDS (0), BENCH_RUNNER_STAGES (400),
BENCH_RUNNER_FLOOD_RUNS (40), BENCH_PREFILL_ROWS (100000000; 0: no large-table phase), BENCH_PREFILL_MERGE_WAIT_SECONDS
(300), BENCH_CPU_PROFILE_DIR, REDIS_URL, LOG_LEVEL (warn, for the services).
`;

/** Entry ids in a template are this prefix plus a 3-digit entry index; each request swaps in ids of its own. */
const ID_SLOT = "00000000-0000-4000-8000-000000000";
const ID_SLOT_PATTERN = /00000000-0000-4000-8000-000000000(\d{3})/;

interface PhaseResult {
  name: string;
  seconds: number;
  acked: number;
  ackedPerSecond: number;
  visiblePerSecond: number;
  /** From the last request of the phase to the last acknowledged entry visible. */
  drainMs: number;
  freshnessP50Ms: number;
  freshnessP95Ms: number;
  errors: number;
  /** Rows visible equal entries acknowledged, and every rollup equals a GROUP BY over the raw table. */
  exact: boolean;
  /** ClickHouse inserts per second into cli_invocations during the phase (sending and draining). */
  insertsPerSecond: number;
  /** CPU µs per acknowledged entry, by process. */
  cpuMicrosPerEntry: { ingest: number; worker: number; redis: number };
}

const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

interface RunningWorker {
  child: ChildProcess;
  spawnedAt: number;
  /** The worker's "partition taken over" lines so far, with when each came. */
  takeovers: (Takeover & { sinceSpawnMs: number })[];
}

/** A worker's takeover of its partitions, summed over them. */
interface TakeoverFigures {
  storedIdsInHorizon: number;
  filterBytes: number;
  /** The slowest partition's rebuild of its filter (the line's ms). */
  rebuildMs: number;
  /** From spawning the worker to its last takeover line. */
  sinceSpawnMs: number;
  /** The worker's resident memory once it took over. */
  rssBytes: number;
}

interface LargeTable {
  prefill: PrefillResult;
  emptyTakeover: TakeoverFigures;
  takeover: TakeoverFigures;
  emptyWorkerPeakRss: number;
  /** Each phase on the empty table beside the same phase on the prefilled one. */
  pairs: [empty: PhaseResult, prefilled: PhaseResult][];
}

/** 100000000 → "100M", 2500000 → "2.5M", 50000 → "50k". */
function compactCount(count: number): string {
  if (count >= 1e9) return `${Number((count / 1e9).toFixed(1))}G`;
  if (count >= 1e6) return `${Number((count / 1e6).toFixed(1))}M`;
  if (count >= 1e3) return `${Number((count / 1e3).toFixed(1))}k`;
  return String(count);
}

/** The large-table section of the report: the prefill, the takeover, and each phase empty beside prefilled. */
function largeTableLines(large: LargeTable, horizonDays: number): string[] {
  const format = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "n/a");
  const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  const { prefill: filled, takeover, emptyTakeover } = large;
  const perMillion = takeover.storedIdsInHorizon === 0 ? Number.NaN : takeover.rebuildMs / (takeover.storedIdsInHorizon / 1e6);
  const lines = [
    "",
    `large table: ${format(filled.rows)} rows prefilled by INSERT … SELECT FROM numbers() in ${format(filled.seconds)} s ` +
      `(${format(filled.rows / filled.seconds)} rows/s, rollups through their views); ${format(filled.ids)} of them received within ` +
      `${horizonDays} days, their ids into cli_invocation_ids in ${filled.idsSeconds.toFixed(1)} s (migration 0024's statement)`,
    `  merges ${filled.mergesSettled ? "settled" : "still running"} ${format(filled.mergeSeconds)} s after the prefill; cli_invocations: ` +
      `${format(filled.activeParts)} active parts; flowmeter on disk: ${format(filled.bytesOnDisk / 1048576)} MiB`,
    `takeover (worker restarted on the prefilled table): ${format(takeover.storedIdsInHorizon)} ids in the horizon, filter ` +
      `${megabytes(takeover.filterBytes)} (${(takeover.filterBytes / Math.max(1, takeover.storedIdsInHorizon)).toFixed(2)} bytes per id), rebuilt in ` +
      `${format(takeover.rebuildMs)} ms (${format(perMillion)} ms per million ids); ${format(takeover.sinceSpawnMs)} ms from spawn; ` +
      `worker RSS then ${format(takeover.rssBytes / 1048576)} MiB`,
    `  on the empty table: ${format(emptyTakeover.storedIdsInHorizon)} ids, filter ${megabytes(emptyTakeover.filterBytes)}, ` +
      `${format(emptyTakeover.rebuildMs)} ms, ${format(emptyTakeover.sinceSpawnMs)} ms from spawn, RSS ${format(emptyTakeover.rssBytes / 1048576)} MiB`,
    "",
    `${"empty vs prefilled".padEnd(44)}     empty  prefilled  prefilled/empty`,
  ];
  for (const [empty, prefilled] of large.pairs) {
    const figures: [string, (result: PhaseResult) => number][] = [
      ["visible entries/s", (result) => result.visiblePerSecond],
      ["acked entries/s", (result) => result.ackedPerSecond],
      ["freshness p50 ms", (result) => result.freshnessP50Ms],
      ["freshness p95 ms", (result) => result.freshnessP95Ms],
      ["drain ms", (result) => result.drainMs],
      ["CPU µs/entry ingest", (result) => result.cpuMicrosPerEntry.ingest],
      ["CPU µs/entry worker", (result) => result.cpuMicrosPerEntry.worker],
      ["CPU µs/entry redis", (result) => result.cpuMicrosPerEntry.redis],
    ];
    for (const [label, figure] of figures) {
      const ratio = figure(prefilled) / figure(empty);
      lines.push(
        `${`${empty.name}  ${label}`.padEnd(44)} ${format(figure(empty)).padStart(9)} ${format(figure(prefilled)).padStart(10)} ` +
          `${(Number.isFinite(ratio) ? ratio.toFixed(2) : "n/a").padStart(16)}`,
      );
    }
  }
  return lines;
}

/**
 * Each rollup of cli_invocations beside the same GROUP BY over the raw table, over the bench's own entries: those
 * started since `since` (ClickHouse time text of a whole minute before the bench began; it only spares the reads of a
 * prefilled table) whose command, driver or workflow is not the prefill's.
 */
function rollupChecks(since: string): [rollup: string, raw: string][] {
  const own = (column: string) => `NOT startsWith(${column}, '${PREFILL_PREFIX}')`;
  const rollupSince = `minute >= '${since}'`;
  const rawSince = `started_at >= '${since}'`;
  return [
    [
      `SELECT minute, command, subcommand, status, sum(entries) FROM flowmeter.command_stats_1m WHERE ${rollupSince} AND ${own("command")} GROUP BY ALL HAVING sum(entries) > 0 ORDER BY ALL`,
      `SELECT toStartOfMinute(completed_at), command, subcommand, status, count() FROM flowmeter.cli_invocations FINAL WHERE ${rawSince} AND ${own("command")} GROUP BY ALL ORDER BY ALL`,
    ],
    [
      `SELECT minute, driver, status, sum(entries) FROM flowmeter.driver_stats_1m WHERE source = 'client' AND ${rollupSince} AND ${own("driver")} GROUP BY ALL HAVING sum(entries) > 0 ORDER BY ALL`,
      `SELECT toStartOfMinute(completed_at), driver, multiIf(status = 'success', 'succeeded', status = 'user_error', 'user_error', 'failed'), count() FROM flowmeter.cli_invocations FINAL WHERE is_child AND ${rawSince} AND ${own("driver")} GROUP BY ALL ORDER BY ALL`,
    ],
    [
      `SELECT minute, workflow, stage, driver, status, sum(entries) FROM flowmeter.stage_stats_1m WHERE workflow != '' AND ${rollupSince} AND ${own("workflow")} GROUP BY ALL HAVING sum(entries) > 0 ORDER BY ALL`,
      `SELECT toStartOfMinute(completed_at), workflow_name, step_name, driver, multiIf(status = 'success', 'succeeded', status = 'user_error', 'user_error', 'failed'), count() FROM flowmeter.cli_invocations FINAL WHERE is_child AND ${rawSince} AND ${own("workflow_name")} GROUP BY ALL ORDER BY ALL`,
    ],
  ];
}

/** A drained step: everything acknowledged is visible this soon after the step's last request. */
const DRAINED_WITHIN_MS = 2000;

const agent = new Agent({ keepAlive: true, maxSockets: 1024 });

/** POST with a keep-alive agent: fetch() costs the load generator several times more CPU per request, CPU the pipeline needs. */
function post(url: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      url,
      { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

/** Resolves once every URL answers 2xx (the CLI's check, as `flowmeter start` waits); throws after `timeoutMs`. */
async function waitHealthy(urls: readonly string[], timeoutMs: number, what: string): Promise<void> {
  if (!(await answersHealthy(urls, timeoutMs))) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
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
        : childEntry(entries[0]?.properties.id ?? id, {
            id,
            startedAt,
            driver: drivers[index % drivers.length] ?? "loopback",
            stepName: `step-${index % 7}`,
            status: index % 9 === 0 ? "error" : "success",
            durationMs: 50 + ((index * 7919) % 2000),
          }),
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
  const runnerStages = reader.int("BENCH_RUNNER_STAGES", 400, { min: 8, max: 10_000 });
  const floodRuns = reader.int("BENCH_RUNNER_FLOOD_RUNS", 40, { min: 1, max: 10_000 });
  const fixedSteadyRate =
    reader.optionalString("BENCH_STEADY_ENTRIES_PER_SECOND") === undefined
      ? undefined
      : reader.int("BENCH_STEADY_ENTRIES_PER_SECOND", 10_000, { min: 100, max: 1_000_000 });
  const stepStart = reader.int("BENCH_STEP_START", 5000, { min: 100, max: 1_000_000 });
  const stepIncrement = reader.int("BENCH_STEP_INCREMENT", 5000, { min: 100, max: 1_000_000 });
  const stepSeconds = reader.int("BENCH_STEP_SECONDS", 8, { min: 1, max: 600 });
  const soakSeconds = reader.int("BENCH_SOAK_SECONDS", 0, { min: 0, max: 86_400 });
  const profileDir = reader.optionalString("BENCH_CPU_PROFILE_DIR");
  const prefillRows = reader.int("BENCH_PREFILL_ROWS", 100_000_000, { min: 0, max: 10_000_000_000 });
  const prefillMergeWaitSeconds = reader.int("BENCH_PREFILL_MERGE_WAIT_SECONDS", 300, { min: 0, max: 86_400 });
  // The worker's own knobs, with its defaults: the ids the prefill writes and the takeover lines to wait for follow them.
  const horizonDays = reader.int("FLOWMETER_DEDUP_HORIZON_DAYS", 8, { min: 1, max: 366 });
  const partitions = reader.int("FLOWMETER_PARTITIONS", 1, { min: 1, max: 64 });
  const serviceLogLevel = reader.oneOf("LOG_LEVEL", LOG_LEVELS, "warn");
  reader.finish(undefined);
  // A whole minute before the bench's first entry: the exactness checks read the bench's own entries from here on.
  const since = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000).toISOString().slice(0, 19).replace("T", " ");
  const logger = createLogger("bench", "info");
  const nodeFlags = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];

  const data = tempDir("bench");
  // Found as `flowmeter start` finds it: REDIS_URL, else 127.0.0.1:6379, else a private redis-server it launches there.
  const redis = await chooseRedis(env["REDIS_URL"], data.path, logger);
  const redisClient = new Redis(redis.url);
  const redisInfo = await redisClient.info("server");
  const redisPid = Number(/process_id:(\d+)/.exec(redisInfo)?.[1]);
  const redisVersion = /redis_version:([^\r\n]+)/.exec(redisInfo)?.[1] ?? "unknown";
  const prefix = `fmtest-bench-${randomBytes(4).toString("hex")}`;
  const [ingestPort, workerPort, expressPort] = [await freePort(), await freePort(), await freePort()];
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
    LOG_LEVEL: serviceLogLevel,
  };
  const migrated = spawnSync(process.execPath, [SERVICE_ENTRY_POINTS.migrate()], { env: serviceEnv, stdio: "inherit" });
  if (migrated.status !== 0) return 1;
  /**
   * The worker logs at info at least, so that its "partition taken over" lines (partition-writer.ts) are read here;
   * every other line is passed on at the services' LOG_LEVEL.
   */
  function startWorker(): RunningWorker {
    const workerLogLevel = LOG_LEVELS.indexOf(serviceLogLevel) < LOG_LEVELS.indexOf("info") ? serviceLogLevel : "info";
    const child = spawn(process.execPath, [...nodeFlags, SERVICE_ENTRY_POINTS.worker()], {
      env: { ...serviceEnv, LOG_LEVEL: workerLogLevel },
      stdio: ["ignore", "inherit", "pipe"],
    });
    const running: RunningWorker = { child, spawnedAt: performance.now(), takeovers: [] };
    createInterface({ input: child.stderr }).on("line", (line) => {
      const takeover = parseTakeover(line);
      if (takeover !== undefined) running.takeovers.push({ ...takeover, sinceSpawnMs: performance.now() - running.spawnedAt });
      const level = LOG_LEVELS.indexOf(line.split(" ")[1] as LogLevel);
      if (level === -1 || level >= LOG_LEVELS.indexOf(serviceLogLevel)) process.stderr.write(`${line}\n`);
    });
    return running;
  }
  /** Resolves with the worker's takeover once it has taken over every partition and answers /healthz. */
  async function takenOver(running: RunningWorker): Promise<TakeoverFigures> {
    const deadline = performance.now() + 3_600_000;
    while (running.takeovers.length < partitions) {
      if (running.child.exitCode !== null || running.child.signalCode !== null) throw new Error("the worker exited before it took its partitions over");
      if (performance.now() > deadline) throw new Error("the worker took an hour without taking its partitions over");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await waitHealthy([`${workerUrl}/healthz`], 60_000, "the worker to become healthy");
    return {
      storedIdsInHorizon: running.takeovers.reduce((sum, takeover) => sum + takeover.storedIdsInHorizon, 0),
      filterBytes: running.takeovers.reduce((sum, takeover) => sum + takeover.filterBytes, 0),
      rebuildMs: Math.max(...running.takeovers.map((takeover) => takeover.ms)),
      sinceSpawnMs: Math.max(...running.takeovers.map((takeover) => takeover.sinceSpawnMs)),
      rssBytes: rssBytes(running.child.pid),
    };
  }
  async function stop(service: ChildProcess): Promise<void> {
    if (service.exitCode !== null || service.signalCode !== null) return;
    const exited = new Promise((resolve) => service.once("exit", resolve));
    service.kill("SIGTERM");
    await exited;
  }

  let worker = startWorker();
  const ingest = spawn(process.execPath, [...nodeFlags, SERVICE_ENTRY_POINTS.ingest()], { env: serviceEnv, stdio: "inherit" });
  const ingestUrl = `http://127.0.0.1:${ingestPort}`;
  const workerUrl = `http://127.0.0.1:${workerPort}`;
  await waitHealthy([`${ingestUrl}/healthz`, `${workerUrl}/healthz`], 60_000, "ingest and the worker to become healthy");
  const emptyTakeover = await takenOver(worker);

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
  const inserts = async (): Promise<number> => {
    const text = await fetch(`${workerUrl}/metrics`).then((response) => response.text());
    // The histogram has no series before its first insert.
    return Number(/^flowmeter_worker_insert_duration_seconds_count\{table="cli_invocations"\} (\d+)/m.exec(text)?.[1] ?? 0);
  };
  const cpu = () => ({ ingest: cpuSeconds(ingest.pid), worker: cpuSeconds(worker.child.pid), redis: cpuSeconds(redisPid) });
  let acknowledged = 0;
  const exact = async (): Promise<boolean> => {
    const [rows, unique] = (
      await query(
        `SELECT count(), uniqExact(insert_id) FROM flowmeter.cli_invocations WHERE started_at >= '${since}' AND NOT startsWith(command, '${PREFILL_PREFIX}')`,
      )
    )
      .split("\t")
      .map(Number);
    if (rows !== acknowledged || unique !== acknowledged) {
      logger.error("rows visible differ from entries acknowledged", { visible: rows, unique, acknowledged });
      return false;
    }
    for (const [rollup, raw] of rollupChecks(since)) {
      if ((await query(rollup)) !== (await query(raw))) {
        logger.error("a rollup differs from GROUP BY over the raw table", { rollup });
        return false;
      }
    }
    return true;
  };

  /**
   * `entriesPerSecond` paces the senders to an offered load; undefined sends as fast as the pipeline answers.
   * `alongside` runs in a loop for the phase's duration (the heavy /query load of the "+ heavy query" phase).
   */
  async function runPhase(
    name: string,
    entriesPerRequest: number,
    phaseSeconds: number,
    entriesPerSecond?: number,
    alongside?: () => Promise<unknown>,
  ): Promise<PhaseResult> {
    const runTag = `${name}-${randomBytes(3).toString("hex")}`;
    const parts = requestTemplate(entriesPerRequest, new Date());
    const rowsBefore = await storedRows();
    const insertsBefore = await inserts();
    const cpuBefore = cpu();
    const startedAt = performance.now();
    const deadline = startedAt + phaseSeconds * 1000;
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
        const seen = await query(
          `SELECT DISTINCT command FROM flowmeter.command_stats WHERE minute >= '${probeMinute}' AND startsWith(command, 'probe-${runTag}-')`,
        ).catch(() => "");
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
    const sentAt = performance.now();
    const sendSeconds = (sentAt - startedAt) / 1000;
    acknowledged += acked + probeAcked.size;
    const expected = rowsBefore + acked + probeAcked.size;
    let visibleAt = performance.now();
    for (let stored = await storedRows(); stored < expected; stored = await storedRows()) {
      if (performance.now() - visibleAt > 300_000)
        throw new Error(`only ${stored - rowsBefore} of ${expected - rowsBefore} acknowledged entries became visible`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    visibleAt = performance.now();
    const cpuAfter = cpu();
    const insertsAfter = await inserts();
    await backgroundDone;
    await new Promise((resolve) => setTimeout(resolve, 500));
    polling = false;
    await polled;

    const freshness = [...probeAcked].map(([command, ackedAt]) => (probeVisible.get(command) ?? visibleAt) - ackedAt).sort((a, b) => a - b);
    const perEntry = (before: number, after: number) => ((after - before) * 1e6) / Math.max(1, acked);
    const result: PhaseResult = {
      name,
      seconds: sendSeconds,
      acked,
      ackedPerSecond: acked / sendSeconds,
      visiblePerSecond: acked / ((visibleAt - startedAt) / 1000),
      drainMs: visibleAt - sentAt,
      freshnessP50Ms: quantile(freshness, 0.5),
      freshnessP95Ms: quantile(freshness, 0.95),
      errors,
      exact: await exact(),
      insertsPerSecond: (insertsAfter - insertsBefore) / ((visibleAt - startedAt) / 1000),
      cpuMicrosPerEntry: {
        ingest: perEntry(cpuBefore.ingest, cpuAfter.ingest),
        worker: perEntry(cpuBefore.worker, cpuAfter.worker),
        redis: perEntry(cpuBefore.redis, cpuAfter.redis),
      },
    };
    logger.info("phase done", { phase: name, acked, errors, drain_ms: Math.round(result.drainMs), exact: result.exact });
    return result;
  }

  /** Requests/s of a bare express hello-world, driven like the single phase. */
  async function expressRequestsPerSecond(): Promise<number> {
    const server = startExpressHelloWorld(expressPort);
    try {
      await waitHealthy([`http://127.0.0.1:${expressPort}/healthz`], 30_000, "the express hello-world to start");
      const body = fillTemplate(requestTemplate(1, new Date()), "express", 1);
      const startedAt = performance.now();
      const deadline = startedAt + seconds * 1000;
      let answered = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < deadline)
            if ((await post(`http://127.0.0.1:${expressPort}/ingest`, body).catch(() => undefined))?.status === 202) answered += 1;
        }),
      );
      return answered / ((performance.now() - startedAt) / 1000);
    } finally {
      server.kill("SIGTERM");
      await new Promise((resolve) => server.once("exit", resolve));
    }
  }

  const results: PhaseResult[] = [];
  const steps: PhaseResult[] = [];
  let expressPerSecond = Number.NaN;
  let sustainableRate = fixedSteadyRate ?? 0;
  let soak: { seconds: number } | undefined;
  let runner: RunnerBenchResult;
  let peakRss = { ingest: Number.NaN, worker: Number.NaN };
  let largeTable: LargeTable | undefined;
  try {
    results.push(await runPhase(`batched-${batchSize}`, batchSize, seconds));
    results.push(await runPhase("single", 1, seconds));
    expressPerSecond = await expressRequestsPerSecond();
    if (fixedSteadyRate === undefined) {
      for (let rate = stepStart; ; rate += stepIncrement) {
        const step = await runPhase(`step-${rate}/s`, batchSize, stepSeconds, rate);
        steps.push(step);
        if (step.drainMs > DRAINED_WITHIN_MS || step.ackedPerSecond < 0.95 * rate) break;
        sustainableRate = rate;
      }
    }
    const steadyRate = fixedSteadyRate ?? Math.max(stepStart / 2, Math.round((0.8 * sustainableRate) / 100) * 100);
    results.push(await runPhase(`steady-${steadyRate}/s`, batchSize, seconds, steadyRate));
    // The same offered load while /query runs 5-second full scans back to back.
    results.push(
      await runPhase(`steady+heavy query`, batchSize, seconds, steadyRate, () =>
        post(`${workerUrl}/query`, "SELECT count() FROM numbers(5e9) WHERE number % 7 = 3").catch(() => undefined),
      ),
    );
    if (soakSeconds > 0) {
      results.push(await runPhase(`soak-${steadyRate}/s`, batchSize, soakSeconds, steadyRate));
      soak = { seconds: soakSeconds };
    }
    if (prefillRows > 0) {
      // One process per chDB directory: the worker lets go of it (draining what it holds) while the bench prefills it.
      const emptyWorkerPeakRss = peakRssBytes(worker.child.pid);
      await stop(worker.child);
      const database = await workerPackage.createClickHouse({ url: undefined, dataDir: `${data.path}/clickhouse` });
      let filled: PrefillResult;
      try {
        filled = await prefill(database, {
          rows: prefillRows,
          horizonDays,
          mergeWaitSeconds: prefillMergeWaitSeconds,
          nowMs: Date.now(),
          progress: (line) => logger.info(line),
        });
      } finally {
        await database.close();
      }
      worker = startWorker();
      const takeover = await takenOver(worker);
      logger.info("worker took the prefilled table over", {
        stored_ids_in_horizon: takeover.storedIdsInHorizon,
        filter_bytes: takeover.filterBytes,
        rebuild_ms: takeover.rebuildMs,
        since_spawn_ms: Math.round(takeover.sinceSpawnMs),
      });
      const suffix = ` +${compactCount(prefillRows)}`;
      const batchedPrefilled = await runPhase(`batched-${batchSize}${suffix}`, batchSize, seconds);
      const steadyPrefilled = await runPhase(`steady-${steadyRate}/s${suffix}`, batchSize, seconds, steadyRate);
      results.push(batchedPrefilled, steadyPrefilled);
      largeTable = {
        prefill: filled,
        emptyTakeover,
        takeover,
        emptyWorkerPeakRss,
        pairs: [
          [results[0], batchedPrefilled],
          [results[2], steadyPrefilled],
        ].filter((pair): pair is [PhaseResult, PhaseResult] => pair[0] !== undefined),
      };
    }
    runner = await benchRunner({
      redisUrl: redis.url,
      prefix,
      dataDir: data.path,
      stages: runnerStages,
      floodRuns,
      countStored: async (runId) => Number(await query(`SELECT count() FROM flowmeter.run_events WHERE run_id = '${runId}'`)),
      countAllStored: async () => Number(await query("SELECT count() FROM flowmeter.run_events")),
    });
  } finally {
    agent.destroy();
    peakRss = { ingest: peakRssBytes(ingest.pid), worker: peakRssBytes(worker.child.pid) };
    await stop(ingest);
    await stop(worker.child);
  }

  // The worker has let go of its directory: read the parts it left, then measure the ceiling in a fresh one.
  const stored = await workerPackage.createClickHouse({ url: undefined, dataDir: `${data.path}/clickhouse` });
  const maxParts = Number(
    (
      await (
        await stored.query({
          query:
            "SELECT max(parts) AS parts FROM (SELECT count() AS parts FROM system.parts WHERE active AND database = 'flowmeter' GROUP BY table, partition)",
          format: "JSONEachRow",
        })
      ).json<{ parts: string }>()
    )[0]?.parts,
  );
  const chdbPackage = JSON.parse(readFileSync(join(dirname(createRequire(SERVICE_ENTRY_POINTS.worker()).resolve("chdb")), "package.json"), "utf8")) as {
    version: string;
  };
  const [engine] = await (await stored.query({ query: "SELECT version() AS version", format: "JSONEachRow" })).json<{ version: string }>();
  const chdbVersion = `${chdbPackage.version} (engine ${engine?.version ?? "unknown"})`;
  await stored.close();

  const ceiling = await openScratchDatabase("bench-ceiling", workerPackage);
  const parts = requestTemplate(batchSize, new Date());
  const ceilingRows = Math.max(200_000, Math.min(1_000_000, results[0]?.acked ?? 0));
  const events: CliInvocationEvent[] = [];
  for (let sequence = 0; events.length < ceilingRows; sequence += 1) {
    events.push(...(JSON.parse(fillTemplate(parts, "ceiling", sequence)) as { events: CliInvocationEvent[] }).events);
  }
  const receivedAt = workerPackage.toClickHouseTime(Date.now());
  const rows = events.map((event) => workerPackage.toRow(event, receivedAt));
  const blocks = [];
  for (let offset = 0; offset < rows.length; offset += 50_000)
    blocks.push(workerPackage.toBlock("flowmeter.cli_invocations", workerPackage.CLI_INVOCATION_COLUMNS, rows.slice(offset, offset + 50_000)));
  let ceilingStarted = performance.now();
  for (const block of blocks) await ceiling.writer.insert(block);
  const ceilingPerSecond = rows.length / ((performance.now() - ceilingStarted) / 1000);
  await ceiling.rows("TRUNCATE TABLE flowmeter.cli_invocations");
  ceilingStarted = performance.now();
  for (let offset = 0; offset < rows.length; offset += 50_000)
    await workerPackage.insertBlockThroughClient(
      ceiling.clickhouse,
      workerPackage.toBlock("flowmeter.cli_invocations", workerPackage.CLI_INVOCATION_COLUMNS, rows.slice(offset, offset + 50_000)),
    );
  const clientCeilingPerSecond = rows.length / ((performance.now() - ceilingStarted) / 1000);
  await ceiling.close();

  await deleteQueuePrefix(prefix, redis.url).catch(() => undefined);
  redisClient.disconnect();
  if (redis.process !== undefined && redis.process.exitCode === null) {
    const exited = new Promise((resolve) => redis.process?.once("exit", resolve));
    redis.process.kill("SIGTERM");
    await exited;
  }
  data.remove();

  const format = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "n/a");
  const mib = (bytes: number) => `${format(bytes / 1048576)} MiB`;
  const percent = (part: number, whole: number) => `${((part / whole) * 100).toFixed(1)} %`;
  const row = (result: PhaseResult) =>
    [
      result.name.padEnd(21),
      format(result.ackedPerSecond).padStart(8),
      format(result.visiblePerSecond).padStart(8),
      `${format(result.drainMs)} ms`.padStart(10),
      `${format(result.freshnessP50Ms)} ms`.padStart(10),
      `${format(result.freshnessP95Ms)} ms`.padStart(10),
      result.insertsPerSecond.toFixed(2).padStart(9),
      `${format(result.cpuMicrosPerEntry.ingest)}/${format(result.cpuMicrosPerEntry.worker)}/${format(result.cpuMicrosPerEntry.redis)}`.padStart(15),
      (result.exact ? "yes" : "NO").padStart(6),
      String(result.errors).padStart(7),
    ].join(" ");
  const batched = results[0];
  const single = results[1];
  const steady = results[2];
  const lines = [
    "",
    `flowmeter bench: ${machineDescription(chdbVersion, redisVersion)}`,
    `${seconds} s per phase, ${concurrency} requests in flight, ${batchSize} entries per batched request, embedded chDB, Redis ${redis.url}`,
    "",
    "phase                    acked  visible      drain   fresh p50   fresh p95  ins/s CH  CPU µs/entry   exact  errors",
    "                     entries/s entries/s                                              ingest/worker/redis",
    ...results.slice(0, 2).map(row),
    ...steps.map(row),
    ...results.slice(2).map(row),
    "",
    `sustainable rate (highest step drained within ${DRAINED_WITHIN_MS} ms of its end): ${fixedSteadyRate === undefined ? `${format(sustainableRate)} entries/s` : `not searched (BENCH_STEADY_ENTRIES_PER_SECOND=${fixedSteadyRate})`}`,
    `ceiling, engine: the same rows as bytes through chDB's raw insert into cli_invocations (+ rollup views), nothing else running: ${format(ceilingPerSecond)} rows/s (${format(rows.length)} rows)`,
    `ceiling, client: the same rows through @clickhouse/client over chdb/connection: ${format(clientCeilingPerSecond)} rows/s`,
    `one entry per request: ingest ${format(single?.ackedPerSecond ?? Number.NaN)} requests/s, a bare express 5 hello-world ${format(expressPerSecond)} requests/s (${percent(single?.ackedPerSecond ?? Number.NaN, expressPerSecond)})`,
    `ClickHouse: at most ${maxParts} active parts in a partition of any flowmeter table after the run`,
    `peak RSS: ingest ${mib(peakRss.ingest)}, worker ${largeTable === undefined ? mib(peakRss.worker) : `${mib(largeTable.emptyWorkerPeakRss)} (empty table), ${mib(peakRss.worker)} (restarted on the prefilled table)`}${soak === undefined ? " (no soak: BENCH_SOAK_SECONDS=0)" : ` (after a ${soak.seconds} s soak)`}`,
    ...(largeTable === undefined ? ["", "large table: skipped (BENCH_PREFILL_ROWS=0)"] : largeTableLines(largeTable, horizonDays)),
    "",
    `runner (startRunner): ${runner.stages} short stages (sh -c true, 8 at a time) in ${runner.runSeconds.toFixed(1)} s, ${runner.events} events`,
    `  event emission on the stage path: ${runner.emitMicrosPerStage.toFixed(1)} µs per stage`,
    `  events/s emitted: ${format(runner.eventsPerSecond)}; visible in run_events: ${format(runner.visiblePerSecond)}`,
    `  the same events re-sent as ${runner.flood.runs} runs (${format(runner.flood.events)} events): ${format(runner.flood.visiblePerSecond)} events/s visible in run_events`,
    `  delivery (off the stage path, batches of up to 500): ${runner.flood.deliverMicrosPerEvent.toFixed(1)} µs wall time per event`,
    "",
    "targets (issue #10, 2 cores):",
    `  batched >= 50,000 entries/s visible and >= 50 % of the engine ceiling: ${format(batched?.visiblePerSecond ?? Number.NaN)} (${percent(batched?.visiblePerSecond ?? Number.NaN, ceilingPerSecond)})`,
    `  one entry per request >= 40 % of express hello-world requests/s: ${percent(single?.ackedPerSecond ?? Number.NaN, expressPerSecond)}`,
    `  freshness p95 <= 2,000 ms at 80 % of the sustainable rate: ${format(steady?.freshnessP95Ms ?? Number.NaN)} ms${largeTable?.pairs[1] === undefined ? "" : `; ${format(largeTable.pairs[1][1].freshnessP95Ms)} ms on the prefilled table`}`,
    `  runner events >= 5,000 events/s visible: ${format(runner.flood.visiblePerSecond)} (delivery path), ${format(runner.visiblePerSecond)} (real stages)`,
    `  <= 2 inserts per table per second: max ${Math.max(...[...results, ...steps].map((result) => result.insertsPerSecond)).toFixed(2)} into cli_invocations`,
    `  every phase exact (visible = acknowledged, rollups = GROUP BY raw): ${[...results, ...steps].every((result) => result.exact) ? "yes" : "NO"}`,
    "",
  ];
  process.stdout.write(lines.join("\n"));
  return [...results, ...steps].every((result) => result.exact) ? 0 : 1;
}

export const benchInternals = { requestTemplate, fillTemplate };
