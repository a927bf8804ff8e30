/**
 * The Grafana dashboards of infra/grafana/dashboards, checked against the real schema:
 *
 * - Every ClickHouse panel query and variable query is expanded the way the official ClickHouse plugin does it
 *   (frontend: `$__conditionalAll`, then template variables; backend: the time macros), then run on chDB migrated by
 *   the production migrator and seeded through the raw tables, so the materialized views fill the rollups. Each
 *   must return rows with the columns declared below, with every variable on "All" and with values picked.
 *   An unknown `$__` macro, an unknown variable or an unsupported variable format fails the test.
 * - Prometheus panels and alert rules may only use metric names the services register (read from the services'
 *   own metric factories), and only the job names of infra/prometheus/prometheus.yml; promtool parses every
 *   dashboard expression.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import type { ClickHouseClient } from "@clickhouse/client";
import { createLogger } from "@flowmeter/platform";
import { RUN_EVENT_V2_NAMES, type RunEventType } from "@flowmeter/shared";
import { createIngestMetrics } from "@flowmeter/ingest";
import { BUILT_IN_DRIVER_NAMES, createRunnerMetrics } from "@flowmeter/runner";
import {
  CLI_INVOCATION_COLUMNS,
  createClickHouse,
  createWorkerMetrics,
  insertBlockThroughClient,
  toBlock,
  migrate,
  toClickHouseTime,
  toRow,
  type RunEventRow,
} from "@flowmeter/worker";
import { childEntry, legacyEntry, parentEntry, tempDir } from "@flowmeter/test-utils";
import { INFRA_DIR, checkTools, toolPath } from "./ops-test-support.js";

// ---------------------------------------------------------------------------------------------------------------
// Dashboard model (the parts this test reads)
// ---------------------------------------------------------------------------------------------------------------

interface DatasourceRef {
  type: string;
  uid: string;
}

interface Target {
  refId: string;
  datasource?: DatasourceRef;
  editorType?: string;
  queryType?: string;
  format?: number;
  rawSql?: string;
  expr?: string;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: DatasourceRef;
  interval?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
}

interface Variable {
  name: string;
  type: string;
  datasource?: DatasourceRef;
  query: string;
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string | null;
}

interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

const DASHBOARD_DIR = join(INFRA_DIR, "grafana/dashboards");
const CLICKHOUSE_TYPE = "grafana-clickhouse-datasource";
const PROMETHEUS_TYPE = "prometheus";

function loadDashboards(): { file: string; dashboard: Dashboard }[] {
  return readdirSync(DASHBOARD_DIR)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(DASHBOARD_DIR, file), "utf8")) as Dashboard }));
}

function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

function panelsOf(dashboard: Dashboard, type: string): Panel[] {
  return allPanels(dashboard.panels).filter((panel) => panel.datasource?.type === type);
}

// ---------------------------------------------------------------------------------------------------------------
// Expected result columns of every ClickHouse panel, by dashboard uid and panel title. A new panel needs a line.
// ---------------------------------------------------------------------------------------------------------------

const EXPECTED_COLUMNS: Record<string, Record<string, string[]>> = {
  "flowmeter-drivers": {
    "Stages ended per minute, by source and driver": ["time", "source", "driver", "per_minute"],
    "Error rate, by source and driver": ["time", "source", "driver", "error_rate"],
    "Outcomes per minute, client vs runner": ["time", "source", "status", "per_minute"],
    "p90 duration, by source and driver": ["time", "source", "driver", "p90_ms"],
    "p50 / p90 / p99 duration, client vs runner": ["time", "source", "p50_ms", "p90_ms", "p99_ms"],
    "Drivers over the selected range, client vs runner": [
      "driver",
      "source",
      "ended",
      "errors",
      "user_errors",
      "cancelled",
      "skipped",
      "error_rate",
      "p50_ms",
      "p90_ms",
      "p99_ms",
    ],
  },
  "flowmeter-stages": {
    "Stage outcomes per minute": ["time", "status", "per_minute"],
    "Retries per minute, by workflow": ["time", "workflow", "retries_per_minute"],
    "Stage duration p50 / p90 / p99": ["time", "p50_ms", "p90_ms", "p99_ms"],
    "p90 stage duration, by workflow": ["time", "workflow", "p90_ms"],
    "Slowest stages (by p90)": ["workflow", "stage", "ended", "failed", "retries", "p50_ms", "p90_ms", "p99_ms"],
    "Outcomes by stage": ["workflow", "stage", "ended", "succeeded", "failed", "user_errors", "cancelled", "skipped", "retries", "failure_rate"],
  },
  "flowmeter-commands": {
    "Invocations per minute, by command": ["time", "command_line", "per_minute"],
    "Error rate, by command": ["time", "command", "error_rate", "user_error_rate"],
    "p90 duration, by command": ["time", "command_line", "p90_ms"],
    "Errors per minute, by command and error type": ["time", "command_error", "per_minute"],
    "Commands over the selected range": [
      "command",
      "subcommand",
      "invocations",
      "succeeded",
      "errors",
      "user_errors",
      "error_rate",
      "p50_ms",
      "p90_ms",
      "p99_ms",
    ],
  },
  "flowmeter-runs": {
    "Runs started and ended per minute": ["time", "started", "succeeded", "failed", "cancelled"],
    "Recent runs": [
      "run_id",
      "workflow",
      "first_event",
      "last_event",
      "state",
      "duration_s",
      "stages_succeeded",
      "stages_failed",
      "stages_cancelled",
      "stages_skipped",
      "retries",
      "attempts",
    ],
    "Stages of recent runs": ["ts", "run_id", "workflow", "stage", "driver", "attempt", "outcome", "duration_ms", "exit_code", "error"],
    "Stage output (logs)": ["ts", "run_id", "stage", "attempt", "stream", "line"],
    "Host RSS, top 10 runs by peak": ["time", "run_id", "rss_bytes"],
    "Host CPU, top 10 runs by peak": ["time", "run_id", "cpu_percent"],
    "Storage IO of runs (deltas of cumulative counters)": ["time", "read_bytes_per_second", "write_bytes_per_second"],
    "Stages without output (stagnant heartbeats)": ["time", "stagnant", "quiet"],
    "Running and recent stage attempts (last heartbeat)": [
      "run_id",
      "stage",
      "attempt",
      "last_heartbeat",
      "output_state",
      "stagnant_heartbeats",
      "elapsed_secs",
      "stdout_bytes",
      "stderr_bytes",
      "pid_alive",
    ],
  },
  "flowmeter-pipeline": {
    "Ingestion warnings": ["received_at", "reason", "source", "entry_id", "distinct_id", "detail", "excerpt"],
  },
};

/** Values picked in the "selected" pass, per variable name; each must be offered by the variable's query. */
const SELECTED_VALUES: Record<string, string[]> = {
  workflow: ["deploy"],
  driver: ["shell", "node"],
  command: ["model"],
};

