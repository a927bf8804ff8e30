/**
 * Validation of workflow definitions (docs/spec.md §6a), before anything runs. Every problem is collected and named by
 * stage and field: `stage "test": depends_on names unknown stage "buidl"`.
 */
import type { StageDefinition, WorkflowDefinition, WorkflowSecret } from "@flowmeter/shared";
import { WorkflowValidationError } from "../errors.js";
import { isFlowmeterConfigVariable, isKernelPath } from "../execution/stage-env.js";

export interface ValidateWorkflowOptions {
  /** Driver names the runner knows (DriverRegistry.names()). */
  drivers: readonly string[];
  /** Shown in the error message, e.g. the file path. */
  source?: string;
}

/** Stage and workflow names: letters, digits, `_ . -`; no commas or spaces, so names can be joined and used in paths. */
const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const WORKFLOW_KEYS = new Set(["name", "concurrency", "max_concurrent_runs", "secrets", "stages"]);
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const STAGE_KEYS = new Set(["name", "driver", "run", "depends_on", "retries", "retry", "timeout_secs", "allow_failure", "env"]);
const RETRY_KEYS = ["delay_secs", "backoff_factor", "max_delay_secs", "on_exit_codes"];
/** Bounds of a stage's `retry` (the shared STAGE_DEFINITION_SCHEMA says the same). */
export const RETRY_LIMITS = { delay_secs: 3600, backoff_factor: 10, max_delay_secs: 86_400 } as const;
export const MAX_RETRIES = 100;
export const MAX_TIMEOUT_SECS = 7 * 86_400;
export const MAX_CONCURRENCY = 1000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isValidConcurrency(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_CONCURRENCY;
}

/** Checks a run's own `concurrency` (which overrides the workflow's); undefined is fine. */
export function validateRunConcurrency(value: unknown): void {
  if (value !== undefined && !isValidConcurrency(value)) {
    throw new WorkflowValidationError([`run: concurrency must be an integer between 1 and ${MAX_CONCURRENCY}`]);
  }
}

/** Returns a clean copy of `value` as a WorkflowDefinition, or throws one WorkflowValidationError naming every problem. */
export function validateWorkflow(value: unknown, options: ValidateWorkflowOptions): WorkflowDefinition {
  const problems: string[] = [];
  const context = options.source === undefined ? {} : { source: options.source };
  if (!isRecord(value)) throw new WorkflowValidationError(["workflow must be an object with name and stages"], context);

  for (const key of Object.keys(value)) {
    if (!WORKFLOW_KEYS.has(key)) problems.push(`workflow: unknown field "${key}" (known: ${[...WORKFLOW_KEYS].join(", ")})`);
  }
  const name = value["name"];
  if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
    problems.push(`workflow: name is required: 1-128 characters of letters, digits, "_", "." or "-"`);
  }
  const concurrency = value["concurrency"];
  if (concurrency !== undefined && !isValidConcurrency(concurrency)) {
    problems.push(`workflow: concurrency must be an integer between 1 and ${MAX_CONCURRENCY}`);
  }
  const maxConcurrentRuns = value["max_concurrent_runs"];
  if (maxConcurrentRuns !== undefined && !isValidConcurrency(maxConcurrentRuns)) {
    problems.push(`workflow: max_concurrent_runs must be an integer between 1 and ${MAX_CONCURRENCY}`);
  }
  const secrets = validateSecrets(value["secrets"], problems);
  const rawStages = value["stages"];
  if (!Array.isArray(rawStages) || rawStages.length === 0) {
    problems.push("workflow: stages must be a non-empty list");
    throw new WorkflowValidationError(problems, context);
  }

  const stages: StageDefinition[] = [];
  const firstIndex = new Map<string, number>();
  rawStages.forEach((raw: unknown, index) => {
    const stage = validateStage(raw, index, options.drivers, problems);
    if (stage === undefined) return;
    const seen = firstIndex.get(stage.name);
    if (seen !== undefined) {
      problems.push(`stage "${stage.name}": duplicate stage name (stages[${seen}] and stages[${index}])`);
      return;
    }
    firstIndex.set(stage.name, index);
    stages.push(stage);
    for (const key of Object.keys(stage.env ?? {})) {
      if (secrets !== undefined && Object.hasOwn(secrets, key))
        problems.push(`stage "${stage.name}": env.${key} is also a secret of the workflow; name it once`);
    }
  });

  for (const stage of stages) {
    for (const dependency of stage.depends_on ?? []) {
      if (dependency === stage.name) problems.push(`stage "${stage.name}": depends_on names the stage itself`);
      else if (!firstIndex.has(dependency) && NAME_PATTERN.test(dependency)) {
        problems.push(`stage "${stage.name}": depends_on names unknown stage "${dependency}"`);
      }
    }
  }
  for (const cycle of findCycles(stages)) problems.push(`dependency cycle: ${cycle.join(" -> ")} (each stage depends on the next)`);

  if (problems.length > 0) throw new WorkflowValidationError(problems, context);
  return {
    name: name as string,
    ...(concurrency === undefined ? {} : { concurrency: concurrency as number }),
    ...(maxConcurrentRuns === undefined ? {} : { max_concurrent_runs: maxConcurrentRuns as number }),
    ...(secrets === undefined ? {} : { secrets }),
    stages,
  };
}

