import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { HostSampler, processTree } from "./host-sampler.js";

describe("HostSampler", () => {
  it("finds a stage's process tree", async () => {
    const child = spawn("sh", ["-c", "sleep 2 & sleep 2; wait"], { stdio: "ignore" });
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const tree = processTree(child.pid as number);
      expect(tree[0]).toBe(child.pid);
      expect(tree.length).toBeGreaterThanOrEqual(3);
    } finally {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
  });

  it("covers the runner and the stage processes: RSS adds up, CPU shows a busy child, IO never goes down", async () => {
    const busy = spawn(process.execPath, ["-e", "const end = Date.now() + 400; while (Date.now() < end) {}"], { stdio: "ignore" });
    let pids: number[] = [busy.pid as number];
    const sampler = new HostSampler(() => pids);
    const alone = new HostSampler(() => []);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const withChild = sampler.sample();
    const runnerOnly = alone.sample();
    expect(withChild.rss_bytes).toBeGreaterThan(runnerOnly.rss_bytes + 10_000_000); // a node child is tens of MB
    expect(withChild.cpu_percent).toBeGreaterThan(runnerOnly.cpu_percent + 20); // the spinning child, on top of the runner
    await once(busy, "exit");
    pids = [];
    const after = sampler.sample();
    expect(after.io_read_bytes).toBeGreaterThanOrEqual(withChild.io_read_bytes);
    expect(after.io_write_bytes).toBeGreaterThanOrEqual(withChild.io_write_bytes);
  });
});