// ---------------------------------------------------------------------------------------------------------------
// Macro expansion, as the Grafana ClickHouse plugin does it (src/data/CHDatasource.ts, pkg/macros/macros.go)
// ---------------------------------------------------------------------------------------------------------------

type VariableValue = { all: true; options: string[] } | { all: false; values: string[] };

interface QueryContext {
  fromMs: number;
  toMs: number;
  /** The panel's interval in seconds: max(its min interval, range / max data points). */
  intervalSeconds: number;
}

/** Arguments of the macro whose `(` is at `open`, split on top-level commas; `end` is the index after its `)`. */
function macroArgs(sql: string, open: number): { args: string[]; end: number } {
  const args: string[] = [];
  let depth = 0;
  let start = open + 1;
  for (let index = open; index < sql.length; index++) {
    const char = sql[index];
    if (char === "(") depth++;
    else if (char === ")") {
      depth--;
      if (depth === 0) {
        args.push(sql.slice(start, index));
        return { args, end: index + 1 };
      }
    } else if (char === "," && depth === 1) {
      args.push(sql.slice(start, index));
      start = index + 1;
    }
  }
  throw new Error(`unbalanced parentheses after ${sql.slice(0, open)}`);
}

/** Frontend: `$__conditionalAll(condition, $var)` becomes `1=1` when $var is All (or empty), else the condition. */
function applyConditionalAll(sql: string, variables: ReadonlyMap<string, VariableValue>): string {
  const macro = "$__conditionalAll(";
  let at = sql.lastIndexOf(macro);
  while (at !== -1) {
    const { args, end } = macroArgs(sql, at + macro.length - 1);
    if (args.length !== 2) throw new Error(`$__conditionalAll takes 2 arguments, got ${args.length}`);
    const name = /^\$\{?(\w+)/.exec((args[1] ?? "").trim())?.[1];
    const value = name === undefined ? undefined : variables.get(name);
    if (value === undefined) throw new Error(`$__conditionalAll names an unknown variable: ${args[1] ?? ""}`);
    const isAll = value.all || value.values.length === 0;
    sql = sql.slice(0, at) + (isAll ? "1=1" : (args[0] ?? "")) + sql.slice(end);
    at = sql.lastIndexOf(macro);
  }
  return sql;
}

/** Frontend: template variables. Multi-value variables are arrays, so the plugin's formatter quotes them. */
function interpolateVariables(sql: string, variables: ReadonlyMap<string, VariableValue>): string {
  return sql.replace(/\$\{(\w+)(?::(\w+))?\}|\$(\w+)/g, (match, braced: string | undefined, format: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? "";
    if (name.startsWith("__")) return match; // plugin macros and Grafana globals: the backend step's business
    const value = variables.get(name);
    if (value === undefined) throw new Error(`unknown template variable $${name}`);
    const values = value.all ? value.options : value.values;
    switch (format) {
      case undefined: // CHDatasource.format(): an array becomes 'a','b'
        return `'${values.join("','")}'`;
      case "singlequote":
        return values.map((item) => `'${item.replace(/'/g, "\\'")}'`).join(",");
      default:
        throw new Error(`variable format :${format} is not supported by this test's expander; add it or use :singlequote`);
    }
  });
}

const BACKEND_MACROS: Record<string, { arity: number; expand: (args: string[], context: QueryContext) => string }> = {
  timeFilter: {
    arity: 1,
    expand: ([column], c) => `${column} >= toDateTime(${Math.floor(c.fromMs / 1000)}) AND ${column} <= toDateTime(${Math.floor(c.toMs / 1000)})`,
  },
  timeFilter_ms: {
    arity: 1,
    expand: ([column], c) => `${column} >= fromUnixTimestamp64Milli(${c.fromMs}) AND ${column} <= fromUnixTimestamp64Milli(${c.toMs})`,
  },
  timeInterval: { arity: 1, expand: ([column], c) => `toStartOfInterval(toDateTime(${column}), INTERVAL ${c.intervalSeconds} second)` },
  interval_s: { arity: 0, expand: (_args, c) => String(c.intervalSeconds) },
  fromTime: { arity: 0, expand: (_args, c) => `toDateTime(${Math.floor(c.fromMs / 1000)})` },
  toTime: { arity: 0, expand: (_args, c) => `toDateTime(${Math.floor(c.toMs / 1000)})` },
};

/** Backend (sqlds): `$__name(args)` macros. Anything else starting with `$__` is an error. */
function applyBackendMacros(sql: string, context: QueryContext): string {
  for (;;) {
    const match = /\$__(\w+)/.exec(sql);
    if (match === null) return sql;
    const name = match[1] ?? "";
    const macro = BACKEND_MACROS[name];
    if (macro === undefined)
      throw new Error(
        `unknown macro $__${name}: the test's expander covers ${Object.keys(BACKEND_MACROS)
          .map((key) => `$__${key}`)
          .join(", ")}`,
      );
    const afterName = match.index + match[0].length;
    let args: string[] = [];
    let end = afterName;
    if (sql[afterName] === "(") ({ args, end } = macroArgs(sql, afterName));
    args = args.map((arg) => arg.trim()).filter((arg) => arg !== "");
    if (args.length !== macro.arity) throw new Error(`$__${name} takes ${macro.arity} argument(s), got ${args.length}`);
    sql = sql.slice(0, match.index) + macro.expand(args, context) + sql.slice(end);
  }
}

function expandQuery(sql: string, variables: ReadonlyMap<string, VariableValue>, context: QueryContext): string {
  const expanded = applyBackendMacros(interpolateVariables(applyConditionalAll(sql, variables), variables), context);
  if (expanded.includes("$")) throw new Error(`left unexpanded: ${expanded}`);
  return expanded;
}

function durationSeconds(text: string | undefined): number {
  if (text === undefined) return 1;
  const match = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!match) throw new Error(`unsupported interval ${text}`);
  const value = Number(match[1]);
  return { ms: value / 1000, s: value, m: value * 60, h: value * 3600 }[match[2] as "ms" | "s" | "m" | "h"];
}

