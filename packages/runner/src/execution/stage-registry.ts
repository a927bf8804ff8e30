/**
 * What keeps a stage's processes from outliving their stage, their run and their runner:
 * - where the host lets the runner create cgroups (v2), each stage attempt runs in a cgroup of its own
 *   (stage-cgroup.ts): killing it ends every process the stage started, whatever it did to leave its group or tree;
 * - everywhere, each stage runs in a process group of its own (stage-process.ts), and every process seen in its tree is
 *   remembered with its start time, so a descendant that left the group (`setsid`) is still killed when the stage
 *   ends, times out or is cancelled;
 * - each live stage has a record on disk (`<dataDir>/stages/<pid>.json`: the runner's pid and start time, the
 *   stage's group and remembered processes). A runner starting on the host kills what the records of dead runners
 *   name, before it takes work, so a runner killed with SIGKILL leaves no stage running for long.
 * What it cannot catch: without a cgroup, a process that leaves the group and the tree between two scans (a double
 * fork within one `STAGE_SCAN_MS`); with one, a process that moves itself to another cgroup (it needs write access to
 * the cgroup tree, i.e. a stage running as root). Nobody kills a dead runner's stages until a runner starts again on
 * its host. Start times guard against pid reuse.
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@flowmeter/platform";
import { processTree } from "../telemetry/host-sampler.js";
import { startTimeOf } from "./process-identity.js";
import { StageCgroup, detectStageCgroups, type StageCgroups } from "./stage-cgroup.js";

/** How often a running stage's process tree is scanned for new descendants. */
export const STAGE_SCAN_MS = 500;

interface KnownProcess {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot; tells a process from a later one with its pid. */
  startTime: string;
}

interface StageRecord {
  runner: KnownProcess;
  /** The run records' `runner_id` of that runner (absent in records of older runners). */
  runnerId?: string;
  runId: string;
  stage: string;
  processGroup: number;
  processes: KnownProcess[];
  /** The stage's cgroup directory, when it has one. */
  cgroup?: string;
}

/** True when the process was there to signal. */
function killKnown(process_: KnownProcess, signal: NodeJS.Signals): boolean {
  if (startTimeOf(process_.pid) !== process_.startTime) return false;
  try {
    process.kill(process_.pid, signal);
    return true;
  } catch {
    return false; // gone meanwhile
  }
}

/** True when the group had a process to signal. */
function killGroup(group: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-group, signal);
    return true;
  } catch {
    return false; // ESRCH: the group is gone
  }
}

/** One live stage: the processes seen in its tree, on disk while it runs. */
export class TrackedStage {
  private readonly known = new Map<number, KnownProcess>();
  private readonly timer: NodeJS.Timeout;
  private readonly record: Omit<StageRecord, "processes" | "runner">;

  constructor(
    private readonly registry: StageRegistry | undefined,
    record: Omit<StageRecord, "processes" | "runner" | "cgroup">,
    private readonly cgroup: StageCgroup | undefined,
  ) {
    this.record = cgroup === undefined ? record : { ...record, cgroup: cgroup.path };
    this.scan();
    this.timer = setInterval(() => this.scan(), STAGE_SCAN_MS);
    this.timer.unref();
  }

  /** Remembers the processes now in the stage's tree. */
  scan(): void {
    let added = false;
    for (const pid of processTree(this.record.processGroup)) {
      if (this.known.has(pid)) continue;
      const startTime = startTimeOf(pid);
      if (startTime === undefined) continue;
      this.known.set(pid, { pid, startTime });
      added = true;
    }
    if (added) this.registry?.write({ ...this.record, processes: [...this.known.values()] });
  }

  /** Signals the stage's cgroup, its group and every process remembered in its tree. */
  signal(signal: NodeJS.Signals): void {
    this.cgroup?.signal(signal);
    killGroup(this.record.processGroup, signal);
    for (const known of this.known.values()) killKnown(known, signal);
  }

  /** The stage ended: kill what is left of it and drop its record. */
  end(): void {
    clearInterval(this.timer);
    this.signal("SIGKILL");
    this.cgroup?.remove();
    this.registry?.remove(this.record.processGroup);
  }
}

/** A runner on this host, as `runners/<runner_id>.json` records it while it lives. */
interface RunnerRecord extends KnownProcess {
  runnerId: string;
}

/** Runners of this host found dead, and when their stages' processes were killed (`<run_id>\0<stage>` → ms). */
export interface DeadRunners {
  runnerIds: ReadonlySet<string>;
  stageKilledAtMs: ReadonlyMap<string, number>;
}

/**
 * The records of the live stages of the runners on this host (`dir`, one file per stage), and of the runners
 * themselves (`dir/runners/<runner_id>.json`): a runner whose pid and start time no longer match is dead for certain, so
 * its runs can be ended at once instead of when their lease runs out.
 */
