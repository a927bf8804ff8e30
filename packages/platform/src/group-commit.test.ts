import { describe, expect, it } from "vitest";
import { GroupCommit } from "./group-commit.js";

describe("GroupCommit", () => {
  it("writes an item alone at once without a linger, and what comes during a write in the next one", async () => {
    const writes: number[][] = [];
    const commit = new GroupCommit<number>(async (items) => {
      writes.push(items);
    });
    await Promise.all([commit.submit(1).written, commit.submit(2).written, commit.submit(3).written]);
    expect(writes).toEqual([[1], [2, 3]]);
  });

  it("with a linger, lets items that find no write in flight wait for others, unless they are enough already", async () => {
    const writes: number[][] = [];
    const commit = new GroupCommit<number>(
      async (items) => {
        writes.push(items);
      },
      { lingerMs: 20, lingerWhile: (items) => items.reduce((sum, item) => sum + item, 0) < 100 },
    );
    const first = commit.submit(1).written;
    await new Promise((resolve) => setTimeout(resolve, 5));
    await Promise.all([first, commit.submit(2).written]);
    expect(writes).toEqual([[1, 2]]);
    await commit.submit(100).written;
    expect(writes).toEqual([[1, 2], [100]]);
  });
});
