import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { SpoolFile } from "./spool-file.js";

const quiet = createLogger("test", "error", () => {});

/** A spool whose next write stops after `writable` bytes with ENOSPC, as a full disk does. */
class FillingSpool extends SpoolFile<{ n: number }> {
  writable = Infinity;
  protected override async writeText(file: FileHandle, text: string): Promise<void> {
    if (Buffer.byteLength(text) <= this.writable) return super.writeText(file, text);
    await super.writeText(file, Buffer.from(text).subarray(0, this.writable).toString());
    throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  }
}

async function drainAll(spool: SpoolFile<{ n: number }>): Promise<{ items: number[]; consumed: number; dropped: number }> {
  const items: number[] = [];
  const result = await spool.drain(async (chunk) => {
    items.push(...chunk.map((item) => item.n));
  }, 10);
  expect(result.error).toBeUndefined();
  return { items, consumed: result.consumed, dropped: result.dropped };
}

describe("SpoolFile append and drain", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "spool-file-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("cuts a write that failed part-way back, so nothing after it is torn", async () => {
    const spool = new FillingSpool(dir, quiet, { owner: "test", fsync: true });
    await spool.open();
    await spool.append([{ n: 1 }, { n: 2 }]);
    const before = readFileSync(spool.path, "utf8");
    spool.writable = 12; // the disk fills in the middle of the next write
    await expect(spool.append([{ n: 3 }, { n: 4 }])).rejects.toMatchObject({ code: "ENOSPC" });
    expect(readFileSync(spool.path, "utf8")).toBe(before);
    spool.writable = Infinity;
    await spool.append([{ n: 5 }]);
    expect(await drainAll(spool)).toEqual({ items: [1, 2, 5], consumed: 3, dropped: 0 });
  });

  it("reports a line a crash left unfinished and never glues the next append to it", async () => {
    const spool = new SpoolFile<{ n: number }>(dir, quiet, { owner: "test", fsync: true });
    await spool.open();
    await spool.append([{ n: 1 }]);
    writeFileSync(spool.path, '{"n":', { flag: "a" }); // a crash in the middle of an append that was never answered
    await spool.append([{ n: 2 }]);
    expect(await drainAll(spool)).toEqual({ items: [1, 2], consumed: 3, dropped: 1 });
    expect(readdirSync(dir)).toEqual([]);
  });

  it("keeps what was not delivered, and an append during a drain goes to the next round", async () => {
    const spool = new SpoolFile<{ n: number }>(dir, quiet, { owner: "test" });
    await spool.open();
    await spool.append(Array.from({ length: 25 }, (_, n) => ({ n })));
    let calls = 0;
    const failed = await spool.drain(async () => {
      calls += 1;
      if (calls === 1) await spool.append([{ n: 100 }]); // appended while the first file is being drained
      if (calls === 2) throw new Error("redis went away");
    }, 10);
    expect([failed.consumed, (failed.error as Error).message]).toEqual([10, "redis went away"]);
    expect(await drainAll(spool)).toEqual({ items: [...Array.from({ length: 15 }, (_, n) => n + 10), 100], consumed: 16, dropped: 0 });
  });
});
