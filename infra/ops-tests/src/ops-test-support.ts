/**
 * Support for the operations-kit tests in this folder (infra/ checks): repository paths, the commands the tests
 * launch, and the rule for the Prometheus binaries. Debian's `prometheus` package provides both `prometheus` and `promtool`. When they are
 * missing, CI (CI=true) fails the tests that need them; elsewhere those tests are skipped with the install command.
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../..");
export const INFRA_DIR = join(REPO_ROOT, "infra");

const require = createRequire(import.meta.url);

/** The `flowmeter` command as npm links it (the CLI package's `bin`), to run the way users do. */
export function flowmeterBin(): string {
  const manifest = require.resolve("flowmeter/package.json");
  const { bin } = JSON.parse(readFileSync(manifest, "utf8")) as { bin: { flowmeter: string } };
  return join(dirname(manifest), bin.flowmeter);
}

/** The runner service's entry point: the `./main` export of @flowmeter/runner. */
export function runnerMain(): string {
  return require.resolve("@flowmeter/runner/main");
}
export const PROMETHEUS_INSTALL_COMMAND = "apt-get install -y prometheus";

/** Absolute path of an executable on PATH, or undefined. */
export function findBinary(name: string, path = process.env["PATH"] ?? ""): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface ToolCheck {
  /** Absolute paths of the binaries found, by name. */
  paths: Record<string, string>;
  missing: string[];
  /** True when tests needing the binaries should be skipped (missing, and not in CI). */
  skip: boolean;
  /** A suffix for the describe title, saying why and how to fix. */
  note: string;
}

export function checkTools(names: readonly string[]): ToolCheck {
  const paths: Record<string, string> = {};
  const missing: string[] = [];
  for (const name of names) {
    const found = findBinary(name);
    if (found === undefined) missing.push(name);
    else paths[name] = found;
  }
  const inCi = process.env["CI"] === "true";
  const skip = missing.length > 0 && !inCi;
  const note = missing.length === 0 ? "" : ` (${missing.join(", ")} missing: ${PROMETHEUS_INSTALL_COMMAND})`;
  if (skip) process.stderr.write(`skipping tests that need ${missing.join(", ")}: install them with \`${PROMETHEUS_INSTALL_COMMAND}\`\n`);
  return { paths, missing, skip, note };
}

/** The path of a checked binary; throws (failing the test, as CI wants) when it is missing. */
export function toolPath(check: ToolCheck, name: string): string {
  const found = check.paths[name];
  if (found === undefined) throw new Error(`${name} is not installed; install it with \`${PROMETHEUS_INSTALL_COMMAND}\` (CI=true requires it)`);
  return found;
}
