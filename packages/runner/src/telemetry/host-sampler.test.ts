import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { waitFor } from "@flowmeter/test-utils";
import { detectStageCgroups } from "../execution/stage-cgroup.js";
import { HostSampler, processTree } from "./host-sampler.js";

const cgroups = detectStageCgroups();

describe("HostSampler", () => {
  it("finds a stage's process tree", async () => {
    const child = spawn("sh", ["-c", "sleep 2 & sleep 2; wait"], { stdio: "ignore" });
    try {
      // sh, then its two sleeps once it has started them.
      const tree = await waitFor(
        () => {
          const found = processTree(child.pid as number);
          return found.length >= 3 ? found : undefined;
        },
        { what: "the shell and its two sleeps" },
      );
      expect(tree[0]).toBe(child.pid);
    } finally {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
  });

  it("covers the runner and the stage processes: RSS adds up, CPU shows a busy child, IO never goes down", async () => {
    // Spins until killed, so the sampler sees it busy however slow the machine is.
    const busy = spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
    let pids: number[] = [busy.pid as number];
    const sampler = new HostSampler(() => pids.map((pid) => ({ pid })));
    const alone = new HostSampler(() => []);
    try {
      const withChild = await waitFor(
        () => {
          const sample = sampler.sample();
          const runnerOnly = alone.sample();
          // A node child is tens of MB; the spinning child's CPU comes on top of the runner's.
          return sample.rss_bytes > runnerOnly.rss_bytes + 10_000_000 && sample.cpu_percent > runnerOnly.cpu_percent + 20 ? sample : undefined;
        },
        { what: "the busy child in the samples", intervalMs: 100 },
      );
      busy.kill("SIGKILL");
      await once(busy, "exit");
      pids = [];
      const after = sampler.sample();
      expect(after.io_read_bytes).toBeGreaterThanOrEqual(withChild.io_read_bytes);
      expect(after.io_write_bytes).toBeGreaterThanOrEqual(withChild.io_write_bytes);
    } finally {
      busy.kill("SIGKILL");
    }
  });

  it.skipIf(cgroups === undefined)("with a stage cgroup, counts a daemon that left the stage's tree: its RSS and its CPU", async () => {
    const cgroup = cgroups?.create();
    if (cgroup === undefined) throw new Error("no cgroup");
    // The stage's shell starts a spinning node in a session of its own and exits: the daemon is in no tree of the stage.
    const command = cgroup.wrap({ file: "sh", args: ["-c", `(setsid ${process.execPath} -e 'for (;;) {}' &); exit 0`] });
    const shell = spawn(command.file, [...command.args], { stdio: "ignore" });
    const stage = { pid: shell.pid as number, cgroup };
    const withCgroup = new HostSampler(() => [stage]);
    const treeOnly = new HostSampler(() => [{ pid: stage.pid }]);
    try {
      await once(shell, "exit");
      await waitFor(
        () => {
          const counted = withCgroup.sample();
          const missed = treeOnly.sample();
          return counted.rss_bytes > missed.rss_bytes + 10_000_000 && counted.cpu_percent > missed.cpu_percent + 20 ? true : undefined;
        },
        { what: "the daemon's RSS and CPU counted through the cgroup", intervalMs: 100 },
      );
    } finally {
      cgroup.remove();
      await waitFor(() => (cgroup.pids().length === 0 ? true : undefined), { what: "the daemon killed with its cgroup" });
    }
  });
});