/**
 * `secrets: {NAME: {env: VARIABLE} | {file: path}}`: variables every stage gets, read on the runner executing the run.
 * Never from flowmeter's own configuration (REDIS_URL, RUNNER_API_TOKENS, …) nor from /proc, /sys or /dev.
 */
function validateSecrets(raw: unknown, problems: string[]): Record<string, WorkflowSecret> | undefined {
  if (raw === undefined) return undefined;
  const shape = 'must be a map of variable names to {env: "RUNNER_SIDE_VARIABLE"} or {file: "path"}';
  if (!isRecord(raw)) {
    problems.push(`workflow: secrets ${shape}`);
    return undefined;
  }
  const secrets: Record<string, WorkflowSecret> = {};
  for (const [name, source] of Object.entries(raw)) {
    const label = `workflow: secrets.${name}`;
    if (!VARIABLE_NAME.test(name)) problems.push(`workflow: secret name ${JSON.stringify(name)} is not a valid variable name`);
    else if (name.startsWith("FLOWMETER_")) problems.push(`${label}: FLOWMETER_ names are the run's own variables`);
    const keys = isRecord(source) ? Object.keys(source) : [];
    if (!isRecord(source) || keys.length !== 1 || !(keys[0] === "env" || keys[0] === "file") || typeof source[keys[0]] !== "string") {
      problems.push(`${label} must be {env: "RUNNER_SIDE_VARIABLE"} or {file: "path"}, exactly one of them`);
      continue;
    }
    if ("env" in source) {
      const variable = source["env"] as string;
      if (!VARIABLE_NAME.test(variable)) problems.push(`${label}: env ${JSON.stringify(variable)} is not a valid variable name`);
      else if (isFlowmeterConfigVariable(variable)) problems.push(`${label}: env ${variable} is flowmeter's configuration, never given to stages`);
      else secrets[name] = { env: variable };
    } else {
      const file = source["file"] as string;
      if (file.trim() === "") problems.push(`${label}: file must be a non-empty path`);
      else if (isKernelPath(file)) problems.push(`${label}: file ${JSON.stringify(file)} is under /proc, /sys or /dev`);
      else secrets[name] = { file };
    }
  }
  return secrets;
}

