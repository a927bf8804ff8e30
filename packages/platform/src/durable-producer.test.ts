import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DurableProducer, SpoolFullError, type DurableProducerOptions } from "./durable-producer.js";
import { createLogger } from "./logger.js";
import { SpoolFile } from "./spool-file.js";

const quiet = createLogger("test", "error", () => {});

/** Waits for `check` to hold, for at most 5 s. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("DurableProducer", () => {
  let dir: string;
  let producer: DurableProducer<{ n: number }> | undefined;
  const delivered: number[] = [];
  const state = { down: false, frozen: false, reachable: true, failures: 0, spoolStates: [] as number[] };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "durable-producer-"));
    delivered.length = 0;
    Object.assign(state, { down: false, frozen: false, reachable: true, failures: 0, spoolStates: [] });
  });
  afterEach(async () => {
    await producer?.close();
    producer = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(options: Partial<DurableProducerOptions<{ n: number }>> = {}): Promise<DurableProducer<{ n: number }>> {
    producer = new DurableProducer<{ n: number }>({
      spool: new SpoolFile<{ n: number }>(dir, quiet, { owner: "test" }),
      deliver: async (items) => {
        while (state.frozen) await new Promise((resolve) => setTimeout(resolve, 5));
        if (state.down) throw new Error("queue down");
        delivered.push(...items.map((item) => item.n));
      },
      logger: quiet,
      itemsName: "items",
      replayTimeoutMs: 200,
      replayChunk: 3,
      retryMinMs: 10,
      retryMaxMs: 40,
      reachable: () => Promise.resolve(state.reachable),
      onSpoolChange: ({ items }) => state.spoolStates.push(items),
      onDeliveryFailed: () => (state.failures += 1),
      ...options,
    });
    await producer.open();
    return producer;
  }

  const items = (...numbers: number[]) => numbers.map((n) => ({ n }));

  it("sends directly while the queue works; a failed send is spooled with everything after it, and replayed in order on its own", async () => {
    const sender = await open({ retryMinMs: 50 });
    expect(await sender.send(items(1, 2), { timeoutMs: 100 })).toBe("sent");
    state.down = true;
    expect(await sender.send(items(3, 4), { timeoutMs: 100 })).toBe("spooled");
    state.down = false;
    // Behind the spool, even though the queue works again.
    expect(await sender.send(items(5), { timeoutMs: 100 })).toBe("spooled");
    await until(() => sender.spooledItems === 0, "the spool replayed");
    expect(delivered).toEqual([1, 2, 3, 4, 5]);
    expect(state.failures).toBe(1);
    expect(state.spoolStates.at(-1)).toBe(0);
    expect(await sender.send(items(6), { timeoutMs: 100 })).toBe("sent");
    expect(delivered).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("spools a send slower than its timeout, withdrawing it, and replays only once the queue is reachable", async () => {
    const sender = await open();
    state.reachable = false;
    let withdrawn = 0;
    const outcome = await sender.send(items(1), { timeoutMs: 30, send: () => new Promise(() => {}), onTimeout: () => (withdrawn += 1) });
    expect([outcome, withdrawn, sender.spooledItems]).toEqual(["spooled", 1, 1]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(delivered).toEqual([]);
    state.reachable = true;
    await until(() => sender.spooledItems === 0, "the spool replayed once reachable");
    expect(delivered).toEqual([1]);
  });

  it("refuses items beyond maxBytes, and leaves what it could not deliver for the next open, unless the last try on close delivers it", async () => {
    const sender = await open({ maxBytes: 30, retryMinMs: 60_000, retryMaxMs: 60_000 });
    state.down = true;
    await sender.send(items(1, 2), { timeoutMs: 100 }); // two lines of 8 bytes
    await expect(sender.spoolItems(items(3, 4, 5))).rejects.toBeInstanceOf(SpoolFullError);
    expect(sender.spooledItems).toBe(2);
    await sender.close();
    producer = undefined;

    const next = await open({ retryMinMs: 60_000, retryMaxMs: 60_000 });
    await until(() => next.spooledItems === 2, "the earlier spool counted");
    state.down = false;
    await next.close({ lastTry: true });
    producer = undefined;
    expect(delivered).toEqual([1, 2]);
    expect(next.spooledItems).toBe(0);
  });
});
