/**
 * Redis unreachable for longer than a run's lease, in the middle of the run: the runner keeps running it, renews
 * its lease once Redis is back, and the run ends succeeded. Its own reconciler must not take the expired lease for
 * a dead runner's (runner_restarted).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, createRedis } from "@flowmeter/platform";
import { type RunEvent } from "@flowmeter/shared";
import { freePort, startPrivateRedis, tempDir, waitFor, type PrivateRedis } from "@flowmeter/test-utils";
import { parseRunnerConfig } from "../config.js";
import { startRunner, type RunningRunner } from "../start-runner.js";
import { followRun } from "./follow-run.js";
import { RunStore } from "../store/run-store.js";
import { submitRun } from "./submit-run.js";

const quiet = createLogger("runner", "error", () => {});
const LEASE_MS = 1000;

describe("a Redis outage longer than the lease (private redis-server with AOF)", () => {
  const dir = tempDir("redis-outage");
  const prefix = "fmtest-outage";
  let redis: PrivateRedis;
  let runner: RunningRunner;

  beforeAll(async () => {
    redis = await startPrivateRedis(await freePort(), dir.path);
    runner = await startRunner(
      parseRunnerConfig({
        REDIS_URL: redis.url,
        QUEUE_PREFIX: prefix,
        RUNNER_PORT: "0",
        FLOWMETER_DATA_DIR: dir.path,
        RUNNER_LEASE_MS: String(LEASE_MS),
        RUNNER_RECONCILE_INTERVAL_MS: "100",
      }),
      quiet,
    );
  });

  afterAll(async () => {
    await runner.stop();
    await redis.kill();
    dir.remove();
  });

  it("does not fail its own healthy run, and the run ends succeeded", async () => {
    const producer = createRedis(redis.url, "producer");
    producer.on("error", () => {});
    const store = new RunStore(producer, { prefix });
    const { run_id: runId } = await submitRun(store, { name: "outage", stages: [{ name: "slow", driver: "shell", run: "sleep 8" }] });
    await store.close();
    producer.disconnect();
    const state = async () => ((await fetch(`${runner.url}/v1/runs/${runId}`).then((response) => response.json())) as { state: string }).state;
    await waitFor(async () => ((await state()) === "running" ? true : undefined), { what: "the run to start" });

    await redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 3 * LEASE_MS));
    redis = await startPrivateRedis(redis.port, dir.path);

    const events: RunEvent[] = [];
    for await (const event of followRun({ redisUrl: redis.url, queuePrefix: prefix }, runId)) events.push(event);
    expect(events.at(-1)?.event_type).toBe("run.finished");
    expect(events.filter((event) => event.event_type === "stage.failed")).toEqual([]);
    expect(await state()).toBe("succeeded");
  }, 30_000);
});