export class StageRegistry {
  private readonly runner: KnownProcess;
  private readonly cgroups: StageCgroups | undefined;
  private readonly runnerId: string | undefined;
  /** When killOrphans killed the stages of dead runners, until their runs are ended. */
  private readonly killedAtMs = new Map<string, number>();

  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
    options: { cgroups?: boolean; runnerId?: string } = {},
  ) {
    mkdirSync(dir, { recursive: true });
    this.runner = { pid: process.pid, startTime: startTimeOf(process.pid) ?? "" };
    this.cgroups = options.cgroups === false ? undefined : detectStageCgroups();
    this.runnerId = options.runnerId;
    if (this.runnerId !== undefined) {
      const record: RunnerRecord = { ...this.runner, runnerId: this.runnerId };
      mkdirSync(join(dir, "runners"), { recursive: true });
      writeFileSync(join(dir, "runners", `${this.runnerId}.json`), JSON.stringify(record));
    }
  }

  /** This runner stopped cleanly: nothing of it is left to end. */
  close(): void {
    if (this.runnerId !== undefined) rmSync(join(this.dir, "runners", `${this.runnerId}.json`), { force: true });
  }

  /**
   * Kills what dead runners of this host left running (killOrphans) and names those runners. Their records stay
   * until `forget`, which the reconciler calls once none of their runs is active any more.
   */
  deadRunners(): DeadRunners {
    this.killOrphans();
    const runnerIds = new Set<string>();
    for (const name of this.runnerFiles()) {
      try {
        const record = JSON.parse(readFileSync(join(this.dir, "runners", name), "utf8")) as RunnerRecord;
        if (startTimeOf(record.pid) !== record.startTime) runnerIds.add(record.runnerId);
      } catch {
        rmSync(join(this.dir, "runners", name), { force: true });
      }
    }
    return { runnerIds, stageKilledAtMs: this.killedAtMs };
  }

  private runnerFiles(): string[] {
    try {
      return readdirSync(join(this.dir, "runners")).filter((file) => file.endsWith(".json"));
    } catch {
      return []; // no runner recorded itself here yet
    }
  }

  /** Drops the record of a dead runner whose runs have all ended, and what was kept of its stages. */
  forget(runnerId: string, runIds: readonly string[]): void {
    for (const name of this.runnerFiles()) {
      try {
        const record = JSON.parse(readFileSync(join(this.dir, "runners", name), "utf8")) as RunnerRecord;
        if (record.runnerId === runnerId && startTimeOf(record.pid) !== record.startTime) rmSync(join(this.dir, "runners", name), { force: true });
      } catch {
        // removed meanwhile
      }
    }
    for (const key of this.killedAtMs.keys()) if (runIds.some((runId) => key.startsWith(`${runId}\0`))) this.killedAtMs.delete(key);
  }

  /** How stages are contained here: "cgroup" (v2, one per stage attempt) or "process-group" (plus tree scans). */
  get mechanism(): "cgroup" | "process-group" {
    return this.cgroups === undefined ? "process-group" : "cgroup";
  }

  /** Where stage cgroups are made, when they are. */
  get cgroupDir(): string | undefined {
    return this.cgroups?.baseDir;
  }

  /** A cgroup for a stage attempt about to start, where the host allows one. */
  createCgroup(): StageCgroup | undefined {
    return this.cgroups?.create();
  }

  write(record: Omit<StageRecord, "runner">): void {
    const path = join(this.dir, `${record.processGroup}.json`);
    try {
      writeFileSync(`${path}.tmp`, JSON.stringify({ ...record, runner: this.runner, ...(this.runnerId === undefined ? {} : { runnerId: this.runnerId }) }));
      renameSync(`${path}.tmp`, path);
    } catch (error) {
      this.logger.warn("could not record a stage's processes", { path, error: error instanceof Error ? error.message : String(error) });
    }
  }

  remove(processGroup: number): void {
    rmSync(join(this.dir, `${processGroup}.json`), { force: true });
  }

  /** Kills the stages of runners that are gone (killed, crashed) and drops their records; returns how many. */
  killOrphans(): number {
    let killed = 0;
    this.cgroups?.sweep();
    for (const name of readdirSync(this.dir).filter((file) => file.endsWith(".json"))) {
      const path = join(this.dir, name);
      let record: StageRecord;
      try {
        record = JSON.parse(readFileSync(path, "utf8")) as StageRecord;
      } catch {
        rmSync(path, { force: true });
        continue;
      }
      if (startTimeOf(record.runner.pid) === record.runner.startTime) continue; // its runner is alive
      const cgroup = record.cgroup === undefined ? undefined : new StageCgroup(record.cgroup);
      const cgroupHeld = (cgroup?.pids().length ?? 0) > 0;
      cgroup?.remove();
      const groupHeld = killGroup(record.processGroup, "SIGKILL");
      const knownHeld = record.processes.map((known) => killKnown(known, "SIGKILL")).some(Boolean);
      rmSync(path, { force: true });
      // A stage still running when its runner died ran until now; one already gone, until an unknown earlier time.
      if (cgroupHeld || groupHeld || knownHeld) this.killedAtMs.set(`${record.runId}\0${record.stage}`, Date.now());
      killed += 1;
      this.logger.warn("killed the processes of a stage whose runner is gone", {
        run_id: record.runId,
        stage: record.stage,
        process_group: record.processGroup,
      });
    }
    return killed;
  }
}