// ---------------------------------------------------------------------------------------------------------------
// Seed data: client entries through the worker's own mapper, runner events and samples as the worker stores them
// ---------------------------------------------------------------------------------------------------------------

const MINUTE = 60_000;

interface SeededRun {
  runId: string;
  attemptId: string;
  workflow: string;
  startMs: number;
  state: "succeeded" | "failed" | "running";
}

function runEvents(
  run: SeededRun,
  steps: {
    at: number;
    type: RunEventType;
    stage?: string;
    driver?: string;
    attempt?: number;
    outcome?: RunEventRow["stage_outcome"];
    durationMs?: number;
    exitCode?: number;
    error?: string;
  }[],
): RunEventRow[] {
  return steps.map((step, seq) => ({
    event_id: randomUUID(),
    run_id: run.runId,
    attempt_id: run.attemptId,
    seq,
    ts: toClickHouseTime(run.startMs + step.at),
    received_at: toClickHouseTime(run.startMs + step.at + 50),
    level: step.type === "stage.failed" || step.type === "run.failed" ? "error" : "info",
    event_type: step.type,
    event_type_v2: RUN_EVENT_V2_NAMES[step.type],
    message: step.type,
    workflow: run.workflow,
    stage_name: step.stage ?? "",
    group_id: step.stage === undefined ? "" : "g0",
    driver: step.driver ?? "",
    stage_attempt: step.attempt ?? 0,
    stage_outcome: step.outcome ?? "",
    duration_ms: step.durationMs ?? 0,
    exit_code: step.exitCode ?? null,
    error: step.error ?? "",
    payload: JSON.stringify({ workflow: run.workflow, driver: step.driver }),
  }));
}

const SAMPLES_PER_RUN = 18;
const IO_READ_STEP = 1000;
const IO_WRITE_STEP = 500;

function hostSamples(run: SeededRun): Record<string, unknown>[] {
  return Array.from({ length: SAMPLES_PER_RUN }, (_, index) => ({
    run_id: run.runId,
    attempt_id: run.attemptId,
    seq: index + 1,
    kind: "host",
    ts: toClickHouseTime(run.startMs + index * 10_000),
    received_at: toClickHouseTime(run.startMs + index * 10_000 + 100),
    stage_name: "build",
    group_id: "",
    stage_attempt: 0,
    rss_bytes: 100_000_000 + index * 1_000_000,
    cpu_percent: 10 + index,
    // cumulative counters, as the runner sends them: a panel summing them would be far off
    io_read_bytes: 5_000_000 + index * IO_READ_STEP,
    io_write_bytes: 2_000_000 + index * IO_WRITE_STEP,
    elapsed_secs: 0,
    stdout_bytes: 0,
    stderr_bytes: 0,
    stdout_delta_bytes: 0,
    stderr_delta_bytes: 0,
    stagnant_heartbeats: 0,
    pid: null,
    pid_alive: false,
    output_state: "",
  }));
}

function heartbeats(run: SeededRun, stage: string, states: readonly string[]): Record<string, unknown>[] {
  return states.map((state, index) => ({
    run_id: run.runId,
    attempt_id: run.attemptId,
    seq: SAMPLES_PER_RUN + 1 + index,
    kind: "heartbeat",
    ts: toClickHouseTime(run.startMs + (index + 1) * 30_000),
    received_at: toClickHouseTime(run.startMs + (index + 1) * 30_000 + 100),
    stage_name: stage,
    group_id: "g0",
    stage_attempt: 1,
    rss_bytes: 0,
    cpu_percent: 0,
    io_read_bytes: 0,
    io_write_bytes: 0,
    elapsed_secs: (index + 1) * 30,
    stdout_bytes: index === 0 ? 100 : 200,
    stderr_bytes: 10,
    stdout_delta_bytes: index <= 1 ? 100 : 0,
    stderr_delta_bytes: index === 0 ? 10 : 0,
    stagnant_heartbeats: index,
    pid: 4242,
    pid_alive: true,
    output_state: state,
  }));
}

// ---------------------------------------------------------------------------------------------------------------
// Prometheus: metric names the services register, and names used in expressions
// ---------------------------------------------------------------------------------------------------------------

async function registeredMetricNames(): Promise<Set<string>> {
  const names = new Set<string>();
  const registries = [createIngestMetrics().registry, createWorkerMetrics().registry, createRunnerMetrics(BUILT_IN_DRIVER_NAMES).registry];
  for (const registry of registries) {
    for (const metric of await registry.getMetricsAsJSON()) {
      names.add(metric.name);
      const type = String(metric.type);
      if (type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(metric.name + suffix);
      if (type === "summary") for (const suffix of ["_sum", "_count"]) names.add(metric.name + suffix);
    }
    registry.clear();
  }
  return names;
}

/** Series Prometheus itself writes for every target. */
const PROMETHEUS_SERIES = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped"]);
const PROMQL_WORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"]);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or durations. */
function promqlMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names: string[] = [];
  for (const match of stripped.matchAll(/(?<![\w.$])([a-zA-Z_:][\w:]*)\b(?!\s*\()/g)) {
    const name = match[1] ?? "";
    if (!PROMQL_WORDS.has(name.toLowerCase())) names.push(name);
  }
  return names;
}

function jobNamesIn(expr: string): string[] {
  const jobs: string[] = [];
  for (const match of expr.matchAll(/\bjob\s*(=~|=)\s*"([^"]*)"/g)) {
    const value = match[2] ?? "";
    jobs.push(...(match[1] === "=~" ? value.split("|") : [value]));
  }
  return jobs;
}

