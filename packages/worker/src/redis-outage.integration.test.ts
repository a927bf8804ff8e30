/**
 * The worker with its Redis gone, or never there: /metrics still answers at once (so Prometheus sees Redis down, not
 * the worker) with flowmeter_worker_redis_up 0, /healthz says what is unreachable, and SIGTERM exits within the
 * shutdown timeout. Runs the built worker (dist/main.js).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, startPrivateRedis, tempDir, waitFor } from "@flowmeter/test-utils";

const dist = fileURLToPath(new URL("../dist/", import.meta.url));

describe("worker without Redis", () => {
  const data = tempDir("worker-redis-outage");
  let worker: ChildProcess | undefined;
  afterAll(() => {
    if (worker !== undefined && worker.exitCode === null && worker.signalCode === null) worker.kill("SIGKILL");
    data.remove();
  });

  it("started while Redis is down, listens at once: /metrics says redis_up 0 and /healthz names Redis", async () => {
    const port = await freePort();
    const nobody = await freePort();
    const env = {
      ...process.env,
      FLOWMETER_DATA_DIR: data.path,
      QUEUE_PREFIX: "fmtest-worker-no-redis",
      REDIS_URL: `redis://:s3cret@127.0.0.1:${nobody}`,
      WORKER_METRICS_PORT: String(port),
      WORKER_SHUTDOWN_TIMEOUT_MS: "2000",
      LOG_LEVEL: "error",
    };
    expect(spawnSync(process.execPath, [`${dist}migrate-main.js`], { env, stdio: "inherit" }).status).toBe(0);
    worker = spawn(process.execPath, [`${dist}main.js`], { env, stdio: ["ignore", "inherit", "inherit"] });
    const metrics = await waitFor(
      async () => {
        const started = Date.now();
        const text = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(1000) }).then(
          (response) => response.text(),
          () => undefined,
        );
        return text === undefined ? undefined : { text, ms: Date.now() - started };
      },
      { what: "the worker listening" },
    );
    expect(metrics.text).toContain("flowmeter_worker_redis_up 0");
    expect(metrics.ms).toBeLessThan(1000);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(503);
    const body = (await health.json()) as { code: string; message: string };
    expect(body.code).toBe("UNAVAILABLE");
    expect(body.message).toContain(`Redis is not reachable (redis://:***@127.0.0.1:${nobody}`);
    expect(body.message).not.toContain("s3cret");
    const exited = new Promise<void>((resolve) => worker?.once("exit", () => resolve()));
    worker.kill("SIGTERM");
    await exited;
  }, 60_000);

  it("answers /metrics within a second with redis_up 0, and stops within its shutdown timeout", async () => {
    const redis = await startPrivateRedis(await freePort());
    const port = await freePort();
    const env = {
      ...process.env,
      FLOWMETER_DATA_DIR: data.path,
      QUEUE_PREFIX: "fmtest-worker-outage",
      REDIS_URL: redis.url,
      WORKER_METRICS_PORT: String(port),
      WORKER_SHUTDOWN_TIMEOUT_MS: "2000",
      LOG_LEVEL: "error",
    };
    expect(spawnSync(process.execPath, [`${dist}migrate-main.js`], { env, stdio: "inherit" }).status).toBe(0);
    worker = spawn(process.execPath, [`${dist}main.js`], { env, stdio: ["ignore", "inherit", "inherit"] });
    const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(1000) })).text();
    await waitFor(async () => ((await metrics().catch(() => "")).includes("flowmeter_worker_redis_up 1") ? true : undefined), {
      what: "the worker up with Redis",
    });
    expect(await metrics()).toMatch(/flowmeter_worker_queue_depth\{queue="runs",state="waiting"\} 0/);

    await redis.kill();
    await waitFor(async () => ((await metrics()).includes("flowmeter_worker_redis_up 0") ? true : undefined), { what: "redis_up 0" });
    const started = Date.now();
    await metrics();
    expect(Date.now() - started).toBeLessThan(1000);

    const exited = new Promise<number>((resolve) => worker?.once("exit", () => resolve(Date.now())));
    const signalled = Date.now();
    worker.kill("SIGTERM");
    // WORKER_SHUTDOWN_TIMEOUT_MS (2 s) plus the 3 s grace for closing connections, at most.
    expect((await exited) - signalled).toBeLessThan(6_000);
  }, 60_000);
});
