/**
 * An OTLP export answered 200 is durable through a Redis outage, as /ingest's entries are: while Redis is down or
 * frozen the export goes to ingest's `otlp` spool and reaches the otel queue once Redis answers again, with no
 * further request. A private redis-server of the test's own.
 */
import { readdirSync } from "node:fs";
import { createLogger } from "@flowmeter/platform";
import { JOB_CATALOG, type OtelJob } from "@flowmeter/shared";
import { freePort, startPrivateRedis, tempDir, testQueuePrefix, waitFor, type PrivateRedis } from "@flowmeter/test-utils";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseIngestConfig } from "../config.js";
import { startIngestServer, type IngestServer } from "../server.js";

describe("OTLP exports through a Redis outage", () => {
  const data = tempDir("ingest-otlp-spool");
  const prefix = testQueuePrefix("ingest-otlp-spool");
  let redis: PrivateRedis;
  let server: IngestServer;
  let reader: Queue<OtelJob>;

  beforeAll(async () => {
    redis = await startPrivateRedis(await freePort());
    reader = new Queue<OtelJob>(JOB_CATALOG.otel.queue, { connection: { url: redis.url, maxRetriesPerRequest: null }, prefix });
    reader.on("error", () => {});
    server = await startIngestServer(
      parseIngestConfig({ INGEST_PORT: "0", REDIS_URL: redis.url, QUEUE_PREFIX: prefix, FLOWMETER_DATA_DIR: data.path }),
      createLogger("ingest", "error", () => {}),
    );
  });

  afterAll(async () => {
    redis.process.kill("SIGCONT");
    await server.stop();
    await reader.close();
    await redis.kill();
    data.remove();
  });

  /** One OTLP/JSON logs export of `count` records, each body naming `tag` and its index. */
  async function exportLogs(tag: string, count: number): Promise<number> {
    const nowNanos = `${BigInt(Date.now()) * 1_000_000n}`;
    const logRecords = Array.from({ length: count }, (_, index) => ({
      timeUnixNano: nowNanos,
      severityText: "INFO",
      severityNumber: 9,
      body: { stringValue: `${tag} ${index}` },
    }));
    const body = {
      resourceLogs: [{ resource: { attributes: [{ key: "service.name", value: { stringValue: "spool-test" } }] }, scopeLogs: [{ logRecords }] }],
    };
    const response = await fetch(`http://127.0.0.1:${server.port}/v1/logs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    return response.status;
  }

  const bodiesOnQueue = async (): Promise<string[]> =>
    (await reader.getWaiting(0, -1)).flatMap((job) => (job.data.logs ?? []).map((row) => String((row as { Body?: unknown }).Body)));
  const spoolFiles = (): string[] => readdirSync(`${data.path}/spool`).filter((name) => name.startsWith("otlp-"));

  it("answers 200 while Redis is frozen or down, and the records reach the queue once it answers", async () => {
    expect(await exportLogs("before", 2)).toBe(200);
    await waitFor(async () => ((await bodiesOnQueue()).includes("before 1") ? true : undefined), { what: "the export sent before the outage" });

    redis.process.kill("SIGSTOP");
    expect(await exportLogs("frozen", 3)).toBe(200);
    expect(spoolFiles().length).toBeGreaterThan(0);
    redis.process.kill("SIGCONT");
    await waitFor(async () => ((await bodiesOnQueue()).includes("frozen 2") ? true : undefined), {
      timeoutMs: 15_000,
      what: "the export spooled while Redis was frozen, on the queue",
    });

    const port = redis.port;
    await redis.kill();
    expect(await exportLogs("down", 4)).toBe(200);
    redis = await startPrivateRedis(port); // an empty server: only what is replayed will be on the queue
    await waitFor(async () => ((await bodiesOnQueue()).filter((text) => text.startsWith("down ")).length === 4 ? true : undefined), {
      timeoutMs: 15_000,
      what: "the export spooled while Redis was down, on the queue",
    });
    await waitFor(() => (spoolFiles().every((name) => !name.endsWith(".draining")) ? true : undefined), { what: "the spool drained" });
  }, 60_000);
});
