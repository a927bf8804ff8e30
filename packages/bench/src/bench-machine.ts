/** What `npm run bench` reads of the machine and its processes, and the bare express server it compares ingest with. */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus } from "node:os";
import { SERVICE_ENTRY_POINTS } from "flowmeter/services";

/** Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used, from /proc; NaN where /proc is not there. */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** The most resident memory a process has had (VmHWM), in bytes. */
export function peakRssBytes(pid: number | undefined): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export function machineDescription(chdbVersion: string, redisVersion: string): string {
  return `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "unknown CPU"}), Node ${process.versions.node}, chDB ${chdbVersion}, Redis ${redisVersion}`;
}

/**
 * A bare express 5 hello-world on `port` (POST /ingest answers 202 without reading the body): the requests/s it
 * reaches is the yardstick for ingest's one-entry-per-request rate. express is resolved where ingest resolves it.
 */
export function startExpressHelloWorld(port: number): ChildProcess {
  const express = createRequire(SERVICE_ENTRY_POINTS.ingest()).resolve("express");
  const script = `
    const express = require(${JSON.stringify(express)});
    const app = express();
    app.post("/ingest", (request, response) => { response.status(202).json({ accepted: 1 }); });
    app.get("/healthz", (request, response) => { response.json({ status: "ok" }); });
    app.listen(${port}, "127.0.0.1");`;
  return spawn(process.execPath, ["-e", script], { stdio: "inherit" });
}

/** A process's resident memory now (VmRSS), in bytes. */
export function rssBytes(pid: number | undefined): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