function validateStage(raw: unknown, index: number, drivers: readonly string[], problems: string[]): StageDefinition | undefined {
  if (!isRecord(raw)) {
    problems.push(`stages[${index}]: must be an object with name, driver and run`);
    return undefined;
  }
  const name = raw["name"];
  const validName = typeof name === "string" && NAME_PATTERN.test(name);
  const label = validName ? `stage "${name}"` : `stages[${index}]`;
  if (!validName) {
    problems.push(
      name === undefined ? `${label}: name is required` : `${label}: name ${JSON.stringify(name)} must be 1-128 characters of letters, digits, "_", "." or "-"`,
    );
  }
  for (const key of Object.keys(raw)) {
    if (!STAGE_KEYS.has(key)) problems.push(`${label}: unknown field "${key}" (known: ${[...STAGE_KEYS].join(", ")})`);
  }

  const driver = raw["driver"];
  if (typeof driver !== "string" || driver === "") problems.push(`${label}: driver is required (known: ${drivers.join(", ")})`);
  else if (!drivers.includes(driver)) problems.push(`${label}: unknown driver "${driver}" (known: ${drivers.join(", ")})`);

  const run = raw["run"];
  if (typeof run === "boolean" || typeof run === "number")
    problems.push(`${label}: run must be a string; YAML read ${String(run)} as a ${typeof run}, quote it ("${String(run)}")`);
  else if (typeof run !== "string" || run.trim() === "") problems.push(`${label}: run is required (a non-empty string)`);

  const dependsOn = raw["depends_on"];
  let dependencies: string[] | undefined;
  if (dependsOn !== undefined) {
    if (!Array.isArray(dependsOn) || dependsOn.some((item) => typeof item !== "string")) {
      problems.push(`${label}: depends_on must be a list of stage names`);
    } else {
      dependencies = [...new Set(dependsOn as string[])];
      for (const dependency of dependencies) {
        if (!NAME_PATTERN.test(dependency)) problems.push(`${label}: depends_on names unknown stage ${JSON.stringify(dependency)}`);
      }
    }
  }

  const retries = raw["retries"];
  if (retries !== undefined && !(Number.isInteger(retries) && (retries as number) >= 0 && (retries as number) <= MAX_RETRIES)) {
    problems.push(`${label}: retries must be an integer between 0 and ${MAX_RETRIES}`);
  }
  const retry = validateRetry(raw["retry"], label, problems);
  const timeout = raw["timeout_secs"];
  if (timeout !== undefined && !(typeof timeout === "number" && Number.isFinite(timeout) && timeout > 0 && timeout <= MAX_TIMEOUT_SECS)) {
    problems.push(`${label}: timeout_secs must be a number of seconds above 0 and at most ${MAX_TIMEOUT_SECS}`);
  }
  const allowFailure = raw["allow_failure"];
  if (allowFailure !== undefined && typeof allowFailure !== "boolean") problems.push(`${label}: allow_failure must be true or false`);

  const env = raw["env"];
  if (env !== undefined) {
    if (!isRecord(env)) problems.push(`${label}: env must be a map of variable names to strings`);
    else {
      for (const [key, item] of Object.entries(env)) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) problems.push(`${label}: env name ${JSON.stringify(key)} is not a valid variable name`);
        if (typeof item !== "string") problems.push(`${label}: env.${key} must be a string (quote numbers and booleans)`);
      }
    }
  }

  if (!validName) return undefined;
  return {
    name: name,
    driver: driver as string,
    run: run as string,
    ...(dependencies === undefined ? {} : { depends_on: dependencies }),
    ...(retries === undefined ? {} : { retries: retries as number }),
    ...(retry === undefined ? {} : { retry }),
    ...(timeout === undefined ? {} : { timeout_secs: timeout as number }),
    ...(allowFailure === undefined ? {} : { allow_failure: allowFailure as boolean }),
    ...(env === undefined ? {} : { env: { ...(env as Record<string, string>) } }),
  };
}

type StageRetry = NonNullable<StageDefinition["retry"]>;

function validateRetry(value: unknown, label: string, problems: string[]): StageRetry | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value)) {
    problems.push(`${label}: retry must be a map with ${RETRY_KEYS.join(", ")}`);
    return undefined;
  }
  const retry: StageRetry = {};
  for (const key of Object.keys(value)) {
    if (!RETRY_KEYS.includes(key)) problems.push(`${label}: retry: unknown field "${key}" (known: ${RETRY_KEYS.join(", ")})`);
  }
  const number = (key: "delay_secs" | "backoff_factor" | "max_delay_secs", min: number): void => {
    const item = value[key];
    if (item === undefined) return;
    if (typeof item === "number" && Number.isFinite(item) && item >= min && item <= RETRY_LIMITS[key]) retry[key] = item;
    else problems.push(`${label}: retry.${key} must be a number between ${min} and ${RETRY_LIMITS[key]}`);
  };
  number("delay_secs", 0);
  number("backoff_factor", 1);
  number("max_delay_secs", 0);
  const codes = value["on_exit_codes"];
  if (codes !== undefined) {
    const valid =
      Array.isArray(codes) &&
      codes.length > 0 &&
      codes.length <= 256 &&
      codes.every((code) => Number.isInteger(code) && (code as number) >= 0 && (code as number) <= 255);
    if (valid) retry.on_exit_codes = [...new Set(codes as number[])];
    else problems.push(`${label}: retry.on_exit_codes must be a non-empty list of exit codes (integers 0-255)`);
  }
  return retry;
}

/** Each distinct dependency cycle once, as a path that returns to its start: `["a", "b", "a"]`. */
function findCycles(stages: readonly StageDefinition[]): string[][] {
  const dependencies = new Map(stages.map((stage) => [stage.name, (stage.depends_on ?? []).filter((name) => name !== stage.name)]));
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    state.set(name, "visiting");
    path.push(name);
    for (const dependency of dependencies.get(name) ?? []) {
      if (!dependencies.has(dependency)) continue;
      const dependencyState = state.get(dependency);
      if (dependencyState === "visiting") {
        // path is a chain of "depends on" links; the cycle runs from `dependency` along it to `name`, then back.
        const cycle = [...path.slice(path.indexOf(dependency)), dependency];
        const key = cycle.slice(1).sort().join("\u0000");
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push(cycle);
        }
      } else if (dependencyState === undefined) visit(dependency);
    }
    path.pop();
    state.set(name, "done");
  };
  for (const stage of stages) if (!state.has(stage.name)) visit(stage.name);
  return cycles;
}
