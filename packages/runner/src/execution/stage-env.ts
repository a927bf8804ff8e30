/**
 * What a stage's process sees in its environment, and nothing more: a short allow-list of the runner's own
 * variables (what programs need to find their tools, home, locale and temp directory), the run's FLOWMETER_*
 * variables, the workflow's secrets and the stage's `env`. Never the runner's configuration (RUNNER_API_TOKENS,
 * REDIS_URL with its password, QUEUE_PREFIX, …): a stage that could read it could write straight into the run store.
 */
import { readFileSync, realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { WorkflowSecret } from "@flowmeter/shared";
import { MIN_SECRET_CHARS } from "./secret-mask.js";

/** Variables a stage inherits from the runner's environment when they are set there. */
export const INHERITED_ENV_NAMES: readonly string[] = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM"];
/** Locale variables (LC_ALL, LC_CTYPE, …) are inherited too. */
export const INHERITED_ENV_PREFIXES: readonly string[] = ["LC_"];

/** Prefixes of flowmeter's own configuration variables (every service's config.ts). */
const CONFIG_PREFIXES = ["RUNNER_", "FLOWMETER_", "INGEST_", "WORKER_", "CLICKHOUSE_"];
const CONFIG_NAMES = new Set(["REDIS_URL", "QUEUE_PREFIX", "LOG_LEVEL"]);

/**
 * True for a variable of flowmeter's configuration (the runner's, and that of the services `flowmeter start`
 * launches alongside it with the same environment): a workflow secret may never be read from one.
 */
export function isFlowmeterConfigVariable(name: string): boolean {
  return CONFIG_NAMES.has(name) || CONFIG_PREFIXES.some((prefix) => name.startsWith(prefix));
}

export function isInheritedVariable(name: string): boolean {
  return INHERITED_ENV_NAMES.includes(name) || INHERITED_ENV_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/** The allow-listed variables of `hostEnv` that are set. */
export function inheritedEnv(hostEnv: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(hostEnv)) {
    if (value !== undefined && isInheritedVariable(name)) env[name] = value;
  }
  return env;
}

/** /proc/self/environ would hand the runner's own configuration to a stage; /sys and /dev are no secrets either. */
export function isKernelPath(absolutePath: string): boolean {
  return ["/proc", "/sys", "/dev"].some((root) => absolutePath === root || absolutePath.startsWith(`${root}/`));
}

/** A secret file larger than this is refused (a secret is a token or a key, not a data set). */
export const MAX_SECRET_FILE_BYTES = 65_536;

/** The secrets of one run: the values that could be read, and why the others could not. */
export interface ResolvedSecrets {
  values: Record<string, string>;
  /** One problem per secret that could not be read, naming it; stages of the run cannot start while any is left. */
  problems: string[];
}

/**
 * Reads a workflow's secrets on the runner executing the run: from `hostEnv`, or from a file (relative to `cwd`,
 * one trailing newline dropped). Problems name the secret and its source, never a value.
 */
export function resolveSecrets(secrets: Readonly<Record<string, WorkflowSecret>> | undefined, hostEnv: NodeJS.ProcessEnv, cwd: string): ResolvedSecrets {
  const values: Record<string, string> = {};
  const problems: string[] = [];
  for (const [name, source] of Object.entries(secrets ?? {})) {
    if ("env" in source) {
      const value = hostEnv[source.env];
      if (isFlowmeterConfigVariable(source.env)) problems.push(`secret ${name}: ${source.env} is flowmeter's configuration, never given to stages`);
      else if (value === undefined || value === "") problems.push(`secret ${name}: ${source.env} is not set in the runner's environment`);
      else if (value.length < MIN_SECRET_CHARS)
        problems.push(`secret ${name}: ${source.env} is shorter than ${MIN_SECRET_CHARS} characters (too short to mask)`);
      else values[name] = value;
      continue;
    }
    try {
      const path = realpathSync(resolve(cwd, source.file));
      if (isKernelPath(path)) {
        problems.push(`secret ${name}: file ${source.file} is under /proc, /sys or /dev (the runner's own state is never a secret)`);
        continue;
      }
      const size = statSync(path).size;
      if (size > MAX_SECRET_FILE_BYTES) {
        problems.push(`secret ${name}: file ${source.file} is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
        continue;
      }
      const value = readFileSync(path, "utf8").replace(/\r?\n$/, "");
      if (value.length < MIN_SECRET_CHARS)
        problems.push(`secret ${name}: file ${source.file} holds fewer than ${MIN_SECRET_CHARS} characters (too short to mask)`);
      else values[name] = value;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
      problems.push(`secret ${name}: cannot read file ${source.file} (${code})`);
    }
  }
  return { values, problems };
}

export interface StageEnvParts {
  /** The runner's environment; only INHERITED_ENV_NAMES / INHERITED_ENV_PREFIXES of it pass. */
  hostEnv: NodeJS.ProcessEnv;
  /** FLOWMETER_RUN_ID, FLOWMETER_STAGE_NAME, … */
  run: Record<string, string>;
  secrets: Record<string, string>;
  /** The stage's own `env`, last: a workflow may set PATH or HOME for its stages. */
  stage: Record<string, string> | undefined;
}

/** The whole environment of a stage's process, built from nothing (never a copy of the runner's). */
export function buildStageEnv(parts: StageEnvParts): Record<string, string> {
  return { ...inheritedEnv(parts.hostEnv), ...parts.run, ...parts.secrets, ...parts.stage };
}
