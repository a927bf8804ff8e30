import { request as httpRequest } from "node:http";
import { createLogger } from "@flowmeter/platform";
import { JOB_CATALOG, type ClientTelemetryJob } from "@flowmeter/shared";
import { deleteQueuePrefix, parentEntry, tempDir, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";
import { Queue } from "bullmq";
import { afterEach, describe, expect, it } from "vitest";
import { parseIngestConfig } from "./config.js";
import { startIngestServer } from "./server.js";

const cleanups: Array<() => Promise<void>> = [];

/** A data directory of the test's own, removed afterwards. */
function dataDir(): string {
  const dir = tempDir("ingest-server");
  cleanups.push(async () => dir.remove());
  return dir.path;
}

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A POST on a fresh connection (no keep-alive agent), so the test leaves no client sockets behind. */
function postJson(port: number, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, path: "/ingest", method: "POST", agent: false, headers: { "content-type": "application/json" } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function socketCount(): number {
  return process.getActiveResourcesInfo().filter((name) => name === "TCPSocketWrap" || name === "TCPServerWrap").length;
}

describe("startIngestServer", () => {
  it("listens on loopback without keys, enqueues, and stop() releases its sockets", async () => {
    const prefix = testQueuePrefix("ingest-server");
    cleanups.push(() => deleteQueuePrefix(prefix));
    const reader = new Queue<ClientTelemetryJob>(JOB_CATALOG.clientTelemetry.queue, { connection: { url: testRedisUrl() }, prefix });
    cleanups.push(() => reader.close());
    await reader.waitUntilReady();
    const baseline = socketCount();

    const lines: string[] = [];
    const logger = createLogger("ingest", "info", (line) => lines.push(line));
    const server = await startIngestServer(
      parseIngestConfig({ INGEST_PORT: "0", INGEST_HOST: "0.0.0.0", REDIS_URL: testRedisUrl(), QUEUE_PREFIX: prefix, FLOWMETER_DATA_DIR: dataDir() }),
      logger,
    );
    expect(server.host).toBe("127.0.0.1");
    expect(lines.some((line) => line.includes("warn") && line.includes("loopback only") && line.includes("ignored_ingest_host=0.0.0.0"))).toBe(true);
    expect(lines.some((line) => line.includes("listening") && line.includes("auth=off"))).toBe(true);

    expect(socketCount()).toBeGreaterThan(baseline);

    const entry = parentEntry();
    // The producer connection may still be connecting; the first add waits for it.
    const res = await postJson(server.port, JSON.stringify(entry));
    expect(res.status).toBe(202);
    expect(JSON.parse(res.body)).toEqual({ accepted: 1, rejected: [] });
    const waiting = await reader.getWaiting(0, -1);
    expect(waiting.map((job) => job.data.ids)).toEqual([[entry.insert_id]]);

    await server.stop();
    await expect(postJson(server.port, "{}")).rejects.toThrow(/ECONNREFUSED/);
    await waitFor(() => (socketCount() <= baseline ? true : undefined), { timeoutMs: 5000, what: "sockets to close" });
  });

  it("starts and stops cleanly while Redis is unreachable, and answers 503 when it cannot spool either", async () => {
    const server = await startIngestServer(
      parseIngestConfig({ INGEST_PORT: "0", REDIS_URL: "redis://127.0.0.1:1", FLOWMETER_DATA_DIR: dataDir(), INGEST_SPOOL_MAX_BYTES: "0" }),
      createLogger("ingest", "error", () => {}),
    );
    const res = await postJson(server.port, JSON.stringify(parentEntry()));
    expect(res.status).toBe(503);
    const started = Date.now();
    await server.stop();
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("answers 202 while Redis is unreachable, spooling; a later start with Redis replays the spool into the queue", async () => {
    const prefix = testQueuePrefix("ingest-spool");
    cleanups.push(() => deleteQueuePrefix(prefix));
    const dir = dataDir();
    const quiet = createLogger("ingest", "error", () => {});
    const away = await startIngestServer(
      parseIngestConfig({ INGEST_PORT: "0", REDIS_URL: "redis://127.0.0.1:1", QUEUE_PREFIX: prefix, FLOWMETER_DATA_DIR: dir }),
      quiet,
    );
    const entries = [parentEntry(), parentEntry(), parentEntry()];
    for (const entry of entries) expect((await postJson(away.port, JSON.stringify(entry))).status).toBe(202);
    expect(away.ingest.metrics.spooledRequests).toBeDefined();
    expect(await away.ingest.metrics.registry.getSingleMetricAsString("flowmeter_ingest_spooled_requests")).toContain("flowmeter_ingest_spooled_requests 3");
    await away.stop();

    const reader = new Queue<ClientTelemetryJob>(JOB_CATALOG.clientTelemetry.queue, { connection: { url: testRedisUrl() }, prefix });
    cleanups.push(() => reader.close());
    const back = await startIngestServer(
      parseIngestConfig({ INGEST_PORT: "0", REDIS_URL: testRedisUrl(), QUEUE_PREFIX: prefix, FLOWMETER_DATA_DIR: dir }),
      quiet,
    );
    cleanups.push(() => back.stop());
    await waitFor(async () => ((await reader.getWaiting(0, -1)).flatMap((job) => job.data.ids ?? []).length === 3 ? true : undefined), {
      what: "the spooled entries on the queue",
    });
    const queued = (await reader.getWaiting(0, -1)).flatMap((job) => job.data.ids ?? []).sort();
    expect(queued).toEqual(entries.map((entry) => entry.insert_id).sort());
    expect(await back.ingest.metrics.registry.getSingleMetricAsString("flowmeter_ingest_spooled_requests")).toContain("flowmeter_ingest_spooled_requests 0");
  });

  it("fails to start when the port is taken, closing what it opened", async () => {
    const dir = dataDir();
    const prefix = testQueuePrefix("ingest-port-taken");
    cleanups.push(() => deleteQueuePrefix(prefix));
    const first = await startIngestServer(
      parseIngestConfig({ INGEST_PORT: "0", REDIS_URL: testRedisUrl(), QUEUE_PREFIX: prefix, FLOWMETER_DATA_DIR: dir }),
      createLogger("ingest", "error", () => {}),
    );
    cleanups.push(() => first.stop());
    await expect(
      startIngestServer(
        parseIngestConfig({ INGEST_PORT: String(first.port), REDIS_URL: testRedisUrl(), QUEUE_PREFIX: prefix, FLOWMETER_DATA_DIR: dir }),
        createLogger("ingest", "error", () => {}),
      ),
    ).rejects.toThrow(/EADDRINUSE/);
  });
});
