/**
 * Stage processes do not outlive their stage or their runner: a descendant that left the stage's process group
 * (`setsid`) dies when the stage is cancelled, a daemon that left group and tree at once dies with its stage where
 * stages get a cgroup, and the stages of a runner killed with SIGKILL are killed by the next runner on the host
 * (stage-registry.ts, stage-cgroup.ts).
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createLogger } from "@flowmeter/platform";
import { tempDir, waitFor } from "@flowmeter/test-utils";
import { DriverRegistry } from "../drivers/driver-registry.js";
import { validateWorkflow } from "../workflow/validate-workflow.js";
import { RunExecution } from "./run-execution.js";
import { StageRegistry } from "./stage-registry.js";

const quiet = createLogger("test", "error", () => {});
const dist = fileURLToPath(new URL("../../dist/execution/", import.meta.url));

/** Running, not a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !["Z", "X"].includes(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3));
  } catch {
    return false;
  }
}

/** The processes a stage record in `dir` remembers. */
function recorded(dir: string): number[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .flatMap((name) => (JSON.parse(readFileSync(join(dir, name), "utf8")) as { processes: { pid: number }[] }).processes.map((known) => known.pid));
}

/** A stage that starts a `sleep` in a session of its own, writes its pid to `pidFile`, then sleeps itself. */
const escaping = (pidFile: string) => `setsid sleep 300 & echo $! > ${pidFile}; sleep 300`;

/** A stage that starts a daemon (double fork into a session of its own) and exits at once, before any scan. */
const daemonizing = (pidFile: string) => `(setsid sh -c 'sleep 300 & echo $! > ${pidFile}' &); exit 0`;

const cgroupsHere = new StageRegistry(join(tmpdir(), `fm-probe-${process.pid}`), quiet).mechanism === "cgroup";

describe("stage containment", () => {
  it.skipIf(!cgroupsHere)("with a cgroup per stage, a daemon that left the stage's group and tree at once dies with the stage", async () => {
    const dir = tempDir("containment");
    try {
      const pidFile = join(dir.path, "daemon");
      const registry = new StageRegistry(join(dir.path, "stages"), quiet);
      expect(registry.mechanism).toBe("cgroup");
      const drivers = new DriverRegistry();
      const run = new RunExecution({
        runId: "daemon",
        workflow: validateWorkflow({ name: "daemon", stages: [{ name: "a", driver: "shell", run: daemonizing(pidFile) }] }, { drivers: drivers.names() }),
        drivers,
        output: { event: () => {}, sample: () => {}, log: () => {} },
        logger: quiet,
        killGraceMs: 200,
        stageRegistry: registry,
      });
      expect((await run.run()).status).toBe("succeeded");
      const daemon = Number(readFileSync(pidFile, "utf8"));
      await waitFor(() => (alive(daemon) ? undefined : true), { what: "the daemon gone with its stage" });
      await waitFor(() => (readdirSync(registry.cgroupDir ?? "").some((name) => name.startsWith(`${process.pid}.`)) ? undefined : true), {
        what: "the stage's cgroup removed",
      });
    } finally {
      dir.remove();
    }
  });

  it("kills a descendant that left the stage's process group when the run is cancelled", async () => {
    const dir = tempDir("containment");
    try {
      const pidFile = join(dir.path, "escaped");
      const registry = new StageRegistry(join(dir.path, "stages"), quiet);
      const drivers = new DriverRegistry();
      const run = new RunExecution({
        runId: "contained",
        workflow: validateWorkflow({ name: "escape", stages: [{ name: "a", driver: "shell", run: escaping(pidFile) }] }, { drivers: drivers.names() }),
        drivers,
        output: { event: () => {}, sample: () => {}, log: () => {} },
        logger: quiet,
        killGraceMs: 200,
        stageRegistry: registry,
      });
      const done = run.run();
      const escaped = await waitFor(
        () => (existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "" ? Number(readFileSync(pidFile, "utf8")) : undefined),
        {
          what: "the escaped process's pid",
        },
      );
      await waitFor(() => (recorded(join(dir.path, "stages")).includes(escaped) ? true : undefined), { what: "the escaped process on record" });
      run.cancel("test");
      expect((await done).status).toBe("cancelled");
      await waitFor(() => (alive(escaped) ? undefined : true), { what: "the escaped process gone" });
      expect(readdirSync(join(dir.path, "stages"))).toEqual([]);
    } finally {
      dir.remove();
    }
  });

  it("the next runner kills the stages of a runner killed with SIGKILL", async () => {
    const dir = tempDir("containment");
    const stages = join(dir.path, "stages");
    const pidFile = join(dir.path, "escaped");
    const script = `
      const { StageRegistry } = await import(${JSON.stringify(`${dist}stage-registry.js`)});
      const { StageProcess } = await import(${JSON.stringify(`${dist}stage-process.js`)});
      const logger = { debug() {}, info() {}, warn() {}, error() {} };
      const stage = new StageProcess({
        command: { file: "sh", args: ["-c", ${JSON.stringify(escaping(pidFile))}] },
        env: process.env, cwd: ${JSON.stringify(dir.path)}, killGraceMs: 100,
        registry: new StageRegistry(${JSON.stringify(stages)}, logger), label: { runId: "r", stage: "s" },
      });
      process.stdout.write(String(stage.pid) + "\\n");
      setInterval(() => {}, 1000);`;
    const runner = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const stagePid = await new Promise<number>((resolve) => runner.stdout.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
      const escaped = await waitFor(
        () => (existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "" ? Number(readFileSync(pidFile, "utf8")) : undefined),
        {
          what: "the escaped process's pid",
        },
      );
      await waitFor(() => (recorded(stages).includes(escaped) ? true : undefined), { what: "the escaped process on record" });

      runner.kill("SIGKILL");
      await new Promise((resolve) => runner.once("exit", resolve));
      expect(alive(stagePid)).toBe(true);
      expect(alive(escaped)).toBe(true);

      const next = new StageRegistry(stages, quiet);
      expect(next.killOrphans()).toBe(1);
      await waitFor(() => (alive(stagePid) || alive(escaped) ? undefined : true), { what: "the dead runner's stage processes gone" });
      expect(readdirSync(stages)).toEqual([]);
      if (next.cgroupDir !== undefined) {
        const cgroupDir = next.cgroupDir;
        await waitFor(() => (readdirSync(cgroupDir).some((name) => name.startsWith(`${runner.pid}.`)) ? undefined : true), {
          what: "the dead runner's stage cgroup removed",
        });
      }
    } finally {
      runner.kill("SIGKILL");
      dir.remove();
    }
  });

  it("leaves the stages of a live runner alone", () => {
    const dir = tempDir("containment");
    try {
      const registry = new StageRegistry(dir.path, quiet);
      registry.write({ runId: "r", stage: "s", processGroup: 999_999_999, processes: [] });
      expect(new StageRegistry(dir.path, quiet).killOrphans()).toBe(0);
      expect(readdirSync(dir.path)).toEqual(["999999999.json"]);
    } finally {
      dir.remove();
    }
  });
});
