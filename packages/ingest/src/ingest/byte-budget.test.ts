import { describe, expect, it } from "vitest";
import { ByteBudget } from "./byte-budget.js";

describe("ByteBudget", () => {
  it("admits what fits, holds the rest in order until bytes are given back", async () => {
    const budget = new ByteBudget(100);
    const order: string[] = [];
    const releaseA = await budget.reserve(60);
    const b = budget.reserve(50).then((release) => {
      order.push("b");
      return release;
    });
    const c = budget.reserve(10).then((release) => {
      order.push("c");
      return release;
    });
    await Promise.resolve();
    expect(order).toEqual([]);
    releaseA();
    const [releaseB, releaseC] = await Promise.all([b, c]);
    expect(order).toEqual(["b", "c"]);
    releaseB();
    releaseC();
    releaseC();
    const huge = await budget.reserve(10_000);
    huge();
  });
});
