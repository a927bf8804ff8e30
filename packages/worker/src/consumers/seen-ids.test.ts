import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SeenIds } from "./seen-ids.js";

const DAY_MS = 86_400_000;
const hashOf = (id: string) => createHash("md5").update(id).digest();

describe("SeenIds", () => {
  it("never forgets an id it was given within the horizon, across filter growth", () => {
    const seen = new SeenIds(8);
    const now = Date.UTC(2026, 11, 7, 12);
    for (let index = 0; index < 200_000; index += 1) seen.add(hashOf(`id-${index}`), now);
    expect(seen.size).toBe(200_000);
    for (let index = 0; index < 200_000; index += 1) expect(seen.mayContain(hashOf(`id-${index}`))).toBe(true);
  });

  it("says 'certainly not' for almost every id it was not given", () => {
    const seen = new SeenIds(8);
    const now = Date.UTC(2026, 11, 7, 12);
    for (let index = 0; index < 100_000; index += 1) seen.add(hashOf(`stored-${index}`), now);
    let maybe = 0;
    for (let index = 0; index < 100_000; index += 1) if (seen.mayContain(hashOf(`new-${index}`))) maybe += 1;
    // About 7e-5 per filter at capacity: a handful in 100,000 at most.
    expect(maybe).toBeLessThan(50);
  });

  it("forgets whole days once they leave the horizon", () => {
    const seen = new SeenIds(2);
    const day0 = Date.UTC(2026, 11, 1);
    seen.add(hashOf("old"), day0);
    seen.add(hashOf("new"), day0 + 3 * DAY_MS);
    seen.expire(day0 + 3 * DAY_MS);
    expect(seen.mayContain(hashOf("new"))).toBe(true);
    expect(seen.mayContain(hashOf("old"))).toBe(false);
    expect(seen.size).toBe(1);
  });
});
