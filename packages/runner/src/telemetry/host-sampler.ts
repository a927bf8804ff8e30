/**
 * Host metrics of one run, read from /proc (Linux). A sample covers the runner process itself (shared by all
 * the runs it executes at once) plus the processes of the run's running stages: every process in a stage's cgroup
 * where it has one (execution/stage-cgroup.ts), else the live process tree of the stage's process:
 * - rss_bytes: runner RSS + VmRSS of every live stage process and descendant;
 * - cpu_percent: CPU time used by those processes over the interval / wall time × 100 (100 = one core); from a
 *   stage's cgroup (cpu.stat, which also holds processes that started and ended between two samples) where it has
 *   one, else per process in clock ticks, taken as 100 per second (USER_HZ on Linux);
 * - io_read_bytes / io_write_bytes: cumulative storage bytes (/proc/<pid>/io read_bytes, write_bytes) of the run's
 *   stage processes, each byte once. Linux adds a reaped child's counts to its parent's, so the sum over the live
 *   processes of the trees counts every byte once at any instant; a process that is gone keeps its last reading in
 *   the totals only when its parent is not in the trees (the stage's own process, reaped by the runner, or an
 *   orphan), since otherwise its parent now holds its bytes. The runner's own counters are left out: they hold
 *   every stage it ever reaped, of this run and of others. Bytes a stage process moves after the last sample
 *   before it exits are not seen (at most one sample interval's worth). The counters never go down within a run.
 * Without /proc (not Linux) only the runner's own RSS and CPU are reported; IO is 0.
 */
import { readFileSync, readdirSync } from "node:fs";
import type { HostMetrics } from "@flowmeter/shared";

const CLOCK_TICKS_PER_SECOND = 100;

/** A running stage as the sampler sees it: its first process, and its cgroup where it has one. */
export interface SampledStage {
  pid: number;
  cgroup?: { path: string; pids(): number[]; cpuMicros(): number | undefined };
}

interface ProcReading {
  ppid: number;
  rssBytes: number;
  cpuTicks: number;
  readBytes: number;
  writeBytes: number;
}

function readProc(pid: number): ProcReading | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return undefined;
    const ppid = Number(fields[1] ?? 0);
    const cpuTicks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    const { readBytes, writeBytes } = readIo(pid);
    return { ppid, rssBytes: rssKb * 1024, cpuTicks, readBytes, writeBytes };
  } catch {
    return undefined; // exited between listing and reading, or no /proc
  }
}

function readIo(pid: number): { readBytes: number; writeBytes: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, "utf8");
    return {
      readBytes: Number(/^read_bytes:\s+(\d+)/m.exec(io)?.[1] ?? 0),
      writeBytes: Number(/^write_bytes:\s+(\d+)/m.exec(io)?.[1] ?? 0),
    };
  } catch {
    return { readBytes: 0, writeBytes: 0 };
  }
}

/** `pid` and all its live descendants, through /proc/<pid>/task/<tid>/children. */
export function processTree(pid: number): number[] {
  const found: number[] = [];
  const pending = [pid];
  while (pending.length > 0 && found.length < 10_000) {
    const next = pending.pop() as number;
    found.push(next);
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${next}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        for (const child of readFileSync(`/proc/${next}/task/${task}/children`, "utf8").split(" ")) {
          if (child !== "") pending.push(Number(child));
        }
      } catch {
        // task gone, or a kernel without CONFIG_PROC_CHILDREN: the tree is the processes found so far
      }
    }
  }
  return found;
}

export class HostSampler {
  private lastWallMs: number;
  private lastSelfCpu = process.cpuUsage();
  private readonly lastTicks = new Map<number, number>();
  /** cpu.stat usage_usec of each stage cgroup at the last sample. */
  private readonly lastCgroupCpu = new Map<string, number>();
  private readonly lastIo = new Map<number, { ppid: number; readBytes: number; writeBytes: number }>();
  private exitedReadBytes = 0;
  private exitedWriteBytes = 0;
  private reportedReadBytes = 0;
  private reportedWriteBytes = 0;

  /** `stages`: the run's running stages (a stage's process stands for its tree, or its cgroup for all of it). */
  constructor(
    private readonly stages: () => readonly SampledStage[],
    nowMs: number = Date.now(),
  ) {
    this.lastWallMs = nowMs;
  }

  sample(nowMs: number = Date.now()): HostMetrics {
    const wallMs = Math.max(1, nowMs - this.lastWallMs);
    this.lastWallMs = nowMs;
    const selfCpu = process.cpuUsage(this.lastSelfCpu);
    this.lastSelfCpu = process.cpuUsage();
    let cpuMs = (selfCpu.user + selfCpu.system) / 1000;
    let rssBytes = process.memoryUsage.rss();

    const seen = new Set<number>();
    const cgroupsSeen = new Set<string>();
    for (const stage of this.stages()) {
      const cgroupCpu = stage.cgroup?.cpuMicros();
      if (stage.cgroup !== undefined && cgroupCpu !== undefined) {
        cpuMs += (cgroupCpu - (this.lastCgroupCpu.get(stage.cgroup.path) ?? 0)) / 1000;
        this.lastCgroupCpu.set(stage.cgroup.path, cgroupCpu);
        cgroupsSeen.add(stage.cgroup.path);
      }
      const pids = stage.cgroup === undefined ? processTree(stage.pid) : [stage.pid, ...stage.cgroup.pids()];
      for (const pid of pids) {
        if (seen.has(pid)) continue;
        const reading = readProc(pid);
        if (reading === undefined) continue;
        seen.add(pid);
        rssBytes += reading.rssBytes;
        if (cgroupCpu === undefined) cpuMs += ((reading.cpuTicks - (this.lastTicks.get(pid) ?? 0)) * 1000) / CLOCK_TICKS_PER_SECOND;
        this.lastTicks.set(pid, reading.cpuTicks);
        this.lastIo.set(pid, { ppid: reading.ppid, readBytes: reading.readBytes, writeBytes: reading.writeBytes });
      }
    }
    // Processes gone since the last sample: a parent still in the trees has taken their counts; otherwise keep
    // their last reading.
    for (const [pid, io] of this.lastIo) {
      if (seen.has(pid)) continue;
      if (!seen.has(io.ppid)) {
        this.exitedReadBytes += io.readBytes;
        this.exitedWriteBytes += io.writeBytes;
      }
      this.lastIo.delete(pid);
      this.lastTicks.delete(pid);
    }
    for (const path of this.lastCgroupCpu.keys()) if (!cgroupsSeen.has(path)) this.lastCgroupCpu.delete(path);
    let readBytes = this.exitedReadBytes;
    let writeBytes = this.exitedWriteBytes;
    for (const io of this.lastIo.values()) {
      readBytes += io.readBytes;
      writeBytes += io.writeBytes;
    }
    // A child reaped between reading its parent and reading it is missing from this sample only.
    this.reportedReadBytes = Math.max(this.reportedReadBytes, readBytes);
    this.reportedWriteBytes = Math.max(this.reportedWriteBytes, writeBytes);
    return {
      rss_bytes: rssBytes,
      cpu_percent: Math.round((cpuMs / wallMs) * 10_000) / 100,
      io_read_bytes: this.reportedReadBytes,
      io_write_bytes: this.reportedWriteBytes,
    };
  }
}
