/**
 * Issue 21 item 2: after Redis fails, what ingest spooled reaches the queue within seconds of Redis answering again,
 * with no further request to set it off: Redis frozen (SIGSTOP: the connection stays open, nothing answers) and
 * Redis killed and started again (connections refused meanwhile). A private redis-server of the test's own.
 */
import { readdirSync } from "node:fs";
import { createLogger } from "@flowmeter/platform";
import { JOB_CATALOG, type ClientTelemetryJob } from "@flowmeter/shared";
import { freePort, parentEntry, postIngest, startPrivateRedis, tempDir, testQueuePrefix, waitFor, type PrivateRedis } from "@flowmeter/test-utils";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseIngestConfig } from "./config.js";
import { startIngestServer, type IngestServer } from "./server.js";

describe("spool replay after a Redis failure, with no further traffic", () => {
  const data = tempDir("ingest-spool-replay");
  const prefix = testQueuePrefix("ingest-spool-replay");
  let redis: PrivateRedis;
  let server: IngestServer;
  let reader: Queue<ClientTelemetryJob>;

  beforeAll(async () => {
    redis = await startPrivateRedis(await freePort());
    reader = new Queue<ClientTelemetryJob>(JOB_CATALOG.clientTelemetry.queue, { connection: { url: redis.url, maxRetriesPerRequest: null }, prefix });
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

  const idsOnQueue = async (): Promise<Set<string>> => new Set((await reader.getWaiting(0, -1)).flatMap((job) => job.data.ids ?? []));
  const spoolFiles = (): string[] => readdirSync(`${data.path}/spool`);

  /** Posts `count` entries, one request each, and checks every answer was 202 within the real client's 2 s. */
  async function postEntries(count: number): Promise<string[]> {
    const entries = Array.from({ length: count }, () => parentEntry());
    const started = Date.now();
    const statuses = await Promise.all(entries.map((entry) => postIngest(server.port, JSON.stringify(entry))));
    expect(statuses).toEqual(entries.map(() => 202));
    expect(Date.now() - started).toBeLessThan(2000);
    return entries.map((entry) => entry.insert_id ?? "");
  }

  /** Waits, with no further request, until every id is on the queue; how long that took after `fromMs`. */
  async function replayedWithin(ids: readonly string[], fromMs: number): Promise<number> {
    await waitFor(
      async () => {
        const onQueue = await idsOnQueue();
        return ids.every((id) => onQueue.has(id)) ? true : undefined;
      },
      { timeoutMs: 15_000, what: `the spooled entries on the queue (spool files: ${spoolFiles().join(", ")})` },
    );
    const tookMs = Date.now() - fromMs;
    await waitFor(() => (spoolFiles().length === 0 ? true : undefined), { what: "the spool files to be removed" });
    expect((await server.ingest.metrics.spooledRequests.get()).values[0]?.value).toBe(0);
    return tookMs;
  }

  it("replays what was spooled while Redis was frozen, once it answers again", async () => {
    const before = await postEntries(1);
    await waitFor(async () => ((await idsOnQueue()).has(before[0] ?? "") ? true : undefined), { what: "the entry sent before the freeze" });

    redis.process.kill("SIGSTOP");
    const duringFreeze = await postEntries(20);
    expect(spoolFiles().length).toBeGreaterThan(0);
    // Frozen a while longer: replay attempts find no answer meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    redis.process.kill("SIGCONT");
    const tookMs = await replayedWithin(duringFreeze, Date.now());
    console.log(`frozen: replayed ${tookMs} ms after SIGCONT`);
    expect(tookMs).toBeLessThan(5000);
  }, 60_000);

  it("replays what was spooled while Redis refused connections, once it is back", async () => {
    const port = redis.port;
    await redis.kill();
    const duringOutage = await postEntries(20);
    expect(spoolFiles().length).toBeGreaterThan(0);
    redis = await startPrivateRedis(port); // an empty server: only what is replayed will be on the queue
    const tookMs = await replayedWithin(duringOutage, Date.now());
    console.log(`refused: replayed ${tookMs} ms after redis was back`);
    expect(tookMs).toBeLessThan(5000);
  }, 60_000);
});
