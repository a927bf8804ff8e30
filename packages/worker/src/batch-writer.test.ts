import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BatchWriter, type FlushReason } from "./batch-writer.js";

describe("BatchWriter", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function recordingWriter(maxRows = 3, maxWaitMs = 1000) {
    const flushes: { items: number[]; reason: FlushReason }[] = [];
    const writer = new BatchWriter<number>({
      name: "test",
      maxRows,
      maxWaitMs,
      rowsOf: () => 1,
      flush: async (items, reason) => {
        flushes.push({ items, reason });
      },
    });
    return { writer, flushes };
  }

  it("flushes when maxRows is reached", async () => {
    const { writer, flushes } = recordingWriter();
    await Promise.all([writer.add(1), writer.add(2), writer.add(3)]);
    expect(flushes).toEqual([{ items: [1, 2, 3], reason: "size" }]);
  });

  it("flushes after maxWaitMs when fewer rows wait", async () => {
    const { writer, flushes } = recordingWriter();
    const added = writer.add(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(flushes).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await added;
    expect(flushes).toEqual([{ items: [1], reason: "time" }]);
  });

  it("rejects every item of a failed flush, and later items still flush", async () => {
    let fail = true;
    const flushed: number[][] = [];
    const writer = new BatchWriter<number>({
      name: "test",
      maxRows: 2,
      maxWaitMs: 1000,
      rowsOf: () => 1,
      flush: async (items) => {
        if (fail) throw new Error("clickhouse down");
        flushed.push(items);
      },
    });
    const first = [writer.add(1), writer.add(2)];
    await expect(Promise.all(first)).rejects.toThrow("clickhouse down");
    await expect(first[1]).rejects.toThrow("clickhouse down");
    fail = false;
    await expect(Promise.all([writer.add(3), writer.add(4)])).resolves.toEqual([undefined, undefined]);
    expect(flushed).toEqual([[3, 4]]);
  });

  it("runs one flush at a time and gathers what arrives meanwhile", async () => {
    let release: () => void = () => {};
    const flushes: number[][] = [];
    const writer = new BatchWriter<number>({
      name: "test",
      maxRows: 2,
      maxWaitMs: 1000,
      rowsOf: () => 1,
      flush: async (items) => {
        flushes.push(items);
        if (flushes.length === 1) await new Promise<void>((resolve) => (release = resolve));
      },
    });
    const first = Promise.all([writer.add(1), writer.add(2)]);
    const second = Promise.all([writer.add(3), writer.add(4), writer.add(5)]);
    expect(flushes).toEqual([[1, 2]]);
    release();
    await first;
    await second;
    expect(flushes).toEqual([
      [1, 2],
      [3, 4, 5],
    ]);
  });

  it("flushes items whose wait ran out while another flush was running", async () => {
    let release: () => void = () => {};
    const flushes: number[][] = [];
    const writer = new BatchWriter<number>({
      name: "test",
      maxRows: 10,
      maxWaitMs: 100,
      rowsOf: () => 1,
      flush: async (items) => {
        flushes.push(items);
        if (flushes.length === 1) await new Promise<void>((resolve) => (release = resolve));
      },
    });
    const first = writer.add(1);
    await vi.advanceTimersByTimeAsync(100);
    const second = writer.add(2);
    await vi.advanceTimersByTimeAsync(500);
    expect(flushes).toEqual([[1]]);
    release();
    await first;
    await vi.advanceTimersByTimeAsync(0);
    await second;
    expect(flushes).toEqual([[1], [2]]);
  });

  it("close() flushes what waits with reason shutdown and refuses new items", async () => {
    const { writer, flushes } = recordingWriter(10);
    const added = writer.add(1);
    await writer.close();
    await added;
    expect(flushes).toEqual([{ items: [1], reason: "shutdown" }]);
    await expect(writer.add(2)).rejects.toThrow("closed");
    expect(vi.getTimerCount()).toBe(0);
  });
});
