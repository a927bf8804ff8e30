/**
 * Redis goes away in the middle of a run: the run goes on, its events are spooled locally, and once Redis is
 * back they are replayed: every event, sample and stage log line reaches the `run-events` queue exactly once, in order.
 * Uses a private redis-server (no persistence) that the test kills and restarts on the same port.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Worker } from "bullmq";
import { createLogger, createRedis } from "@flowmeter/platform";
import { JOB_CATALOG, type RunEvent, type RunEventsJob, type StageLogLine, type TelemetrySample } from "@flowmeter/shared";
import { freePort, startPrivateRedis, tempDir, waitFor, type PrivateRedis } from "@flowmeter/test-utils";
import { DriverRegistry } from "../drivers/driver-registry.js";
import { RunExecution } from "../execution/run-execution.js";
import { validateWorkflow } from "../workflow/validate-workflow.js";
import { EventPublisher } from "./event-publisher.js";
import { createQueueDelivery } from "./queue-delivery.js";
import { RunStore } from "../store/run-store.js";
import { SpoolFile } from "@flowmeter/platform";
import type { SpoolItem } from "./event-publisher.js";

const quiet = createLogger("runner", "error", () => {});

describe("spool and replay when Redis goes away mid-run (private redis-server)", () => {
  const prefix = "fmtest-spool";
  let port: number;
  let redisProcess: PrivateRedis | undefined;
  const dir = tempDir("spool-replay");
  beforeAll(async () => {
    port = await freePort();
    redisProcess = await startPrivateRedis(port);
  });
  afterAll(async () => {
    await redisProcess?.kill();
    dir.remove();
  });

  it("keeps running, spools, then delivers everything exactly once and in order", async () => {
    const url = `redis://127.0.0.1:${port}`;
    const producer = createRedis(url, "producer");
    producer.on("error", () => {});
    const store = new RunStore(producer, { prefix });
    const queueDelivery = createQueueDelivery(store);
    let inFlight = 0;
    let deliveredItems = 0;
    const publisher = new EventPublisher({
      deliver: async (batch) => {
        inFlight += 1;
        try {
          await queueDelivery(batch);
          deliveredItems += batch.events.length + batch.samples.length + (batch.logs ?? []).length;
        } finally {
          inFlight -= 1;
        }
      },
      spool: new SpoolFile<SpoolItem>(dir.path, quiet, { owner: "runner" }),
      logger: quiet,
      flushIntervalMs: 50,
      retryMinMs: 100,
      retryMaxMs: 300,
    });
    await publisher.start();

    // What was emitted, and what a consumer of the queue received (as the worker would), in order.
    const emitted: { events: RunEvent[]; samples: TelemetrySample[]; logs: StageLogLine[] } = { events: [], samples: [], logs: [] };
    const received: { events: RunEvent[]; samples: TelemetrySample[]; logs: StageLogLine[]; items: number } = { events: [], samples: [], logs: [], items: 0 };
    const consumerConnection = createRedis(url, "worker");
    consumerConnection.on("error", () => {});
    const consumer = new Worker<RunEventsJob>(
      JOB_CATALOG.runEvents.queue,
      async (job) => {
        received.events.push(...job.data.events);
        received.samples.push(...job.data.samples);
        received.logs.push(...(job.data.logs ?? []));
        received.items += job.data.events.length + job.data.samples.length + (job.data.logs ?? []).length;
      },
      { connection: consumerConnection, prefix, concurrency: 1 },
    );
    consumer.on("error", () => {});

    const drivers = new DriverRegistry();
    const run = new RunExecution({
      runId: "spooled-run",
      workflow: validateWorkflow(
        {
          name: "through-an-outage",
          stages: [
            { name: "before", driver: "shell", run: "echo before; sleep 0.3" },
            { name: "during", driver: "shell", run: "for i in 1 2 3 4 5; do echo during $i; sleep 0.2; done", depends_on: ["before"] },
            { name: "after", driver: "shell", run: "echo after >&2; sleep 0.3", depends_on: ["during"] },
          ],
        },
        { drivers: drivers.names() },
      ),
      drivers,
      logger: quiet,
      sampleIntervalMs: 100,
      heartbeatIntervalMs: 200,
      output: {
        event: (event) => {
          emitted.events.push(event);
          publisher.event(event);
        },
        sample: (sample) => {
          emitted.samples.push(sample);
          publisher.sample(sample);
        },
        log: (line) => {
          emitted.logs.push(line);
          publisher.log(line);
        },
      },
    });

    try {
      const done = run.run();
      // Kill Redis once "during" runs, at a moment when everything delivered so far was consumed and nothing is
      // in flight: a server without persistence loses what it held, which is not what this test is about.
      await waitFor(() => (emitted.events.some((event) => event.event_type === "stage.started" && event.stage_name === "during") ? true : undefined));
      await waitFor(
        () => {
          if (inFlight > 0 || deliveredItems === 0 || received.items !== deliveredItems) return undefined;
          redisProcess?.process.kill("SIGKILL");
          return true;
        },
        { intervalMs: 2, what: "a quiet moment to kill redis" },
      );
      await redisProcess?.kill(); // waits for the exit
      const receivedBeforeOutage = received.items;

      await waitFor(() => (publisher.spooledItems > 0 ? true : undefined), { what: "events to be spooled" });
      const outcome = await done; // the run went on without Redis
      expect(outcome.status).toBe("succeeded");
      await publisher.flush();
      expect(publisher.spooledItems).toBeGreaterThan(0);
      expect(received.items).toBe(receivedBeforeOutage);
      expect(emitted.events.at(-1)?.event_type).toBe("run.finished");

      redisProcess = await startPrivateRedis(port);
      await waitFor(() => (publisher.spooledItems === 0 ? true : undefined), { what: "the spool to be replayed" });
      await waitFor(() => (received.items === emitted.events.length + emitted.samples.length + emitted.logs.length ? true : undefined), {
        what: "the consumer to get everything",
      });

      expect(received.events.map((event) => event.event_id)).toEqual(emitted.events.map((event) => event.event_id));
      expect(received.samples.map((sample) => sample.seq)).toEqual(emitted.samples.map((sample) => sample.seq));
      expect(received.events.map((event) => event.seq)).toEqual(emitted.events.map((_, index) => index));
      expect(received.logs.map((line) => `${line.seq} ${line.stage_name} ${line.stream} ${line.line}`)).toEqual([
        "1 before stdout before",
        ...[1, 2, 3, 4, 5].map((i) => `${i + 1} during stdout during ${i}`),
        "7 after stderr after",
      ]);
      // The follower store got the replayed events too (the ones before the outage went with the old server).
      const stored = await store.events.read("spooled-run");
      expect(stored.at(-1)?.event_type).toBe("run.finished");
    } finally {
      await publisher.close();
      await consumer.close();
      await store.close();
      consumerConnection.disconnect();
      producer.disconnect();
    }
  }, 30_000);
});
