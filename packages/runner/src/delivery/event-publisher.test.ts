import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync, readdirSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { createLogger, uuidV7 } from "@flowmeter/platform";
import { type RunEvent, type RunEventsJob, type TelemetrySample } from "@flowmeter/shared";
import { tempDir, waitFor } from "@flowmeter/test-utils";
import { createRunnerMetrics } from "../metrics.js";
import { EventPublisher, type EventPublisherOptions } from "./event-publisher.js";
import { SpoolFile } from "@flowmeter/platform";
import type { SpoolItem } from "./event-publisher.js";

const quiet = createLogger("runner", "error", () => {});

function event(seq: number, runId = "r1"): RunEvent {
  const now = Date.now();
  return {
    event_id: uuidV7(now),
    run_id: runId,
    attempt_id: "a1",
    seq,
    ts_ms: now,
    timestamp: new Date(now).toISOString(),
    level: "info",
    event_type: "stage.queued",
    event_type_v2: "StageQueued",
    message: "queued",
    stage_name: "s",
    group_id: "g0",
    payload: { workflow: "w", driver: "shell", depends_on: [] },
  };
}

function sample(seq: number): TelemetrySample {
  return {
    kind: "host",
    run_id: "r1",
    attempt_id: "a1",
    seq,
    timestamp_ms: Date.now(),
    stage_name: "",
    host: { rss_bytes: 1, cpu_percent: 0, io_read_bytes: 0, io_write_bytes: 0 },
  };
}

/** A deliver function that records batches and fails while `down` is set. */
function fakeQueue() {
  const batches: RunEventsJob[] = [];
  const state = { down: false, calls: 0 };
  return {
    batches,
    state,
    deliver: async (batch: RunEventsJob) => {
      state.calls += 1;
      if (state.down) throw new Error("redis down");
      batches.push(batch);
    },
    seqs: () => batches.flatMap((batch) => batch.events.map((item) => item.seq)),
  };
}

