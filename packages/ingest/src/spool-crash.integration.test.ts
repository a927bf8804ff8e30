/**
 * An ingest process SIGKILLed while it spools (Redis away): every entry it answered 202 is on disk, and the next
 * ingest started on the same data directory replays them into the queue. Runs the built service (dist/main.js).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { JOB_CATALOG, type ClientTelemetryJob } from "@flowmeter/shared";
import { postIngest, deleteQueuePrefix, freePort, parentEntry, tempDir, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";
import { Queue } from "bullmq";
import { afterAll, describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

async function startIngest(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [MAIN], { env: { ...process.env, LOG_LEVEL: "warn", ...env }, stdio: ["ignore", "ignore", "inherit"] });
  await waitFor(
    async () =>
      (await fetch(`http://127.0.0.1:${env["INGEST_PORT"]}/metrics`).then(
        (res) => res.ok,
        () => false,
      ))
        ? true
        : undefined,
    { what: "ingest to listen" },
  );
  return child;
}

describe("ingest killed while spooling", () => {
  const data = tempDir("ingest-spool-crash");
  const prefix = testQueuePrefix("ingest-spool-crash");
  const queue = new Queue<ClientTelemetryJob>(JOB_CATALOG.clientTelemetry.queue, { connection: { url: testRedisUrl() }, prefix });
  const children: ChildProcess[] = [];

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await queue.close();
    await deleteQueuePrefix(prefix);
    data.remove();
  });

  it("loses nothing it answered 202: the next start replays the spool", async () => {
    const port = String(await freePort());
    const env = { INGEST_PORT: port, QUEUE_PREFIX: prefix, FLOWMETER_DATA_DIR: data.path };
    const first = await startIngest({ ...env, REDIS_URL: "redis://127.0.0.1:1" });
    children.push(first);
    const entries = Array.from({ length: 40 }, () => parentEntry());
    const statuses = await Promise.all(entries.map((entry) => postIngest(Number(port), JSON.stringify(entry))));
    expect(statuses).toEqual(entries.map(() => 202));
    const exited = once(first, "exit");
    first.kill("SIGKILL");
    await exited;

    children.push(await startIngest({ ...env, REDIS_URL: testRedisUrl() }));
    const onQueue = async (): Promise<string[]> => (await queue.getWaiting(0, -1)).flatMap((job) => job.data.ids ?? []);
    await waitFor(async () => ((await onQueue()).length >= entries.length ? true : undefined), { what: "the spooled entries on the queue" });
    expect((await onQueue()).sort()).toEqual(entries.map((entry) => entry.insert_id).sort());
  });
});
