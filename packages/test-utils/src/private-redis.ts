import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { waitFor } from "./wait-for.js";

export interface PrivateRedis {
  url: string;
  port: number;
  process: ChildProcess;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
}

/**
 * A redis-server of the test's own on `port`, for tests that stop and restart Redis. With `dir`, it keeps an
 * append-only file there (fsync on every write), so a restart on the same port and dir finds the data again.
 */
export async function startPrivateRedis(port: number, dir?: string): Promise<PrivateRedis> {
  const persistence = dir === undefined ? ["--appendonly", "no"] : ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir];
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence], { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  await waitFor(() => (output.includes("Ready to accept connections") ? true : undefined), {
    timeoutMs: 10_000,
    intervalMs: 20,
    what: "redis-server to start",
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    process: child,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    },
  };
}