describe("EventPublisher", () => {
  let dir: { path: string; remove: () => void };
  let publisher: EventPublisher | undefined;
  beforeEach(() => {
    dir = tempDir("publisher");
  });
  afterEach(async () => {
    await publisher?.close();
    publisher = undefined;
    dir.remove();
  });

  async function start(queue: ReturnType<typeof fakeQueue>, options: Partial<EventPublisherOptions> = {}) {
    publisher = new EventPublisher({
      deliver: queue.deliver,
      spool: new SpoolFile<SpoolItem>(dir.path, quiet, { owner: "runner" }),
      logger: quiet,
      flushIntervalMs: 20,
      retryMinMs: 20,
      retryMaxMs: 50,
      ...options,
    });
    await publisher.start();
    return publisher;
  }

  it("batches many events and samples into one job per flush", async () => {
    const queue = fakeQueue();
    const pub = await start(queue);
    for (let seq = 0; seq < 50; seq += 1) pub.event(event(seq));
    pub.sample(sample(1));
    await waitFor(() => (queue.batches.length > 0 ? true : undefined));
    await pub.flush();
    expect(queue.batches).toHaveLength(1);
    expect(queue.batches[0]?.events).toHaveLength(50);
    expect(queue.batches[0]?.samples).toHaveLength(1);
  });

  it("flushes at once when maxBatchItems are waiting, and splits larger flushes", async () => {
    const queue = fakeQueue();
    const pub = await start(queue, { flushIntervalMs: 60_000, maxBatchItems: 10 });
    for (let seq = 0; seq < 25; seq += 1) pub.event(event(seq));
    await waitFor(() => (queue.batches.length >= 2 ? true : undefined));
    await pub.flush();
    expect(queue.batches.map((batch) => batch.events.length)).toEqual([10, 10, 5]);
    expect(queue.seqs()).toEqual([...Array(25).keys()]);
  });

  it("emit does not wait for delivery", async () => {
    const pub = await start(fakeQueue(), { deliver: () => new Promise(() => {}), deliveryTimeoutMs: 50, retryMinMs: 60_000 });
    const events = Array.from({ length: 10_000 }, (_, seq) => event(seq));
    const started = performance.now();
    for (const item of events) pub.event(item);
    expect(performance.now() - started).toBeLessThan(100); // ~10 µs per event at most, while delivery hangs
  });

  it("spools while delivery fails and replays in order, once, when it works again", async () => {
    const metrics = createRunnerMetrics(["shell"]);
    const queue = fakeQueue();
    const pub = await start(queue, { metrics });
    pub.event(event(0));
    await pub.flush();
    queue.state.down = true;
    for (let seq = 1; seq <= 30; seq += 1) {
      pub.event(event(seq));
      if (seq % 10 === 0) await pub.flush();
    }
    await pub.flush();
    expect(pub.spooledItems).toBe(30);
    expect(await metrics.registry.getSingleMetricAsString("flowmeter_runner_events_spooled")).toMatch(/ 30$/);
    const spoolFile = join(dir.path, `runner-${hostname().replace(/[^A-Za-z0-9.]/g, "_")}-${process.pid}.jsonl`);
    expect(readFileSync(spoolFile, "utf8").trim().split("\n")).toHaveLength(30);
    queue.state.down = false;
    await waitFor(() => (pub.spooledItems === 0 ? true : undefined));
    pub.event(event(31));
    await pub.flush();
    expect(queue.seqs()).toEqual([...Array(32).keys()]);
    expect(readdirSync(dir.path)).toEqual([]);
    expect(await metrics.registry.getSingleMetricAsString("flowmeter_runner_delivery_failures_total")).not.toMatch(/ 0$/);
  });

  it("replays on its own once a frozen queue answers again, with nothing more emitted (issue 21 item 2)", async () => {
    const queue = fakeQueue();
    let frozen = true;
    const pub = await start(queue, {
      // A frozen Redis: the call neither resolves nor rejects while frozen (the publisher's timeout gives up on it).
      deliver: async (batch) => {
        while (frozen) await new Promise((resolve) => setTimeout(resolve, 10));
        await queue.deliver(batch);
      },
      deliveryTimeoutMs: 50,
    });
    for (let seq = 0; seq < 5; seq += 1) pub.event(event(seq));
    await pub.flush();
    expect(pub.spooledItems).toBe(5);
    frozen = false;
    await waitFor(() => (pub.spooledItems === 0 ? true : undefined), { what: "the spool replayed with no further event" });
    expect(new Set(queue.seqs())).toEqual(new Set([0, 1, 2, 3, 4])); // the timed-out first try may land too: at least once
  });

  it("keeps what a partial replay did not deliver", async () => {
    const queue = fakeQueue();
    const pub = await start(queue, { maxBatchItems: 5, retryMinMs: 60_000, retryMaxMs: 60_000 });
    queue.state.down = true;
    for (let seq = 0; seq < 12; seq += 1) pub.event(event(seq));
    await pub.flush();
    expect(pub.spooledItems).toBe(12);
    await pub.close(); // still down: the 12 items stay in the spool file
    publisher = undefined;
    expect(queue.batches).toHaveLength(0);
    // The next process (same file: same pid) replays one chunk of 5, then fails.
    let allowed = 1;
    queue.state.down = false;
    const deliver = queue.deliver;
    const flaky = new EventPublisher({
      deliver: async (batch) => {
        if (allowed-- <= 0) throw new Error("down again");
        await deliver(batch);
      },
      spool: new SpoolFile<SpoolItem>(dir.path, quiet, { owner: "runner" }),
      logger: quiet,
      maxBatchItems: 5,
      retryMinMs: 60_000,
    });
    await flaky.start(); // 12 items waiting: replays at once, 5 delivered, then a failure
    await waitFor(() => (flaky.spooledItems === 7 ? true : undefined));
    expect(queue.seqs()).toEqual([0, 1, 2, 3, 4]);
    allowed = 100;
    await flaky.close(); // one last try on close delivers the rest
    expect(queue.seqs()).toEqual([...Array(12).keys()]);
    expect(flaky.spooledItems).toBe(0);
  });

  it("adopts the spool of a runner of this host that is gone", async () => {
    const host = hostname().replace(/[^A-Za-z0-9.]/g, "_");
    const deadPid = 2 ** 22 + 12345; // above pid_max
    writeFileSync(
      join(dir.path, `runner-${host}-${deadPid}.jsonl`),
      [event(0, "old"), event(1, "old")].map((item) => `${JSON.stringify({ event: item })}\n`).join("") + '{"event": trunc',
    );
    const queue = fakeQueue();
    const pub = await start(queue);
    await waitFor(() => (queue.batches.length > 0 ? true : undefined));
    expect(queue.batches[0]?.events.map((item) => [item.run_id, item.seq])).toEqual([
      ["old", 0],
      ["old", 1],
    ]);
    expect(readdirSync(dir.path).filter((name) => name.includes(String(deadPid)))).toEqual([]);
    await waitFor(() => (pub.spooledItems === 0 ? true : undefined));
  });

  it("drops samples, never events, beyond the sample buffer bound", async () => {
    const metrics = createRunnerMetrics(["shell"]);
    const queue = fakeQueue();
    const pub = await start(queue, { metrics, maxBufferedSamples: 3, flushIntervalMs: 60_000 });
    for (let seq = 1; seq <= 5; seq += 1) pub.sample(sample(seq));
    for (let seq = 0; seq < 5; seq += 1) pub.event(event(seq));
    await pub.flush();
    expect(queue.batches[0]?.samples.map((item) => item.seq)).toEqual([1, 2, 3]);
    expect(queue.batches[0]?.events).toHaveLength(5);
    expect(await metrics.registry.getSingleMetricAsString("flowmeter_runner_samples_dropped_total")).toMatch(/ 2$/);
  });

  it("treats a delivery slower than deliveryTimeoutMs as failed and spools the batch", async () => {
    const pub = await start(fakeQueue(), { deliver: () => new Promise(() => {}), deliveryTimeoutMs: 50, retryMinMs: 60_000 });
    pub.event(event(0));
    await pub.flush();
    expect(pub.spooledItems).toBe(1);
  });
});
