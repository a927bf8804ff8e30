import { Writable } from "node:stream";
import { Queue, Worker } from "bullmq";
import { createRedis } from "@flowmeter/platform";
import { JOB_CATALOG, queuesConsumedBy } from "@flowmeter/shared";
import { deleteQueuePrefix, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";
import { afterAll, describe, expect, it } from "vitest";
import { failed } from "./failed.js";

function capture(): { stream: Writable; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

describe("flowmeter failed", () => {
  const prefix = testQueuePrefix("failed");
  const redis = createRedis(testRedisUrl(), "worker");
  const queue = new Queue(JOB_CATALOG.clientTelemetry.queue, { connection: redis, prefix });
  afterAll(async () => {
    await queue.close();
    redis.disconnect();
    await deleteQueuePrefix(prefix);
  });

  it("lists the failed jobs with their error and moves them back to waiting with --redrive", async () => {
    const job = await queue.add("cli_invocations", { entries: [], receivedAtMs: Date.now() }, { attempts: 1, removeOnFail: false });
    const worker = new Worker(JOB_CATALOG.clientTelemetry.queue, async () => Promise.reject(new Error("cannot read this payload")), {
      connection: redis,
      prefix,
    });
    await waitFor(async () => ((await queue.getJobState(job.id ?? "")) === "failed" ? true : undefined), { what: "the job failed" });
    await worker.close();

    const env = { REDIS_URL: testRedisUrl(), QUEUE_PREFIX: prefix };
    const listed = capture();
    expect(await failed([], env, listed.stream)).toBe(0);
    // Every other queue the worker consumes (JOB_CATALOG), each with nothing failed.
    const others = queuesConsumedBy("worker", 1).filter((name) => name !== JOB_CATALOG.clientTelemetry.queue);
    expect(others).toContain("run-events");
    expect(listed.text()).toBe(
      `client-telemetry: 1 failed job\n  job ${job.id}: 1 attempts, cannot read this payload\n${others.map((name) => `${name}: 0 failed jobs\n`).join("")}`,
    );

    const redriven = capture();
    expect(await failed(["--redrive"], env, redriven.stream)).toBe(0);
    expect(redriven.text()).toContain("  moved 1 back to waiting\n");
    expect(await queue.getJobState(job.id ?? "")).toBe("waiting");
  });
});
