/**
 * A cgroup v2 per stage attempt, where the host lets the runner create one: every process a stage starts stays in
 * its cgroup whatever it does (setsid, double fork, daemonizing), so killing the cgroup (`cgroup.kill`) ends all of
 * them at once, and nothing of the stage can be missed by a scan. The stage joins its cgroup before its command
 * runs: it is started through `sh -c 'echo $$ > <cgroup>/cgroup.procs; exec "$@"'`.
 *
 * Layout: `<cgroup2 mount><the runner's own cgroup>/flowmeter-stages/<runner pid>.<its start time>-<n>`. Where the
 * cgroup2 hierarchy is missing or not writable, or a process cannot be moved into a cgroup there (a container
 * without delegation, cgroup v1 only), `detectStageCgroups` answers undefined and stages are contained by their
 * process group and the scans of stage-registry.ts.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { DriverCommand } from "../drivers/driver.js";
import { startTimeOf } from "./process-identity.js";

const REMOVE_RETRY_MS = 20;
const REMOVE_ATTEMPTS = 100;

/** Where the cgroup2 hierarchy is mounted, from /proc/self/mounts; undefined without one. */
function cgroup2Mount(): string | undefined {
  try {
    for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
      const [, mountPoint, type] = line.split(" ");
      if (type === "cgroup2" && mountPoint !== undefined) return mountPoint;
    }
  } catch {
    // not Linux
  }
  return undefined;
}

/** This process's cgroup v2 path ("0::/…" in /proc/self/cgroup). */
function ownCgroupPath(): string | undefined {
  try {
    const line = readFileSync("/proc/self/cgroup", "utf8")
      .split("\n")
      .find((entry) => entry.startsWith("0::"));
    return line?.slice(3);
  } catch {
    return undefined;
  }
}

const OWNER = `${process.pid}.${startTimeOf(process.pid) ?? "0"}`;
const STAGE_CGROUP_NAME = /^(\d+)\.(\d+)-\d+$/;
/** Names tried when one is taken (a cgroup a dead runner with this pid and start time left behind cannot be). */
const CREATE_ATTEMPTS = 100;

/** The cgroups of one runner's stages. */
export class StageCgroups {
  private next = 0;

  constructor(readonly baseDir: string) {}

  /**
   * Removes the empty stage cgroups of runners that are gone (a runner killed with SIGKILL, or one that exited before
   * the kernel emptied a cgroup, leaves them behind). One that still holds processes is left to the stage records
   * (stage-registry.ts), which kill them: a runner in another pid namespace sharing this cgroup tree would look gone.
   */
  sweep(): number {
    let removed = 0;
    for (const name of readdirSync(this.baseDir)) {
      const owner = STAGE_CGROUP_NAME.exec(name);
      if (owner === null || startTimeOf(Number(owner[1])) === owner[2]) continue;
      try {
        rmdirSync(join(this.baseDir, name));
        removed += 1;
      } catch {
        // still populated, or removed meanwhile
      }
    }
    return removed;
  }

  /** A new, empty cgroup for one stage attempt; undefined when it cannot be made (the stage then runs without). */
  create(): StageCgroup | undefined {
    for (let attempt = 0; attempt < CREATE_ATTEMPTS; attempt += 1) {
      const path = join(this.baseDir, `${OWNER}-${(this.next += 1)}`);
      try {
        mkdirSync(path);
        return new StageCgroup(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") return undefined;
      }
    }
    return undefined;
  }
}

/** Whether a process can be moved into `cgroup`: a child joins it and reads its own cgroup back. */
function canJoin(cgroup: StageCgroup): boolean {
  const probe = spawnSync("/bin/sh", ["-c", 'echo $$ > "$0/cgroup.procs" && cat /proc/self/cgroup', cgroup.path], { encoding: "utf8", timeout: 5000 });
  return probe.status === 0 && probe.stdout.includes(`/${basename(cgroup.path)}\n`);
}

/** Stage cgroups for this runner, or undefined where the host has no writable cgroup2 hierarchy for it. */
export function detectStageCgroups(): StageCgroups | undefined {
  const mount = cgroup2Mount();
  const own = ownCgroupPath();
  if (mount === undefined || own === undefined) return undefined;
  const baseDir = join(mount, own, "flowmeter-stages");
  try {
    mkdirSync(baseDir, { recursive: true });
    const cgroups = new StageCgroups(baseDir);
    const probe = cgroups.create();
    if (probe === undefined) return undefined;
    const joined = canJoin(probe);
    probe.remove();
    return joined ? cgroups : undefined;
  } catch {
    return undefined;
  }
}

export class StageCgroup {
  constructor(readonly path: string) {}

  /** The command, started so that its first process joins this cgroup before running it. */
  wrap(command: DriverCommand): DriverCommand {
    // If joining fails (the cgroup vanished), the stage still runs, contained by its process group.
    return { file: "/bin/sh", args: ["-c", 'echo $$ > "$0/cgroup.procs" 2>/dev/null; exec "$@"', this.path, command.file, ...command.args] };
  }

  /** The processes in the cgroup now. */
  pids(): number[] {
    try {
      return readFileSync(join(this.path, "cgroup.procs"), "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map(Number);
    } catch {
      return [];
    }
  }

  /** Sends `signal` to every process in the cgroup; SIGKILL through cgroup.kill where the kernel has it (5.14+). */
  signal(signal: NodeJS.Signals): void {
    if (signal === "SIGKILL" && this.killAll()) return;
    for (const pid of this.pids()) {
      try {
        process.kill(pid, signal);
      } catch {
        // gone meanwhile
      }
    }
  }

  private killAll(): boolean {
    try {
      writeFileSync(join(this.path, "cgroup.kill"), "1");
      return true;
    } catch {
      return false;
    }
  }

  /** CPU time used by every process that ran in the cgroup, in µs (cpu.stat, kept by the kernel without controllers). */
  cpuMicros(): number | undefined {
    try {
      const match = /^usage_usec (\d+)$/m.exec(readFileSync(join(this.path, "cpu.stat"), "utf8"));
      return match === null ? undefined : Number(match[1]);
    } catch {
      return undefined;
    }
  }

  /** Kills what is left and removes the cgroup once the kernel has emptied it (in the background). */
  remove(): void {
    this.signal("SIGKILL");
    let attempts = 0;
    const attempt = (): void => {
      try {
        rmdirSync(this.path);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EBUSY" && (attempts += 1) < REMOVE_ATTEMPTS) setTimeout(attempt, REMOVE_RETRY_MS).unref();
      }
    };
    attempt();
  }
}