interface RuleFile {
  groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
}

function prometheusExpressions(dashboards: { dashboard: Dashboard }[]): { where: string; expr: string }[] {
  const found: { where: string; expr: string }[] = [];
  for (const { dashboard } of dashboards) {
    for (const panel of panelsOf(dashboard, PROMETHEUS_TYPE)) {
      for (const target of panel.targets ?? []) found.push({ where: `${dashboard.uid} / ${panel.title} / ${target.refId}`, expr: target.expr ?? "" });
    }
  }
  const rules = parseYaml(readFileSync(join(INFRA_DIR, "prometheus/rules/flowmeter.rules.yml"), "utf8")) as RuleFile;
  for (const group of rules.groups) {
    for (const rule of group.rules) found.push({ where: `rules / ${group.name} / ${rule.alert ?? rule.record ?? "?"}`, expr: rule.expr });
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------------

const logger = createLogger("test", "error");
const dashboards = loadDashboards();

describe("Grafana dashboards: structure", () => {
  const datasources = parseYaml(readFileSync(join(INFRA_DIR, "grafana/provisioning/datasources/flowmeter.yaml"), "utf8")) as {
    datasources: { uid: string; type: string }[];
  };

  it("has the five dashboards, unique uids, and panels on provisioned datasources", () => {
    expect(dashboards.map(({ dashboard }) => dashboard.uid).sort()).toEqual([
      "flowmeter-commands",
      "flowmeter-drivers",
      "flowmeter-pipeline",
      "flowmeter-runs",
      "flowmeter-stages",
    ]);
    const provisioned = new Map(datasources.datasources.map((source) => [source.uid, source.type]));
    for (const { file, dashboard } of dashboards) {
      const panels = allPanels(dashboard.panels);
      expect(new Set(panels.map((panel) => panel.id)).size, `${file}: panel ids are unique`).toBe(panels.length);
      for (const panel of panels.filter((candidate) => candidate.type !== "row")) {
        const where = `${file} / ${panel.title}`;
        expect(panel.gridPos, where).toBeDefined();
        expect(provisioned.get(panel.datasource?.uid ?? ""), `${where}: datasource uid is provisioned with its type`).toBe(panel.datasource?.type);
        expect(panel.targets?.length, `${where}: has queries`).toBeGreaterThan(0);
        if (panel.datasource?.type === CLICKHOUSE_TYPE)
          expect(panel.targets?.length, `${where}: one SQL query per panel (its columns are declared below)`).toBe(1);
        for (const target of panel.targets ?? []) {
          expect(target.datasource, `${where} ${target.refId}`).toEqual(panel.datasource);
          if (panel.datasource?.type === CLICKHOUSE_TYPE) {
            expect(target.editorType, where).toBe("sql");
            expect(target.rawSql?.trim(), where).not.toBe("");
            expect(target.format === 0 ? "timeseries" : "table", `${where}: format matches queryType (the plugin's enum: timeseries, table)`).toBe(
              target.queryType,
            );
          } else {
            expect(target.expr?.trim(), where).not.toBe("");
          }
        }
      }
      for (const variable of dashboard.templating.list) {
        expect(variable, `${file} $${variable.name}`).toMatchObject({
          type: "query",
          multi: true,
          includeAll: true,
          datasource: { uid: "flowmeter-clickhouse" },
        });
        expect(variable.allValue ?? null, `${file} $${variable.name}: All means every option, via $__conditionalAll`).toBeNull();
      }
    }
  });

  type LinkedPanel = Panel & { fieldConfig?: { overrides?: { matcher: { options: string }; properties: { id: string; value: { url: string }[] }[] }[] } };

  it("drills down from a run in the Runs dashboard to that run alone", () => {
    const runsDashboard = dashboards.find((entry) => entry.dashboard.uid === "flowmeter-runs")?.dashboard;
    expect(runsDashboard?.templating.list.map((variable) => variable.name)).toContain("run_id");
    for (const title of ["Recent runs", "Stages of recent runs"]) {
      const panel: LinkedPanel | undefined = allPanels(runsDashboard?.panels ?? []).find((candidate) => candidate.title === title);
      const override = panel?.fieldConfig?.overrides?.find((candidate) => candidate.matcher.options === "run_id");
      const link = override?.properties.find((property) => property.id === "links")?.value[0];
      expect(link?.url, `${title}: run_id links to the same dashboard with that run picked`).toBe(
        "/d/flowmeter-runs/runs?var-run_id=${__value.raw}&${__url_time_range}",
      );
    }
    for (const panel of panelsOf(runsDashboard as Dashboard, CLICKHOUSE_TYPE)) {
      expect(panel.targets?.[0]?.rawSql, `${panel.title} filters by $run_id`).toContain("$__conditionalAll(run_id IN (${run_id:singlequote}), $run_id)");
    }
  });

  it("declares expected columns for exactly the ClickHouse panels there are", () => {
    for (const { dashboard } of dashboards) {
      const titles = panelsOf(dashboard, CLICKHOUSE_TYPE).map((panel) => panel.title);
      expect(titles.sort(), dashboard.uid).toEqual(Object.keys(EXPECTED_COLUMNS[dashboard.uid] ?? {}).sort());
    }
  });

  it("the expander refuses unknown macros, variables and formats", () => {
    const context = { fromMs: 0, toMs: 1000, intervalSeconds: 60 };
    const vars = new Map<string, VariableValue>([["driver", { all: false, values: ["a", "b'c"] }]]);
    expect(expandQuery("SELECT 1 WHERE $__timeFilter(minute) AND driver IN (${driver:singlequote})", vars, context)).toBe(
      "SELECT 1 WHERE minute >= toDateTime(0) AND minute <= toDateTime(1) AND driver IN ('a','b\\'c')",
    );
    expect(expandQuery("$__conditionalAll(driver IN ($driver), $driver)", new Map([["driver", { all: true, options: ["x"] }]]), context)).toBe("1=1");
    expect(() => expandQuery("SELECT $__timeGroup(ts, '1m')", vars, context)).toThrow(/unknown macro \$__timeGroup/);
    expect(() => expandQuery("SELECT $workflow", vars, context)).toThrow(/unknown template variable/);
    expect(() => expandQuery("SELECT ${driver:csv}", vars, context)).toThrow(/not supported/);
  });
});

describe("Grafana dashboards: ClickHouse queries on chDB", () => {
  const data = tempDir("ops-dashboards");
  let clickhouse: ClickHouseClient;
  const now = Date.now();
  const range = { fromMs: now - 6 * 60 * MINUTE, toMs: now };
  const runs: SeededRun[] = [
    { runId: randomUUID(), attemptId: randomUUID(), workflow: "deploy", startMs: now - 40 * MINUTE, state: "succeeded" },
    { runId: randomUUID(), attemptId: randomUUID(), workflow: "deploy", startMs: now - 25 * MINUTE, state: "failed" },
    { runId: randomUUID(), attemptId: randomUUID(), workflow: "nightly", startMs: now - 10 * MINUTE, state: "running" },
  ];

  /** SELECTED_VALUES, and the first seeded run for the runs dashboard's drill-down variable. */
  const selectedValues = (): Record<string, string[]> => ({ ...SELECTED_VALUES, run_id: [runs[0]?.runId ?? ""] });

  async function run(sql: string): Promise<{ meta: { name: string; type: string }[]; data: Record<string, unknown>[] }> {
    const result = await clickhouse.query({ query: sql, format: "JSON" });
    const body = await result.json<Record<string, unknown>>();
    return { meta: body.meta ?? [], data: body.data };
  }

  async function resolveVariables(dashboard: Dashboard, pick: "all" | Record<string, string[]>): Promise<Map<string, VariableValue>> {
    const variables = new Map<string, VariableValue>();
    for (const variable of dashboard.templating.list) {
      const sql = expandQuery(variable.query, variables, { ...range, intervalSeconds: 20 });
      const result = await run(sql).catch((error: unknown) => {
        throw new Error(`${dashboard.uid} $${variable.name}: ${String(error)}\n${sql}`);
      });
      expect(result.meta.length, `${dashboard.uid} $${variable.name} returns one column`).toBe(1);
      const options = result.data.map((row) => String(Object.values(row)[0]));
      expect(options.length, `${dashboard.uid} $${variable.name} offers values`).toBeGreaterThan(0);
      if (pick === "all") {
        variables.set(variable.name, { all: true, options });
      } else {
        const wanted = pick[variable.name] ?? [];
        expect(options, `${dashboard.uid} $${variable.name} offers ${wanted.join(", ")}`).toEqual(expect.arrayContaining(wanted));
        variables.set(variable.name, { all: false, values: wanted });
      }
    }
    return variables;
  }

  async function runPanel(dashboard: Dashboard, panel: Panel, variables: Map<string, VariableValue>) {
    const target = panel.targets?.[0];
    const context = { ...range, intervalSeconds: Math.max(durationSeconds(panel.interval), 20) };
    const sql = expandQuery(target?.rawSql ?? "", variables, context);
    const result = await run(sql).catch((error: unknown) => {
      throw new Error(`${dashboard.uid} / ${panel.title}: ${String(error)}\n${sql}`);
    });
    return { ...result, context };
  }

  beforeAll(async () => {
    clickhouse = await createClickHouse({ url: undefined, dataDir: join(data.path, "clickhouse") });
    await migrate(clickhouse, join(INFRA_DIR, "clickhouse/migrations"), logger);

    // Client entries: parents (`workflow run`), children with the current `executor` key and the older `driver` key.
    const receivedAt = toClickHouseTime(now);
    const entries = [
      ...[0, 1, 2, 3].map((index) => parentEntry({ startedAt: new Date(now - (50 - index * 10) * MINUTE), status: "success" })),
      parentEntry({ startedAt: new Date(now - 20 * MINUTE), status: "error" }),
      parentEntry({ startedAt: new Date(now - 15 * MINUTE), status: "user_error" }),
      legacyEntry(),
    ];
    const children: [string, "executor" | "driver", string, string, "success" | "error" | "user_error", number][] = [
      ["deploy", "executor", "shell", "build", "success", 1200],
      ["deploy", "executor", "shell", "build", "success", 900],
      ["deploy", "executor", "shell", "test", "error", 3100],
      ["deploy", "driver", "loopback", "validate", "success", 150],
      ["deploy", "driver", "loopback", "validate", "user_error", 0],
      ["deploy", "executor", "node", "publish", "success", 2200],
      ["nightly", "executor", "shell", "lint", "success", 450],
      ["nightly", "executor", "loopback", "lint", "error", 600],
    ];
    children.forEach(([workflowName, driverKey, driver, stepName, status, durationMs], index) => {
      entries.push(
        childEntry("parent-id", { workflowName, driverKey, driver, stepName, status, durationMs, startedAt: new Date(now - (45 - index * 4) * MINUTE) }),
      );
    });
    await insertBlockThroughClient(
      clickhouse,
      toBlock(
        "flowmeter.cli_invocations",
        CLI_INVOCATION_COLUMNS,
        entries.map((entry) => toRow(entry, receivedAt)),
      ),
    );

    // Runner events: a run with a retried stage, a failed run with a skipped stage, a run still going.
    const [succeeded, failed, running] = runs as [SeededRun, SeededRun, SeededRun];
    const events = [
      ...runEvents(succeeded, [
        { at: 0, type: "run.started" },
        { at: 1000, type: "stage.started", stage: "build", driver: "shell", attempt: 1 },
        { at: 41_000, type: "stage.completed", stage: "build", driver: "shell", attempt: 1, outcome: "succeeded", durationMs: 40_000, exitCode: 0 },
        { at: 42_000, type: "stage.started", stage: "test", driver: "shell", attempt: 1 },
        { at: 52_000, type: "stage.failed", stage: "test", driver: "shell", attempt: 1, durationMs: 10_000, exitCode: 1, error: "exit 1" },
        { at: 53_000, type: "stage.started", stage: "test", driver: "shell", attempt: 2 },
        { at: 65_000, type: "stage.completed", stage: "test", driver: "shell", attempt: 2, outcome: "succeeded", durationMs: 12_000, exitCode: 0 },
        { at: 66_000, type: "stage.started", stage: "publish", driver: "node", attempt: 1 },
        { at: 70_000, type: "stage.completed", stage: "publish", driver: "node", attempt: 1, outcome: "succeeded", durationMs: 4000, exitCode: 0 },
        { at: 71_000, type: "run.finished", durationMs: 71_000 },
      ]),
      ...runEvents(failed, [
        { at: 0, type: "run.started" },
        { at: 500, type: "stage.started", stage: "build", driver: "node", attempt: 1 },
        { at: 20_500, type: "stage.failed", stage: "build", driver: "node", attempt: 1, outcome: "failed", durationMs: 20_000, exitCode: 7, error: "exit 7" },
        { at: 20_600, type: "stage.skipped", stage: "test", driver: "shell", attempt: 0, outcome: "skipped", error: 'dependency "build" failed' },
        { at: 21_000, type: "run.failed", durationMs: 21_000, error: "stage build failed" },
      ]),
      ...runEvents(running, [
        { at: 0, type: "run.started" },
        { at: 1000, type: "stage.started", stage: "lint", driver: "shell", attempt: 1 },
      ]),
    ];
    await clickhouse.insert({ table: "flowmeter.run_events", values: events, format: "JSONEachRow" });
    const telemetry = [
      ...runs.flatMap((seeded) => hostSamples(seeded)),
      ...heartbeats(succeeded, "build", ["active"]),
      ...heartbeats(running, "lint", ["active", "quiet", "quiet", "stagnant"]),
    ];
    await clickhouse.insert({ table: "flowmeter.run_telemetry", values: telemetry, format: "JSONEachRow" });
    const logLine = (seeded: SeededRun, seq: number, stage: string, stream: "stdout" | "stderr", line: string) => ({
      run_id: seeded.runId,
      attempt_id: seeded.attemptId,
      seq,
      ts: toClickHouseTime(seeded.startMs + 1000 + seq),
      received_at: toClickHouseTime(seeded.startMs + 2000 + seq),
      stage_name: stage,
      stage_attempt: 1,
      stream,
      line,
      truncated: false,
    });
    await clickhouse.insert({
      table: "flowmeter.run_logs",
      values: [
        logLine(succeeded, 1, "build", "stdout", "compiling"),
        logLine(succeeded, 2, "build", "stdout", "built"),
        logLine(failed, 1, "build", "stdout", "about to fail"),
        logLine(failed, 2, "build", "stderr", "disk full"),
      ],
      format: "JSONEachRow",
    });
    const warnings = [
      {
        received_at: receivedAt,
        warning_id: "w-1",
        reason: "truncated",
        entry_id: "e-1",
        distinct_id: "u-1",
        source: "127.0.0.1",
        detail: "properties.result.errorMessage cut from 5000 to 4096 characters",
        excerpt: "{}",
      },
      {
        received_at: receivedAt,
        warning_id: "w-2",
        reason: "rejected",
        entry_id: "",
        distinct_id: "",
        source: "127.0.0.1",
        detail: "entry is not a JSON object",
        excerpt: "42",
      },
    ];
    await clickhouse.insert({ table: "flowmeter.ingestion_warnings", values: warnings, format: "JSONEachRow" });
  });

  afterAll(async () => {
    await clickhouse?.close();
    data.remove();
  });

  it("seeding filled every rollup through the materialized views", async () => {
    // Every materialized view whose source table was seeded filled its target: the engine says which views there are.
    const views = await run("SELECT create_table_query AS query FROM system.tables WHERE database = 'flowmeter' AND engine = 'MaterializedView'");
    const filled = [];
    for (const { query } of views.data as { query: string }[]) {
      const [source, target] = [/\bFROM (flowmeter\.\w+)/.exec(query)?.[1], /\bTO (flowmeter\.\w+)/.exec(query)?.[1]];
      expect(source && target, query).toBeTruthy();
      const rowsIn = async (table: string) => Number((await run(`SELECT count() AS n FROM ${table}`)).data[0]?.["n"]);
      if ((await rowsIn(source ?? "")) === 0) continue;
      expect(await rowsIn(target ?? ""), `${target} (from ${source})`).toBeGreaterThan(0);
      filled.push(target);
    }
    expect(filled.length).toBeGreaterThan(0);
    const sources = await run("SELECT DISTINCT source FROM flowmeter.driver_stats ORDER BY source");
    expect(sources.data.map((row) => row["source"])).toEqual(["client", "runner"]);
  });

  for (const { dashboard } of dashboards.filter((entry) => panelsOf(entry.dashboard, CLICKHOUSE_TYPE).length > 0)) {
    describe(`${dashboard.title} (${dashboard.uid})`, () => {
      for (const pass of ["all", "selected"] as const) {
        it(`every panel returns its columns with ${pass === "all" ? "every variable on All" : "values picked"}`, async () => {
          const variables = await resolveVariables(dashboard, pass === "all" ? "all" : selectedValues());
          for (const panel of panelsOf(dashboard, CLICKHOUSE_TYPE)) {
            const where = `${dashboard.uid} / ${panel.title} (${pass})`;
            const result = await runPanel(dashboard, panel, variables);
            expect(
              result.meta.map((column) => column.name),
              where,
            ).toEqual(EXPECTED_COLUMNS[dashboard.uid]?.[panel.title]);
            expect(result.data.length, `${where} returns rows`).toBeGreaterThan(0);
            if (panel.type === "timeseries") {
              expect(result.meta[0]?.type, `${where}: the first column is the time`).toMatch(/^DateTime/);
              expect(
                result.meta.some((column) => /Int|Float|Decimal/.test(column.type)),
                `${where}: has a numeric column`,
              ).toBe(true);
            }
            if (pass === "selected") {
              for (const [column, wanted] of Object.entries(selectedValues())) {
                if (!result.meta.some((meta) => meta.name === column) || !dashboard.templating.list.some((variable) => variable.name === column)) continue;
                for (const row of result.data) expect(wanted, `${where}: ${column} is filtered`).toContain(row[column]);
              }
            }
          }
        });
      }
    });
  }

  it("every panel and variable reads only what the grafana user is granted (infra/clickhouse/users.d/users.xml)", async () => {
    const usersXml = readFileSync(join(INFRA_DIR, "clickhouse/users.d/users.xml"), "utf8");
    const grafanaBlock = /<grafana>([\s\S]*?)<\/grafana>/.exec(usersXml)?.[1] ?? "";
    const grants = [...grafanaBlock.matchAll(/<query>GRANT SELECT ON ([\w.*]+)<\/query>/g)].map((match) => match[1] ?? "");
    expect(grants).toContain("flowmeter.*");
    const granted = (table: string) => grants.some((grant) => grant === table || (grant.endsWith(".*") && table.startsWith(grant.slice(0, -1))));
    // What a query reads, from its plan: ReadFromMergeTree (db.table) for tables (views resolve to theirs), ReadFromSystemX
    // for system.x (LazilyReadFromMergeTree reads on from the table its ReadFromMergeTree names).
    const readsOf = (plan: string): string[] =>
      [...plan.matchAll(/\bReadFrom(\w+)(?: \(([\w.]+)\))?/g)].flatMap(([, kind = "", table]) => {
        if (kind === "MergeTree" && table !== undefined) return [table];
        if (kind.startsWith("System")) return [`system.${kind.slice("System".length).replace(/^./, (first) => first.toLowerCase())}`];
        return kind === "PreparedSource" || kind === "StorageSnapshot" ? [] : [`${kind}${table === undefined ? "" : ` (${table})`}`];
      });
    const refused: string[] = [];
    let reads = 0;
    for (const { dashboard } of dashboards) {
      const variables = await resolveVariables(dashboard, "all");
      const queries = [
        ...dashboard.templating.list.map((variable) => ({ what: `$${variable.name}`, sql: variable.query, intervalSeconds: 20 })),
        ...panelsOf(dashboard, CLICKHOUSE_TYPE).map((panel) => ({
          what: panel.title,
          sql: panel.targets?.[0]?.rawSql ?? "",
          intervalSeconds: Math.max(durationSeconds(panel.interval), 20),
        })),
      ];
      for (const { what, sql, intervalSeconds } of queries) {
        const expanded = expandQuery(sql, variables, { ...range, intervalSeconds });
        const plan = (await run(`EXPLAIN PLAN ${expanded}`)).data.map((row) => String(Object.values(row)[0])).join("\n");
        for (const table of readsOf(plan)) {
          reads += 1;
          if (!granted(table)) refused.push(`${dashboard.uid} / ${what}: ${table}`);
        }
      }
    }
    expect(reads).toBeGreaterThan(20);
    expect(refused).toEqual([]);
  });

  function numbers(row: Record<string, unknown> | undefined, columns: string[]): Record<string, number> {
    return Object.fromEntries(columns.map((column) => [column, Number(row?.[column])]));
  }

  function dashboardByUid(uid: string): Dashboard {
    const found = dashboards.find((entry) => entry.dashboard.uid === uid)?.dashboard;
    if (!found) throw new Error(`no dashboard ${uid}`);
    return found;
  }

  function panelByTitle(dashboard: Dashboard, title: string): Panel {
    const found = allPanels(dashboard.panels).find((panel) => panel.title === title);
    if (!found) throw new Error(`no panel ${title} in ${dashboard.uid}`);
    return found;
  }

  it("Drivers: counts per driver and source equal a GROUP BY over the raw tables", async () => {
    const dashboard = dashboardByUid("flowmeter-drivers");
    const variables = await resolveVariables(dashboard, "all");
    const table = await runPanel(dashboard, panelByTitle(dashboard, "Drivers over the selected range, client vs runner"), variables);
    const raw = await run(`
      SELECT driver, source, ended FROM (
        SELECT driver, 'client' AS source, count() AS ended FROM flowmeter.cli_invocations WHERE is_child GROUP BY driver
        UNION ALL
        SELECT driver, 'runner' AS source, count() AS ended FROM flowmeter.run_events WHERE stage_outcome != '' GROUP BY driver
      )
      ORDER BY driver, source`);
    const pick = (rows: Record<string, unknown>[]) => rows.map((row) => ({ driver: row["driver"], source: row["source"], ended: Number(row["ended"]) }));
    expect(pick(table.data)).toEqual(pick(raw.data));
  });

  it("Stages: retries come from attempts before the last one", async () => {
    const dashboard = dashboardByUid("flowmeter-stages");
    const variables = await resolveVariables(dashboard, "all");
    const table = await runPanel(dashboard, panelByTitle(dashboard, "Outcomes by stage"), variables);
    const test = table.data.find((row) => row["workflow"] === "deploy" && row["stage"] === "test");
    // client error + runner succeeded after one retry + runner skipped
    expect(numbers(test, ["ended", "succeeded", "failed", "skipped", "retries"])).toEqual({ ended: 3, succeeded: 1, failed: 1, skipped: 1, retries: 1 });
  });

  it("Runs: states, retries, and IO from deltas of the cumulative counters (never their sum)", async () => {
    const dashboard = dashboardByUid("flowmeter-runs");
    const variables = await resolveVariables(dashboard, "all");
    const recent = await runPanel(dashboard, panelByTitle(dashboard, "Recent runs"), variables);
    const states = Object.fromEntries(recent.data.map((row) => [String(row["run_id"]), row["state"]]));
    expect(states).toEqual(Object.fromEntries(runs.map((seeded) => [seeded.runId, seeded.state])));
    const first = recent.data.find((row) => row["run_id"] === runs[0]?.runId);
    expect(numbers(first, ["retries", "stages_succeeded", "stages_failed", "attempts", "duration_s"])).toEqual({
      retries: 1,
      stages_succeeded: 3,
      stages_failed: 0,
      attempts: 1,
      duration_s: 71,
    });
    expect(first?.["workflow"]).toBe("deploy");

    const io = await runPanel(dashboard, panelByTitle(dashboard, "Storage IO of runs (deltas of cumulative counters)"), variables);
    const readBytes = io.data.reduce((total, row) => total + Number(row["read_bytes_per_second"]) * io.context.intervalSeconds, 0);
    const writeBytes = io.data.reduce((total, row) => total + Number(row["write_bytes_per_second"]) * io.context.intervalSeconds, 0);
    expect(readBytes).toBeCloseTo(runs.length * (SAMPLES_PER_RUN - 1) * IO_READ_STEP, 3);
    expect(writeBytes).toBeCloseTo(runs.length * (SAMPLES_PER_RUN - 1) * IO_WRITE_STEP, 3);

    const rss = await runPanel(dashboard, panelByTitle(dashboard, "Host RSS, top 10 runs by peak"), variables);
    expect(Math.max(...rss.data.map((row) => Number(row["rss_bytes"])))).toBe(100_000_000 + (SAMPLES_PER_RUN - 1) * 1_000_000);

    const output = await runPanel(dashboard, panelByTitle(dashboard, "Stage output (logs)"), variables);
    const linesOf = (runId: string | undefined) =>
      output.data.filter((row) => row["run_id"] === runId).map((row) => `${String(row["stage"])} ${String(row["stream"])}: ${String(row["line"])}`);
    expect(linesOf(runs[1]?.runId)).toEqual(["build stderr: disk full", "build stdout: about to fail"]); // newest first
    expect(linesOf(runs[0]?.runId)).toEqual(["build stdout: built", "build stdout: compiling"]);

    const beats = await runPanel(dashboard, panelByTitle(dashboard, "Running and recent stage attempts (last heartbeat)"), variables);
    expect(beats.data).toHaveLength(2);
    const lint = beats.data.find((row) => row["stage"] === "lint");
    expect(lint?.["output_state"]).toBe("stagnant");
    expect(numbers(lint, ["stagnant_heartbeats", "stdout_bytes", "elapsed_secs"])).toEqual({ stagnant_heartbeats: 3, stdout_bytes: 200, elapsed_secs: 120 });
  });
});

describe("Prometheus expressions (dashboards and alert rules)", () => {
  const expressions = prometheusExpressions(dashboards);
  const scrapeConfig = parseYaml(readFileSync(join(INFRA_DIR, "prometheus/prometheus.yml"), "utf8")) as { scrape_configs: { job_name: string }[] };
  const jobs = new Set(scrapeConfig.scrape_configs.map((job) => job.job_name));

  it("the metric-name extractor reads PromQL", () => {
    expect(
      promqlMetricNames('histogram_quantile(0.99, sum by (le, table) (rate(flowmeter_worker_insert_duration_seconds_bucket{table="x"}[$__rate_interval])))'),
    ).toEqual(["flowmeter_worker_insert_duration_seconds_bucket"]);
    expect(promqlMetricNames('count(up{job="runner"} == 1) / clamp_min(sum(rate(a_total[5m])) + b offset 5m, 1e-9)')).toEqual(["up", "a_total", "b"]);
  });

  it("use only metrics the services register, and job names prometheus.yml defines", async () => {
    const known = await registeredMetricNames();
    expect(known).toContain("flowmeter_worker_queue_lag_seconds");
    expect(known).toContain("flowmeter_process_resident_memory_bytes");
    expect(expressions.length).toBeGreaterThan(20);
    const unknown: string[] = [];
    for (const { where, expr } of expressions) {
      const names = promqlMetricNames(expr);
      expect(names.length, `${where}: names a metric`).toBeGreaterThan(0);
      for (const name of names) if (!known.has(name) && !PROMETHEUS_SERIES.has(name)) unknown.push(`${where}: ${name}`);
      for (const job of jobNamesIn(expr)) expect(jobs, `${where}: job ${job}`).toContain(job);
    }
    expect(unknown).toEqual([]);
  });

  const tools = checkTools(["promtool"]);
  describe.skipIf(tools.skip)(`promtool${tools.note}`, () => {
    it("parses every dashboard expression", () => {
      const promtool = toolPath(tools, "promtool");
      const scratch = tempDir("ops-promql");
      try {
        const rules = expressions
          .filter(({ where }) => !where.startsWith("rules /"))
          .map(({ expr }, index) => {
            const concrete = expr.replaceAll("$__rate_interval", "1m").replaceAll("$__interval", "1m").replaceAll("$__range", "1h");
            expect(concrete, "only $__rate_interval, $__interval and $__range are substituted").not.toContain("$");
            return { record: `dashboard:expression_${index}`, expr: concrete };
          });
        const file = join(scratch.path, "dashboard-expressions.rules.yml");
        writeFileSync(file, stringifyYaml({ groups: [{ name: "dashboard-expressions", rules }] }));
        const checked = spawnSync(promtool, ["check", "rules", file], { encoding: "utf8" });
        expect(checked.status, `${checked.stdout}${checked.stderr}`).toBe(0);
      } finally {
        scratch.remove();
      }
    });
  });
});
