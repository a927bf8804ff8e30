import { readFileSync } from "node:fs";

/** Field 22 of /proc/<pid>/stat: clock ticks after boot; tells a process from a later one with its pid. */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}
