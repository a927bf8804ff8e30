/**
 * Issue 21 item 3: the spool's disk fills up while Redis is away. A request whose spool append fails is answered
 * 503 UNAVAILABLE with Retry-After (never 500), counted, and logged once for the episode; nothing answered 202 is
 * torn or lost, and once Redis is back every 202'd entry is replayed onto the queue.
 *
 * The spool lives on a real 256 KiB tmpfs when the test may mount one (root). Where it may not, the test says so and
 * fills a simulated disk instead, through SpoolFile's documented seam (`writeText`, overridden to stop part-way with
 * ENOSPC once the spool holds DISK_BYTES), so the same assertions run either way.
 */
import { execFileSync } from "node:child_process";
import { createServer, request, type Server } from "node:http";
import type { FileHandle } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { createLogger, createRedis, SpoolFile } from "@flowmeter/platform";
import { JOB_CATALOG, type ClientTelemetryJob } from "@flowmeter/shared";
import { freePort, parentEntry, startPrivateRedis, tempDir, testQueuePrefix, waitFor, type PrivateRedis } from "@flowmeter/test-utils";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createIngestApp, type IngestApp } from "./app.js";
import { parseIngestConfig } from "./config.js";
import { closeIngestQueue, createIngestQueue, type AcceptedRequest } from "./ingest/client-telemetry-queue.js";

const DISK_BYTES = 256 * 1024;

/** The seam used when no tmpfs can be mounted: a spool on a disk of DISK_BYTES that fails writes as a full one does. */
class SmallDiskSpool extends SpoolFile<AcceptedRequest> {
  protected override async writeText(file: FileHandle, text: string): Promise<void> {
    const free = DISK_BYTES - (await this.bytes());
    if (Buffer.byteLength(text) <= free) return super.writeText(file, text);
    await super.writeText(file, Buffer.from(text).subarray(0, Math.max(0, free)).toString());
    throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  }
}

/** Mounts a tmpfs of DISK_BYTES at `dir`; the reason it could not, or undefined when it did. */
function mountSmallDisk(dir: string): string | undefined {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${DISK_BYTES}`, "tmpfs", dir], { stdio: "pipe" });
    return undefined;
  } catch (error) {
    return (error as { stderr?: Buffer }).stderr?.toString().trim() || String(error);
  }
}

function post(port: number, body: string): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/ingest", method: "POST", agent: false, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"], body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("spool on a full disk while Redis is away", () => {
  const data = tempDir("ingest-disk-full");
  const prefix = testQueuePrefix("ingest-disk-full");
  const lines: string[] = [];
  const logger = createLogger("ingest", "info", (line) => lines.push(line));
  let mountRefused: string | undefined;
  let redisPort: number;
  let redis: PrivateRedis | undefined;
  let ingest: IngestApp;
  let server: Server;
  let port: number;
  let closeQueue: () => Promise<void>;

  beforeAll(async () => {
    mountRefused = mountSmallDisk(data.path);
    if (mountRefused !== undefined) console.warn(`no tmpfs for the spool (${mountRefused}): simulating a full disk through SpoolFile.writeText`);
    redisPort = await freePort(); // nothing listens there until the test starts Redis: connections are refused
    const config = parseIngestConfig({ INGEST_PORT: "0", REDIS_URL: `redis://127.0.0.1:${redisPort}`, QUEUE_PREFIX: prefix, FLOWMETER_DATA_DIR: data.path });
    const connection = createRedis(config.redis.url, "producer");
    connection.on("error", () => {});
    const queue = createIngestQueue(connection, prefix);
    closeQueue = () => closeIngestQueue(queue, connection);
    const file =
      mountRefused === undefined
        ? new SpoolFile<AcceptedRequest>(config.spoolDir, logger, { owner: "ingest", fsync: true })
        : new SmallDiskSpool(config.spoolDir, logger, { owner: "ingest", fsync: true });
    ingest = createIngestApp({ config, queue, redis: connection, logger, spool: { file, maxBytes: config.spoolMaxBytes } });
    await ingest.open();
    server = createServer(ingest.app);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await ingest.close();
    await closeQueue();
    await redis?.kill();
    if (mountRefused === undefined) execFileSync("umount", [data.path]);
    data.remove();
  });

  it("answers 503 with Retry-After once the disk is full, loses nothing it answered 202, and replays it all", async () => {
    const answered: string[] = [];
    const refused: Array<{ status: number; retryAfter: string | undefined; body: string }> = [];
    // Requests of ~3 KB, ten at a time (so appends are group-committed), until 40 have been refused.
    while (refused.length < 40) {
      const entries = Array.from({ length: 10 }, () => {
        const entry = parentEntry();
        (entry.properties as Record<string, unknown>)["padding"] = "x".repeat(3000); // an unknown field: kept, stored
        return entry;
      });
      const answers = await Promise.all(entries.map((entry) => post(port, JSON.stringify(entry))));
      answers.forEach((answer, index) => {
        if (answer.status === 202) answered.push(entries[index]?.insert_id ?? "");
        else refused.push(answer);
      });
      expect(answered.length + refused.length).toBeLessThan(2000);
    }
    expect(new Set(refused.map((answer) => `${answer.status} ${answer.retryAfter}`))).toEqual(new Set(["503 5"]));
    expect(JSON.parse(refused[0]?.body ?? "{}")).toEqual({
      code: "UNAVAILABLE",
      message: "the queue is unavailable and the local spool's disk is full; retry later",
      retryable: true,
    });
    expect(answered.length).toBeGreaterThan(20);
    const metric = await ingest.metrics.spoolWriteFailedRequests.get();
    expect(metric.values.find((value) => value.labels.reason === "disk_full")?.value).toBe(refused.length);
    // One line for the episode, and the per-request 503 line at most once (repeats are throttled).
    expect(lines.filter((line) => line.includes("cannot write the ingest spool"))).toHaveLength(1);
    expect(lines.filter((line) => line.includes("request failed")).length).toBeLessThanOrEqual(1);

    redis = await startPrivateRedis(redisPort);
    const reader = new Queue<ClientTelemetryJob>(JOB_CATALOG.clientTelemetry.queue, { connection: { url: redis.url }, prefix });
    try {
      await waitFor(
        async () => {
          const onQueue = new Set((await reader.getWaiting(0, -1)).flatMap((job) => job.data.ids ?? []));
          return answered.every((id) => onQueue.has(id)) ? true : undefined;
        },
        { what: "every entry answered 202 on the queue" },
      );
    } finally {
      await reader.close();
    }
    expect((await ingest.metrics.spoolLinesDropped.get()).values[0]?.value ?? 0).toBe(0);
    expect(lines.filter((line) => line.includes("dropped spool lines"))).toEqual([]);

    // Room again (the replayed spool is gone) and Redis answers: the next request is stored, and the episode is over.
    expect((await post(port, JSON.stringify(parentEntry()))).status).toBe(202);
  }, 60_000);
});
